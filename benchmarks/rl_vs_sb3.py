"""One DQN trial and one PPO trial to 475 on CartPole-v1 through `lab run`, through the lab server and
`--no-server`, against Stable-Baselines3 with rl-zoo's tuned hyperparameters, each a whole process from
start to exit, seed 0.

Sides, one after another in one benchmark run: the peer (benchmarks/peers/sb3_cartpole.py in its own
venv, benchmarks/.peer-venv, created on first use: torch 2.13.0 CPU, stable-baselines3 and rl-zoo3
2.9.2; never in the lab's dependencies), then `lab run PRESET --set num_samples=1 --set search={}`:
through the lab server in a new LAB_HOME, its first run (which starts the server and its warm Ray) and a
second once the warm pool is full again (server warm; `lab down` after); `--no-server` with Ray started by
the run (cold); `--no-server` on a warm instance (`lab up` before, not timed; the run starts when its
warm workers are idle). Printed per row: wall seconds, ratio to the peer against that row's target
(server warm: DQN 0.25x, PPO 0.5x; first run: PPO 1.0x; --no-server, cold and warm: DQN 0.5x, PPO 0.8x)
and its phases: imports (under the server: the client's start to the forked run's start), Ray
start/connect, Tuner set-up, trial setup with tracing, training (the trial's time_total_s: iterations
with their evaluations), registry writes, shut-down, other (the rest: Tune's loop, worker start). Both
sides stop at a 10-episode greedy mean >= the score, evaluated every ~1000 env steps. The load average is
printed: figures count on a quiet machine only.

    python benchmarks/rl_vs_sb3.py                 # dqn and ppo: server first and warm, --no-server cold and warm
    python benchmarks/rl_vs_sb3.py ppo --quick     # score 200: checks the sides run, not a measurement
    python benchmarks/rl_vs_sb3.py --no-warm --no-server-rows   # the --no-server cold run only

`--heavy [PRESET ...]`: the heavy presets' training rate instead (ppo-breakout, dqn-breakout, sac-hopper,
td3-hopper): env steps/s over whole collect+train rounds after a warm-up, each side in its own process, one
after the other: the lab's (benchmarks/rl_throughput.py: the preset's own traced functions) and SB3's with
rl-zoo's settings (benchmarks/peers/sb3_throughput.py). Both use the same preprocessing (Atari: 30 no-ops,
4-frame skip with max-pooling, 84x84 grey, 4 stacked, episodic life, clipped rewards) and the same 2 threads;
random warm-up shortened to 1,000 env steps on both sides. dqn-breakout runs with rl-zoo's batch of 32 (the
book's preset takes 64). Targets (the issue): PPO and DQN Breakout at least 1.5x SB3.

    python benchmarks/rl_vs_sb3.py --heavy                       # all four, 60 s timed per side
    python benchmarks/rl_vs_sb3.py --heavy sac-hopper --seconds 20

`--wall-clock MINUTES [PRESET ...]`: the return each side reaches in the same training time (ppo-breakout,
sac-hopper): trained from the first env step (random warm-up included, the preset's and rl-zoo's own) for
MINUTES, then `--episodes` greedy / deterministic episodes each (untimed) on the full game.

    python benchmarks/rl_vs_sb3.py --wall-clock 10 ppo-breakout --episodes 5
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _whole_process import (  # noqa: E402
    ROOT, lab_run, load, new_home, print_rows, server_runs, wait_warm, warm_instance)

PEER_VENV = ROOT / "benchmarks" / ".peer-venv"
PEER_PACKAGES = (["torch==2.13.0"], ["stable-baselines3==2.9.2", "rl-zoo3==2.9.2"],
                 ["ale-py==0.12.1", "mujoco==4.0.0", "opencv-python-headless==5.0.0.93"])  # the heavy presets' envs (SB3's Atari wrapper: OpenCV), at the lab's versions
TARGETS = {"dqn": 0.5, "ppo": 0.8}  # --no-server, cold and warm
SERVER_TARGETS = {"dqn": {"server warm": 0.25}, "ppo": {"server warm": 0.5, "first run (server starts)": 1.0}}
COLD, WARM = "lab run --no-server, cold (Ray started)", "lab run --no-server, warm (lab up)"


def peer_python() -> str:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating the peer's venv {PEER_VENV} (torch CPU, stable-baselines3, rl-zoo3) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        for packages in PEER_PACKAGES:  # torch first: its CPU build, not a CUDA one pulled by SB3
            subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return str(python)


HEAVY = {  # preset: (SB3's algorithm, the lab's overrides that match rl-zoo's settings)
    "ppo-breakout": ("ppo", {}),
    "dqn-breakout": ("dqn", {"batch_size": 32}),  # rl-zoo's batch (the book's, in the preset: 64)
    "sac-hopper": ("sac", {}),
    "td3-hopper": ("td3", {}),
}
HEAVY_TARGETS = {"ppo-breakout": 1.5, "dqn-breakout": 1.5}  # lab / SB3 training env steps/s
WALL_CLOCK = ("ppo-breakout", "sac-hopper")  # the presets for the return at equal wall-clock


def warm_peer() -> None:
    """Import the peer's packages once, untimed: the first import after an install compiles bytecode and
    reads the files from disk, which a user's later runs (and the lab's side, run before) do not pay."""
    subprocess.run([peer_python(), "-c", "import torch, stable_baselines3, rl_zoo3, gymnasium"], check=True,
                   capture_output=True)


def peer(algo: str, score: float, seed: int) -> tuple[float, dict, dict]:
    warm_peer()
    start = time.time()
    out = subprocess.run([peer_python(), str(ROOT / "benchmarks" / "peers" / "sb3_cartpole.py"), algo,
                          "--seed", str(seed), "--score", str(score), "--process-start", str(start)],
                         capture_output=True, text=True, check=True)
    end = time.time()
    info = json.loads(out.stdout.strip().splitlines()[-1])
    cut = {"imports": info["imports"], "ray start/connect": 0.0, "tuner set-up": 0.0, "setup+tracing": info["setup"],
           "training": info["training"], "registry writes": 0.0, "shut-down": end - info["end"]}
    cut["other"] = (end - start) - sum(cut.values())
    return end - start, cut, info


def ensure_peer_envs(python: str) -> None:
    """The heavy presets' envs in the peer's venv (a venv made before they were added lacks them)."""
    if subprocess.run([python, "-c", "import ale_py, mujoco, cv2"], capture_output=True).returncode != 0:
        print("installing ale-py, mujoco and OpenCV into the peer's venv ...", flush=True)
        subprocess.run([python, "-m", "pip", "install", "-q", *PEER_PACKAGES[-1]], check=True)


def _json_line(command: list[str]) -> dict:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"rl_vs_sb3: {Path(command[1]).name} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def heavy(presets: list[str], seconds: float) -> int:
    """Training env steps/s of each heavy preset against SB3's, side by side; 1 when a target is missed."""
    python = peer_python()
    ensure_peer_envs(python)
    rows, ok = [], True
    for preset in presets:
        algo, overrides = HEAVY[preset]
        sets = [arg for key, value in overrides.items() for arg in ("--set", f"{key}={value}")]
        print(f"\n{preset}: lab, then SB3 {algo.upper()} (rl-zoo), {seconds:g} s timed each; load {load()}", flush=True)
        lab = _json_line([sys.executable, str(ROOT / "benchmarks" / "rl_throughput.py"), preset,
                          "--seconds", str(seconds), *sets])
        print(f"  lab: {lab['env_steps_per_s']:.1f} env steps/s over {lab['timed_env_steps']} steps "
              f"(peak RSS {lab['peak_rss_mb']:.0f} MB; load {lab['load_before']:.2f} -> {lab['load_after']:.2f})", flush=True)
        before = load()
        peer = _json_line([python, str(ROOT / "benchmarks" / "peers" / "sb3_throughput.py"), algo,
                           "--seconds", str(seconds)])
        print(f"  SB3: {peer['env_steps_per_s']:.1f} env steps/s over {peer['timed_env_steps']} steps, "
              f"{peer['n_envs']} envs, {peer['torch_threads']} torch threads (load {before} -> {load()})", flush=True)
        rows.append((preset, lab["env_steps_per_s"], peer["env_steps_per_s"]))
    print(f"\n{'preset':<14}{'lab steps/s':>13}{'SB3 steps/s':>13}{'lab / SB3':>11}  target")
    for preset, lab_rate, peer_rate in rows:
        ratio, target = lab_rate / peer_rate, HEAVY_TARGETS.get(preset)
        verdict = "-" if target is None else f">= {target}x: {'met' if ratio >= target else 'MISSED'}"
        ok &= target is None or ratio >= target
        print(f"{preset:<14}{lab_rate:>13.1f}{peer_rate:>13.1f}{ratio:>10.2f}x  {verdict}")
    print(f"load average after: {load()}")
    return 0 if ok else 1


def wall_clock(presets: list[str], minutes: float, episodes: int) -> int:
    """The return each side reaches after `minutes` of training, side by side."""
    python = peer_python()
    ensure_peer_envs(python)
    rows = []
    for preset in presets:
        algo, _ = HEAVY[preset]
        print(f"\n{preset}: lab, then SB3 {algo.upper()} (rl-zoo), {minutes:g} min of training each, then "
              f"{episodes} episodes; load {load()}", flush=True)
        lab = _json_line([sys.executable, str(ROOT / "benchmarks" / "rl_throughput.py"), preset, "--seconds",
                          str(minutes * 60), "--learning-starts", "-1", "--evaluate", "--set", f"eval_episodes={episodes}"])
        print(f"  lab: {lab['env_steps']} env steps in {lab['seconds']:.0f} s, return {lab['eval_return_mean']:.1f} "
              f"+- {lab['eval_return_std']:.1f} (load {lab['load_before']:.2f} -> {lab['load_after']:.2f})", flush=True)
        before = load()
        peer = _json_line([python, str(ROOT / "benchmarks" / "peers" / "sb3_throughput.py"), algo, "--seconds",
                           str(minutes * 60), "--evaluate", str(episodes)])
        print(f"  SB3: {peer['env_steps']} env steps in {peer['seconds']:.0f} s, return {peer['eval_return_mean']:.1f} "
              f"+- {peer['eval_return_std']:.1f} (load {before} -> {load()})", flush=True)
        rows.append((preset, lab, peer))
    print(f"\n{'preset':<14}{'minutes':>8}{'lab steps':>11}{'lab return':>12}{'SB3 steps':>11}{'SB3 return':>12}")
    for preset, lab, peer in rows:
        print(f"{preset:<14}{minutes:>8g}{lab['env_steps']:>11}{lab['eval_return_mean']:>12.1f}"
              f"{peer['env_steps']:>11}{peer['eval_return_mean']:>12.1f}")
    print(f"load average after: {load()}")
    return 0


def lab_args(algo: str, score: float, seed: int) -> list[str]:
    return [f"{algo}-cartpole", "--set", "num_samples=1", "--set", "search={}", "--set", f"seed={seed}",
            "--set", f"stop.eval/average_return={score:g}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("algos", nargs="*", help="dqn, ppo (default: both)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="score 200 instead of 475 (a check, not a measurement)")
    parser.add_argument("--no-warm", action="store_true", help="skip the --no-server run on a warm `lab up` instance")
    parser.add_argument("--no-server-rows", action="store_true", help="skip the runs through the lab server")
    parser.add_argument("--heavy", action="store_true", help="the heavy presets' training env steps/s instead")
    parser.add_argument("--seconds", type=float, default=60.0, help="--heavy: timed seconds per side")
    parser.add_argument("--wall-clock", type=float, metavar="MINUTES", help="the return at equal training time")
    parser.add_argument("--episodes", type=int, default=5, help="--wall-clock: evaluation episodes per side")
    args = parser.parse_args()
    if args.wall_clock is not None:
        if set(args.algos) - set(WALL_CLOCK) or not args.wall_clock > 0 or args.episodes < 1:
            print(f"rl_vs_sb3.py: error: --wall-clock takes minutes > 0, --episodes >= 1 and presets among "
                  f"{', '.join(WALL_CLOCK)}", file=sys.stderr)
            return 2
        return wall_clock(args.algos or list(WALL_CLOCK), args.wall_clock, args.episodes)
    if args.heavy:
        if set(args.algos) - set(HEAVY):
            print(f"rl_vs_sb3.py: error: unknown heavy preset(s): {', '.join(sorted(set(args.algos) - set(HEAVY)))} "
                  f"(known: {', '.join(HEAVY)})", file=sys.stderr)
            return 2
        return heavy(args.algos or list(HEAVY), args.seconds)
    if set(args.algos) - set(TARGETS):
        parser.error(f"unknown algorithm(s): {', '.join(sorted(set(args.algos) - set(TARGETS)))}")
    score = 200.0 if args.quick else 475.0
    ok = True
    for algo in args.algos or ["dqn", "ppo"]:
        print(f"\n{algo.upper()} on CartPole-v1 to a greedy mean of {score:g}, seed {args.seed}; load before {load()}",
              flush=True)
        peer_s, peer_cut, info = peer(algo, score, args.seed)
        print(f"  peer: SB3 {algo.upper()} (rl-zoo hyperparameters, {info['n_envs']} envs): {peer_s:.1f} s, "
              f"{info['env_steps']} env steps, best {info['score']:.1f} (load {load()})", flush=True)
        rows = [(f"SB3 {algo.upper()} (rl-zoo)", peer_s, peer_cut)]
        targets = {COLD: TARGETS[algo], WARM: TARGETS[algo],
                   **{f"lab run, {kind}": goal for kind, goal in SERVER_TARGETS[algo].items()}}
        runs = [] if args.no_server_rows else server_runs(lab_args(algo, score, args.seed), "lab run")
        runs.append((COLD, *lab_run(lab_args(algo, score, args.seed), new_home())))
        if not args.no_warm:
            home = new_home()
            with warm_instance(home):
                wait_warm(home)
                runs.append((WARM, *lab_run(lab_args(algo, score, args.seed), home)))
        solved = [info["solved"]]
        for name, seconds, cut, best in runs:
            print(f"  {name}: {seconds:.1f} s, {best['last_result'].get('charts/env_steps')} env steps, "
                  f"best {best['best_metric']:.1f}", flush=True)
            rows.append((name, seconds, cut))
            solved.append(best["best_metric"] >= score)
        print(f"\n{algo.upper()}: whole processes, seconds, ratio to the peer against each row's target; "
              f"load after {load()}")
        print_rows(rows, peer_s, targets, rows[0][0])
        ok &= all(solved)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
