"""Atari that learns: the dqn-breakout and ppo-breakout presets for a wall-clock budget (90 min each).

For each preset: a uniformly random policy's return on the evaluation env (the full game, rewards
unclipped) measured first, in the same run; then the preset trained in this process (not through
Ray) with a greedy evaluation every `--eval-every` env steps, one line each (env steps, greedy and
exploring returns, steps/s, peak RSS, load average); then the outcome against the target (greedy
return >= 10x the random policy's) and the learning curve as a PNG beside the printed figures.

Run: python benchmarks/atari.py [--presets dqn-breakout ppo-breakout] [--minutes 90] [--png-dir benchmarks/out]
     tiny check: python benchmarks/atari.py --minutes 0.5 --random-episodes 1 --eval-every 256 \
                 --set eval_episodes=1 --set max_episode_steps=200 ... (see tests/agents/test_atari.py)
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _learning import (cpus, learning_parser, load, make_workload, parse_sets, peak_rss_mb, print_row, random_return,
                       train, unknown_preset, write_curve)

from lab import settings

ENV_ID, FACTOR = "ALE/Breakout-v5", 10.0


def run_preset(preset: str, args, overrides: dict) -> dict:
    params = {"env_steps_per_step": args.eval_every, "seed": args.seed, **overrides}
    workload = make_workload(preset, params)
    print(f"{preset}: setup done, peak RSS {peak_rss_mb():.0f} MB, load {load():.1f}", flush=True)
    try:
        rows = train(workload, args.minutes * 60, print_row)
    finally:
        workload.close()
    return {"rows": rows, "best": max(r["eval_return"] for r in rows), "last": rows[-1]["eval_return"]}


def main(argv: list[str] | None = None) -> int:
    parser = learning_parser(__doc__, ["dqn-breakout", "ppo-breakout"], eval_every=50_000)
    parser.add_argument("--minutes", type=float, default=90.0, help="training wall-clock budget per preset")
    args = parser.parse_args(argv)
    overrides = parse_sets(args.set)
    if unknown_preset("atari", args.presets):
        return 2

    settings.apply_worker_env()  # TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
    import tensorflow  # noqa: F401

    print(f"Atari ({ENV_ID}): {args.minutes:g} min per preset on {cpus()}, load {load():.1f}", flush=True)
    random_mean, random_std = random_return(ENV_ID, args.random_episodes, args.seed + 10_000,
                                            overrides.get("max_episode_steps", 0))
    target = FACTOR * random_mean
    print(f"random policy: {random_mean:.2f} +- {random_std:.2f} over {args.random_episodes} full games "
          f"(target {FACTOR:g}x: {target:.1f}); load {load():.1f}", flush=True)
    ok, curves = True, {}
    for preset in args.presets:
        run = run_preset(preset, args, overrides)
        curves[preset] = run["rows"]
        met = run["best"] >= target
        ok &= met
        last = run["rows"][-1]
        print(f"{preset}: best greedy {run['best']:.1f}, last {run['last']:.1f} ({run['best'] / max(random_mean, 1e-9):.1f}x "
              f"random) after {last['env_steps']} env steps, {last['seconds']:.0f} s: target "
              f"{'met' if met else 'MISSED'}; peak RSS {last['rss_mb']:.0f} MB, load {load():.1f}", flush=True)
        png = write_curve(os.path.join(args.png_dir, f"atari-{preset}.png"), {preset: run["rows"]},
                          f"{preset} on {ENV_ID}", {"random policy": random_mean}, target)
        print(f"learning curve: {png}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
