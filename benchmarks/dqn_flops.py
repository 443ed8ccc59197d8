"""DQN Breakout's gradient step against this machine's physical limit: FLOPs per step over measured GFLOP/s.

1. The FLOPs of one gradient step of the preset's Q-network (the Nature CNN on 84x84x4 frames by default),
   counted from its layers: the online network forward and backward on the batch (backward = 2x forward),
   the target network forward on the next observations, and with double DQN the online network's forward
   on them too (it picks the next action). Multiply-adds count 2 FLOPs; activations and the loss are left out.
2. What this machine does: the best GFLOP/s of TensorFlow (float32, the process's threads) on the
   network's own convolutions and dense layers at the batch size, forward only, and of a 2048x2048 matmul.
3. What the lab takes per gradient step: the preset's traced train function (replay sampling, n-step
   returns, the loss, the optimizer update and the target sync included), after a warm-up, and a bare
   Keras train step of the same network on a fixed batch (no replay): the floor of TensorFlow's own overhead.

Printed: each figure, and how far the lab's step is above the FLOP limit at the network's GFLOP/s.

    python benchmarks/dqn_flops.py [--preset dqn-breakout-dopamine] [--steps 200]
"""
from __future__ import annotations

import argparse
import sys
import time

from _learning import cpus, load, make_workload, unknown_preset

from lab import settings


def layer_macs(height: int, width: int, channels: int, conv_layers, fc_layers, actions: int) -> list[tuple[str, int]]:
    """(layer, multiply-adds per sample) of a conv stack ([filters, kernel, stride], 'valid' padding) + dense."""
    rows = []
    for filters, kernel, stride in conv_layers:
        height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
        rows.append((f"conv {filters}x{kernel}x{kernel}/{stride}", height * width * filters * kernel * kernel * channels))
        channels = filters
    units = height * width * channels
    for size in [*fc_layers, actions]:
        rows.append((f"dense {units}->{size}", units * size))
        units = size
    return rows


def best_rate(fn, flops: float, repeats: int = 30) -> float:
    """The best GFLOP/s of `fn` over `repeats` calls (after one untimed)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return flops / best / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="dqn-breakout-dopamine")
    parser.add_argument("--steps", type=int, default=200, help="gradient steps timed")
    args = parser.parse_args(argv)
    if unknown_preset("dqn_flops", [args.preset]):
        return 2
    from lab import spec as specs

    params = specs.load(args.preset)[0].trial_params
    if not params.get("conv_layers"):
        print(f"dqn_flops: error: preset '{args.preset}' has no conv_layers", file=sys.stderr)
        return 2
    settings.apply_worker_env()  # TF_USE_LEGACY_KERAS=1 before TensorFlow is imported
    import numpy as np
    import tensorflow as tf
    batch, conv, fc = int(params.get("batch_size", 64)), params["conv_layers"], params["fc_layers"]
    double = params.get("double_dqn", True)
    print(f"{args.preset}: batch {batch}, conv {conv}, fc {fc}, double DQN {double}; {cpus()}, "
          f"TF threads intra {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}; load {load():.2f}")

    # 1. FLOPs per gradient step
    rows = layer_macs(84, 84, 4, conv, fc, actions=4)
    forward = 2 * sum(macs for _, macs in rows) * batch
    passes = 3 + 1 + (1 if double else 0)  # online fwd + bwd (2x), target fwd, online fwd on s' (double)
    step_flops = forward * passes
    for name, macs in rows:
        print(f"  {name:<22} {2 * macs / 1e6:8.2f} MFLOP per sample")
    print(f"forward pass {forward / 1e9:.3f} GFLOP per batch; gradient step {passes} forward-equivalents = "
          f"{step_flops / 1e9:.3f} GFLOP")

    # 2. This machine's GFLOP/s on the network's own layers, and on a large matmul
    network = tf.keras.Sequential([tf.keras.layers.InputLayer((84, 84, 4))]
                                  + [tf.keras.layers.Conv2D(f, k, s, activation="relu") for f, k, s in conv]
                                  + [tf.keras.layers.Flatten()] + [tf.keras.layers.Dense(u, activation="relu") for u in fc]
                                  + [tf.keras.layers.Dense(4)])
    frames = tf.constant(np.random.default_rng(0).random((batch, 84, 84, 4), np.float32))
    forward_fn = tf.function(lambda: network(frames))
    network_gflops = best_rate(lambda: forward_fn().numpy(), forward)
    a = tf.random.normal((2048, 2048))
    matmul = tf.function(lambda: tf.matmul(a, a))
    matmul_gflops = best_rate(lambda: matmul().numpy(), 2 * 2048**3, repeats=10)
    print(f"measured: the network's forward pass {network_gflops:.1f} GFLOP/s, a 2048^2 matmul {matmul_gflops:.1f} "
          f"GFLOP/s; load {load():.2f}")
    limit_ms = step_flops / (network_gflops * 1e9) * 1e3

    # 3. A bare Keras train step (fixed batch, no replay) and the lab's traced train function
    optimizer = tf.keras.optimizers.Adam(1e-4)
    target = tf.keras.models.clone_model(network)
    next_frames = tf.constant(np.random.default_rng(1).random((batch, 84, 84, 4), np.float32))
    actions = tf.constant(np.random.default_rng(2).integers(0, 4, batch), tf.int32)

    @tf.function
    def bare_step():
        next_q = target(next_frames)
        chosen = tf.argmax(network(next_frames), axis=1) if double else tf.argmax(next_q, axis=1)
        bootstrap = tf.gather(next_q, chosen, batch_dims=1)
        with tf.GradientTape() as tape:
            q = tf.gather(network(frames), actions, batch_dims=1)
            loss = tf.reduce_mean(tf.keras.losses.huber(bootstrap[:, None], q[:, None]))
        optimizer.apply_gradients(zip(tape.gradient(loss, network.trainable_variables), network.trainable_variables))
        return loss

    bare_step()
    started = time.perf_counter()
    for _ in range(args.steps):
        bare_step()
    bare_ms = (time.perf_counter() - started) / args.steps * 1e3

    per_call = 16
    workload = make_workload(args.preset, {"initial_collect_steps": 2000, "train_steps_per_iteration": per_call,
                                           "replay_capacity": 20_000, "eval_episodes": 1})
    try:
        while int(workload.env_steps.numpy()) < workload.learning_starts:
            workload._random_collect()
        workload._train()
        calls = max(1, args.steps // per_call)
        started = time.perf_counter()
        for _ in range(calls):
            workload._train()
        lab_ms = (time.perf_counter() - started) / (calls * per_call) * 1e3
    finally:
        workload.close()
    print(f"\n{'per gradient step':<46}{'ms':>8}{'x limit':>9}")
    for name, ms in ((f"FLOP limit at {network_gflops:.0f} GFLOP/s", limit_ms), ("bare Keras step (no replay)", bare_ms),
                     ("the lab's train function (replay, n-step, sync)", lab_ms)):
        print(f"{name:<46}{ms:>8.2f}{ms / limit_ms:>8.2f}x")
    print(f"load average after: {load():.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
