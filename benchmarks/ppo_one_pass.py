"""PPO Breakout training env steps/s with the shared trunk run once per minibatch against TF-Agents' passes.

    python benchmarks/ppo_one_pass.py [--rounds 3] [--preset ppo-breakout] [--set KEY=VALUE ...]

Both variants in this process, one after the other, the same seed and preset (`one_pass_trunk: true`, then
`false`, the control); each times `--rounds` collect+train rounds after one untimed round (the first calls),
evaluation left out. Prints each figure with the load (os.getloadavg) and the ratio.
"""
from __future__ import annotations

import argparse
import sys
import time

from _learning import cpus, load, make_workload, parse_sets, unknown_preset

from lab import settings


def env_steps_per_second(preset: str, params: dict, rounds: int) -> float:
    workload = make_workload(preset, params)
    try:
        workload._train(workload._collect())  # one untimed round
        before, started = int(workload.env_steps.numpy()), time.perf_counter()
        for _ in range(rounds):
            workload._train(workload._collect())
        return (int(workload.env_steps.numpy()) - before) / (time.perf_counter() - started)
    finally:
        workload.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="ppo-breakout")
    parser.add_argument("--rounds", type=int, default=3, help="timed collect+train rounds per variant")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a preset param")
    args = parser.parse_args(argv)
    if unknown_preset("ppo_one_pass", [args.preset]):
        return 2
    settings.apply_worker_env()  # TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
    params = {"seed": 0, **parse_sets(args.set)}
    print(f"PPO one trunk pass vs TF-Agents' passes: {args.preset}, {args.rounds} rounds each on {cpus()}", flush=True)
    figures = {}
    for one_pass in (True, False):
        name = "one pass" if one_pass else "two passes (control)"
        figures[one_pass] = env_steps_per_second(args.preset, {**params, "one_pass_trunk": one_pass}, args.rounds)
        print(f"  {name:<22} {figures[one_pass]:8.1f} env steps/s  (load {load():.2f})", flush=True)
    print(f"  ratio one pass / two passes: {figures[True] / figures[False]:.2f}x  (load {load():.2f}; "
          f"shared machine: figures under load, the ratio is of one run)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
