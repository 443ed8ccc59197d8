"""One table: PPO Breakout training env steps/s and a Keras CNN's training steps/s on the GPU and the CPU,
and MirroredStrategy over the visible GPUs (benchmarks/gpu_check.sh runs it; `--tiny` for a quick check).

Each figure is measured in a child process (CUDA_VISIBLE_DEVICES empty for the CPU side), with the load.
Without a GPU: one line saying so, then the CPU side only.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def keras_cnn(strategy_name: str, batches: int) -> float:
    """Training steps/s of a small Keras CNN (28x28x1, batch 256) under the named distribution strategy."""
    import numpy as np
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy() if strategy_name == "mirrored" else tf.distribute.get_strategy()
    with strategy.scope():
        model = tf.keras.Sequential([
            tf.keras.layers.Conv2D(32, 3, activation="relu", input_shape=(28, 28, 1)),
            tf.keras.layers.Conv2D(64, 3, activation="relu"), tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(128, activation="relu"), tf.keras.layers.Dense(10)])
        model.compile("adam", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.rand(256 * (batches + 2), 28, 28, 1).astype("float32")
    y = np.random.randint(0, 10, len(x))
    model.fit(x[:512], y[:512], batch_size=256, verbose=0)  # first calls
    started = time.perf_counter()
    model.fit(x[512:], y[512:], batch_size=256, verbose=0)
    return batches / (time.perf_counter() - started)


def ppo_breakout(rounds: int, tiny: bool) -> float:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from ppo_one_pass import env_steps_per_second

    params = ({"seed": 0, "num_envs": 2, "collect_steps_per_iteration": 32, "num_epochs": 1, "num_minibatches": 1,
               "eval_episodes": 1} if tiny else {"seed": 0})
    return env_steps_per_second("ppo-breakout", params, rounds)


def child(what: str, tiny: bool) -> float:
    from lab import settings

    settings.apply_worker_env()
    if what == "ppo":
        return ppo_breakout(1 if tiny else 3, tiny)
    return keras_cnn(what.split(":")[1], 2 if tiny else 50)


def measure(what: str, device: str, tiny: bool) -> str:
    env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": ""} if device == "CPU" else {})}
    out = subprocess.run([sys.executable, __file__, "--child", what] + ["--tiny"] * tiny, env=env,
                         capture_output=True, text=True, timeout=240, check=False)
    lines = out.stdout.strip().splitlines()
    return f"{json.loads(lines[-1]):.1f}" if out.returncode == 0 and lines else f"failed ({out.returncode})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a seconds-long check of the script")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.tiny)))
        return 0
    gpus = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False).stdout.strip().splitlines() \
        if subprocess.run(["which", "nvidia-smi"], capture_output=True, check=False).returncode == 0 else []
    if not gpus:
        print("gpu_check: no GPU on this machine: the CPU side only")
    rows = [("PPO Breakout training", "env steps/s", "ppo"), ("Keras CNN training", "steps/s", "cnn:default")]
    print("| measure | unit | CPU | GPU | load |")
    print("| --- | --- | --- | --- | --- |")
    for label, unit, what in rows:
        cpu = measure(what, "CPU", args.tiny)
        gpu = measure(what, "GPU", args.tiny) if gpus else "no GPU"
        print(f"| {label} | {unit} | {cpu} | {gpu} | {os.getloadavg()[0]:.2f} |", flush=True)
    mirrored = measure("cnn:mirrored", "GPU", args.tiny) if gpus else "no GPU"
    print(f"| Keras CNN, MirroredStrategy over {len(gpus)} GPUs | steps/s | - | {mirrored} | "
          f"{os.getloadavg()[0]:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
