"""MuJoCo: the sac-hopper, sac-halfcheetah and td3-hopper presets to 200k env steps, with steps/s.

For each preset: a uniformly random policy's return measured first (same run, same eval env); then the
preset trained in this process (not through Ray) with a greedy evaluation every `--eval-every` env
steps, one line each (env steps, greedy and exploring returns, steps/s, peak RSS, load average); then
the best greedy return against the target and the learning curve as a PNG beside the printed figures.
Targets (the issue): within 200k env steps SAC >= 2000 on Hopper-v5 and >= 3000 on HalfCheetah-v5,
TD3 >= 2000 on Hopper-v5 (rl-zoo's 1M-step scores: ~2,600-3,600 and ~9,500).

Run: python benchmarks/mujoco_learning.py [--presets sac-hopper sac-halfcheetah td3-hopper] [--steps 200000]
     a timed piece: python benchmarks/mujoco_learning.py --presets sac-hopper --steps 5000 --eval-every 5000
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _learning import (cpus, learning_parser, load, make_workload, parse_sets, print_row, random_return, train,
                       unknown_preset, write_curve)

from lab import settings

TARGETS = {"sac-hopper": 2000.0, "sac-halfcheetah": 3000.0, "td3-hopper": 2000.0, "td3-halfcheetah": 3000.0}


def main(argv: list[str] | None = None) -> int:
    parser = learning_parser(__doc__, ["sac-hopper", "sac-halfcheetah", "td3-hopper"], eval_every=10_000)
    parser.add_argument("--steps", type=int, default=200_000, help="env steps per preset (its max_env_steps)")
    parser.add_argument("--max-minutes", type=float, default=600.0, help="stop a preset after this long")
    args = parser.parse_args(argv)
    overrides = parse_sets(args.set)
    if unknown_preset("mujoco_learning", args.presets):
        return 2

    settings.apply_worker_env()  # TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
    import tensorflow  # noqa: F401

    from lab import spec as specs

    print(f"MuJoCo: {args.steps} env steps per preset on {cpus()}, load {load():.1f}", flush=True)
    ok = True
    for preset in args.presets:
        env_id = specs.load(preset)[0].trial_params["env_id"]
        random_mean, random_std = random_return(env_id, args.random_episodes, args.seed + 10_000)
        print(f"{preset}: random policy {random_mean:.1f} +- {random_std:.1f} over {args.random_episodes} episodes "
              f"of {env_id}; load {load():.1f}", flush=True)
        params = {"max_env_steps": args.steps, "env_steps_per_step": args.eval_every, "seed": args.seed, **overrides}
        workload = make_workload(preset, params)
        try:
            rows = train(workload, args.max_minutes * 60, print_row)
        finally:
            workload.close()
        best, last, target = max(r["eval_return"] for r in rows), rows[-1], TARGETS.get(preset)
        met = target is None or best >= target
        ok &= met
        steps_per_s = last["env_steps"] / max(last["seconds"], 1e-9)
        print(f"{preset}: best greedy {best:.1f} (last {last['eval_return']:.1f}) at {last['env_steps']} env steps in "
              f"{last['seconds']:.0f} s, {steps_per_s:.0f} env steps/s (evaluations included): target "
              f"{target if target is not None else '-'} {'met' if met else 'MISSED'}; load {load():.1f}", flush=True)
        png = write_curve(os.path.join(args.png_dir, f"mujoco-{preset}.png"), {preset: rows}, f"{preset} on {env_id}",
                          {"random policy": random_mean}, target)
        print(f"learning curve: {png}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
