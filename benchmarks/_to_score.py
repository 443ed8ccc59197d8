"""Shared by the to-a-score benchmarks (rl_cartpole.py, rl_pendulum.py): each seed of a preset trained in
this process (not through Ray) until its greedy evaluation reaches a score or its budget is spent, one row
per seed, then the medians against the targets (env steps and wall seconds after setup).

The leading underscore marks a helper, not a benchmark.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

COLUMNS = {  # name -> (run_seed's key, width, format) of the per-seed table
    "env steps": ("steps", 11, ".0f"), "wall s": ("seconds", 9, ".1f"), "steps/s": ("sps", 9, ".0f"),
    "cpu s": ("cpu", 8, ".1f"), "setup s": ("setup", 9, ".1f"), "trace s": ("trace", 9, ".1f"),
    "warm s": ("warmup", 8, ".1f"), "score": ("score", 9, ".1f"),
}


def agents_parser(doc: str, targets: dict) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("agents", nargs="*", metavar="AGENT", help=f"{' or '.join(targets)} (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    return parser


def parse_agents(parser: argparse.ArgumentParser, targets: dict, argv: list[str] | None) -> argparse.Namespace:
    """The arguments; an unknown agent is argparse's one-line error (exit 2)."""
    args = parser.parse_args(argv)
    unknown = [a for a in args.agents if a not in targets]
    if unknown:
        parser.error(f"unknown agent {unknown[0]!r} (known: {', '.join(targets)})")
    return args


def run_seed(preset: str, seed: int, score: float) -> dict:
    """One seed of a preset: setup, then steps until `score` or the budget. Training steps/s counts the
    collect/train rounds only (each step's env steps over its `charts/sps`), not the evaluations."""
    from _learning import make_workload

    from lab import spec as specs

    metric = specs.load(preset)[0].reference.metric or "eval/average_return"
    started = time.perf_counter()
    workload = make_workload(preset, {"seed": seed})
    setup = time.perf_counter() - started
    try:
        started, cpu_started, train_seconds, last_steps = time.perf_counter(), time.process_time(), 0.0, 0
        while True:
            metrics = workload.step()
            train_seconds += (metrics["charts/env_steps"] - last_steps) / max(metrics["charts/sps"], 1e-9)
            last_steps = metrics["charts/env_steps"]
            if metrics[metric] >= score or metrics["done"]:
                break
        return {
            "steps": int(metrics["charts/env_steps"]), "seconds": time.perf_counter() - started,
            "cpu": time.process_time() - cpu_started, "sps": metrics["charts/env_steps"] / max(train_seconds, 1e-9),
            "setup": setup, "trace": getattr(workload, "trace_seconds", float("nan")),
            "warmup": getattr(workload, "warmup_seconds", float("nan")), "score": metrics[metric],
            "solved": metrics[metric] >= score,
        }
    finally:
        workload.close()


def run_targets(targets: dict, agents: list[str], seeds: list[int], score: float, columns: list[str]) -> bool:
    """Each agent's preset over the seeds, a row per seed with `columns`, then the medians against its
    targets (preset, env steps, wall seconds after setup); True when every median meets its targets."""
    ok = True
    for agent in agents or list(targets):
        preset, target_steps, target_seconds = targets[agent]
        print(f"\n{preset}: target median <= {target_steps} env steps and <= {target_seconds:.0f} s after setup")
        print(f"{'seed':>4}" + "".join(f"{name:>{COLUMNS[name][1]}}" for name in columns) + f"{'load':>6}")
        runs = []
        for seed in seeds:
            run = run_seed(preset, seed, score)
            runs.append(run)
            cells = "".join(f"{run[key]:>{width}{form}}" for key, width, form in (COLUMNS[n] for n in columns))
            print(f"{seed:>4}{cells}{os.getloadavg()[0]:>6.1f}{'' if run['solved'] else '  (budget spent, not solved)'}",
                  flush=True)
        medians = {key: statistics.median(r[key] if r["solved"] else float("inf") for r in runs)
                   for key in ("steps", "seconds")}
        medians.update({key: statistics.median(r[key] for r in runs) for key, _, _ in (COLUMNS[n] for n in columns)
                        if key not in ("steps", "seconds", "score")})
        steps_met, seconds_met = medians["steps"] <= target_steps, medians["seconds"] <= target_seconds
        ok &= steps_met and seconds_met
        cells = "".join(f"{medians[key]:>{width}{'' if medians[key] == float('inf') else form}}"
                        for key, width, form in (COLUMNS[n] for n in columns) if key != "score")
        verdict = {True: "OK", False: "MISSED"}
        print(f"{'median':<4}{cells}   steps {verdict[steps_met]}, seconds {verdict[seconds_met]}")
    return ok
