"""Replay memory of a DQN Atari trial: peak RSS against replay capacity, bytes per stored transition.

Each capacity runs in its own process (peak RSS is per process): the dqn-breakout preset's workload
with `replay_capacity` = C, filled with C random-policy transitions (`--no-fill`: allocated only),
one round of gradient steps, then its peak RSS. The table prints each capacity's peak RSS and the
bytes per transition from the growth between the smallest and each larger capacity. An observation is
4 stacked 84x84 uint8 frames (28,224 bytes); the preset's replay stores its newest frame only (7,056
bytes, `frame_stack: 4`; `--frame-stack 0` stores whole observations). Target (the issue): a
100k replay in at most 3 GB of process memory (float32 frames took ~113 KB a transition, 11 GB).

Run: python benchmarks/atari_replay_memory.py [--capacities 1000 20000 100000] [--no-fill] [--frame-stack 0]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

TARGET_GB, TARGET_CAPACITY = 3.0, 100_000
FRAME_BYTES = 84 * 84 * 4


def child(capacity: int, fill: bool, frame_stack: int | None) -> None:
    """Build, fill and train one round; print {"capacity", "peak_rss", "seconds"} as JSON."""
    from _learning import make_workload, peak_rss_mb

    from lab import settings

    settings.apply_worker_env()
    started = time.perf_counter()
    steps = capacity if fill else 64
    params = {"replay_capacity": capacity, "initial_collect_steps": steps, "env_steps_per_step": steps + 64,
              "max_env_steps": steps + 64, "eval_episodes": 1, "max_episode_steps": 500, "num_envs": 4}
    if frame_stack is not None:
        params["frame_stack"] = frame_stack
    workload = make_workload("dqn-breakout", params)
    try:
        workload.step()
        stored = int(workload.replay_buffer.num_frames())
    finally:
        workload.close()
    print(json.dumps({"capacity": capacity, "stored": stored, "peak_rss_mb": peak_rss_mb(),
                      "seconds": time.perf_counter() - started}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacities", type=int, nargs="+", default=[1_000, 20_000, 100_000])
    parser.add_argument("--no-fill", action="store_true", help="allocate the buffer without filling it")
    parser.add_argument("--frame-stack", type=int, help="the replay's frame_stack (default: the preset's, 4)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, not args.no_fill, args.frame_stack)
        return 0

    stack = 4 if args.frame_stack is None else args.frame_stack
    print(f"DQN (dqn-breakout) replay memory, {'filled' if not args.no_fill else 'allocated'} buffers, "
          f"frame_stack {stack} ({'newest frame stored' if stack else 'whole observations stored'}), "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"{'capacity':>9} {'stored':>8} {'peak RSS':>10} {'bytes/transition':>17} {'seconds':>8} {'load':>5}")
    rows = []
    for capacity in sorted(args.capacities):
        command = [sys.executable, __file__, "--child", str(capacity)] + (["--no-fill"] if args.no_fill else [])
        command += ["--frame-stack", str(args.frame_stack)] if args.frame_stack is not None else []
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{capacity:>9} failed: {done.stderr.strip().splitlines()[-1:]}", flush=True)
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        per = ((row["peak_rss_mb"] - rows[0]["peak_rss_mb"]) * 2**20 / (capacity - rows[0]["capacity"])
               if len(rows) > 1 else float("nan"))
        row["bytes_per_transition"] = per
        print(f"{capacity:>9} {row['stored']:>8} {row['peak_rss_mb']:>7.0f} MB {per:>17,.0f} {row['seconds']:>8.0f} "
              f"{os.getloadavg()[0]:>5.1f}", flush=True)
    if len(rows) < 2:
        return 1
    largest = rows[-1]
    at_target = next((r["peak_rss_mb"] / 1024 for r in rows if r["capacity"] == TARGET_CAPACITY), None)
    estimate = (rows[0]["peak_rss_mb"] + largest["bytes_per_transition"] * (TARGET_CAPACITY - rows[0]["capacity"])
                / 2**20) / 1024
    stored_bytes = FRAME_BYTES // 4 if stack else FRAME_BYTES
    print(f"observation bytes per transition: {FRAME_BYTES:,} (4 x 84 x 84 uint8), stored {stored_bytes:,}; measured "
          f"{largest['bytes_per_transition']:,.0f}", flush=True)
    shown = f"measured {at_target:.2f} GiB" if at_target is not None else f"estimated {estimate:.2f} GiB"
    value = at_target if at_target is not None else estimate
    print(f"{TARGET_CAPACITY:,} transitions: {shown} peak RSS (target <= {TARGET_GB:g} GB = "
          f"{TARGET_GB * 1e9 / 2**30:.2f} GiB): {'met' if value * 2**30 <= TARGET_GB * 1e9 else 'MISSED'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
