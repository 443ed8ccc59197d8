"""Overhead of `lab run` for a Keras model against the same model trained by a plain `model.fit` script.

Both sides are fresh processes timed end to end (Python start, TensorFlow import, data, training):
- plain: the mlp-fashion-mnist model (same builder, optimizer, cosine schedule, batch, validation split)
  trained by one `model.fit(..., epochs=N, validation_data=...)` call, then evaluated on the test set;
- lab: `lab run mlp-fashion-mnist --no-server` for the same N epochs as one Tune trial (Ray started by
  the run, registry, TensorBoard scalars and images, a checkpoint and a val evaluation after every epoch),
  with `test_every=N`: the test split evaluated once at the end, as the plain script does, with the
  preset's own resources;
- lab warm: the same `--no-server` on a warm instance (`lab up` before, not timed);
- lab first / lab server: the same through the lab server in a new LAB_HOME: its first run (which starts
  the server and its warm Ray), then a second once the warm pool is full again (`lab down` after).
The lab's fixed cost (Ray start ~4 s, imports) is amortised over the epochs: the ratio falls as N grows.
The per-epoch cost of the lab is printed from the trial's results: each iteration's time beyond the
`fit` (the validation evaluation, metrics, TensorBoard writes) and the gap between iterations (the
checkpoint and Tune's handling of the result).

With `--repeats 2` the runs go plain, lab, lab, plain (ABBA), so that a load that drifts during the
benchmark (a shared machine) weighs on both sides alike; the ratio is of the summed wall times.

Printed: a row per side (wall seconds, samples/s, best val accuracy, ratio to plain, per-epoch costs) and
each lab side's ratio against its target: server warm <= 1.03x, --no-server cold and warm <= 1.05x (the
first run through the server has none).

Run: python benchmarks/keras_overhead.py [--epochs 10] [--subset 0] [--repeats 1] [--quick] [--no-warm]
     [--no-server-rows]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PLAIN = """
import json, math, os, sys, time
sys.path.insert(0, {root!r})
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import tensorflow as tf
import imagesets as data
from deep.backend import make_optimizer
from deep.models import make_mlp
from deep.pipeline import split_validation
p = {params!r}
tf.keras.utils.set_random_seed(p["seed"])
(x, y), (x_test, y_test) = data.load("fashion_mnist", subset=p["subset"], seed=p["seed"])
(x_train, y_train), (x_val, y_val) = split_validation(x, y, p["validation_split"], p["seed"])
model = make_mlp(x_train.shape[1:], 10, tuple(p["hidden_units"]), p["dropout"])
steps = p["max_epochs"] * math.ceil(len(y_train) / p["batch_size"])
model.compile(optimizer=make_optimizer("adam", p["learning_rate"], decay_steps=steps),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
start = time.perf_counter()
history = model.fit(x_train, y_train, batch_size=p["batch_size"], epochs=p["max_epochs"],
                    validation_data=(x_val, y_val), verbose=0)
fit_seconds = time.perf_counter() - start
test = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
print(json.dumps({{"fit_seconds": fit_seconds, "num_train": len(y_train), "val": max(history.history["val_accuracy"]),
                  "test": test["accuracy"]}}))
"""


def plain(params: dict) -> tuple[float, dict]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PLAIN.format(root=str(ROOT), params=params)],
                         capture_output=True, text=True, check=True)
    return time.perf_counter() - start, json.loads(out.stdout.strip().splitlines()[-1])


def through_lab(epochs: int, subset: int, home: str | None = None, server: bool = False) -> tuple[float, dict]:
    """`lab run` as a whole process, through the lab server or `--no-server`: seconds, best val, per epoch."""
    home = home or tempfile.mkdtemp(prefix="lab-bench-")
    env = {**os.environ, "LAB_HOME": home}
    env.pop("LAB_NO_SERVER", None)
    env.pop("LAB_RAY_ADDRESS", None)
    lab = str(Path(sys.executable).parent / "lab")
    start = time.perf_counter()
    subprocess.run([lab, "run", "mlp-fashion-mnist", "--set", f"max_epochs={epochs}", "--set",
                    f"stop.training_iteration={epochs}", "--set", f"subset={subset}", "--set", f"test_every={epochs}",
                    *([] if server else ["--no-server"])], env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    code = ("import json; from lab.registry import Registry; r = Registry(); e = r.experiments(limit=1)[0]; "
            "t = r.best_trial(e['id']); print(json.dumps({'val': t['best_metric'], 'logdir': t['logdir']}))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    trial = json.loads(out.stdout.strip().splitlines()[-1])
    return seconds, {"val": trial["val"], **per_epoch(Path(trial["logdir"]) / "result.json")}


def per_epoch(results: Path) -> dict:
    """Mean seconds per iteration: in step() beyond fit (evaluation, metrics, TensorBoard) and between steps
    (the checkpoint, Tune's handling of the result), from the trial's results and its TensorBoard wall times."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    in_step = [r["time_this_iter_s"] - r["charts/seconds_per_epoch"] for r in rows]
    events = EventAccumulator(str(results.parent))
    events.Reload()
    walls = [event.wall_time for event in events.Scalars("train/loss")]  # written at the end of each step
    gaps = [b - a - r["time_this_iter_s"] for a, b, r in zip(walls, walls[1:], rows[1:])]
    return {"in_step": sum(in_step) / len(in_step), "between": sum(gaps) / len(gaps) if gaps else 0.0,
            "fit": sum(r["charts/seconds_per_epoch"] for r in rows) / len(rows)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--subset", type=int, default=0, help="training images (0: all 60000)")
    parser.add_argument("--repeats", type=int, default=1, help="2: plain, lab, lab, plain (ABBA)")
    parser.add_argument("--quick", action="store_true", help="3 epochs of 6000 images: checks the sides run")
    parser.add_argument("--no-warm", action="store_true", help="skip the --no-server run on a warm `lab up` instance")
    parser.add_argument("--no-server-rows", action="store_true", help="skip the runs through the lab server")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.subset = 3, 6000
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _whole_process import lab_server, wait_warm, warm_instance

    from lab import spec as specs

    (spec,) = specs.load("mlp-fashion-mnist")
    import dataclasses

    from lab import workload as workloads

    # every parameter of the trial (the preset names only those that differ from the workload's defaults)
    config = workloads.get(spec.workload).make_config(spec.trial_params)
    params = {**dataclasses.asdict(config), "max_epochs": args.epochs, "subset": args.subset}
    load_before = os.getloadavg()
    order = ["plain", "lab"] if args.repeats == 1 else ["plain", "lab", "lab", "plain"] * (args.repeats // 2)
    times: dict[str, list[float]] = {side: [] for side in ("plain", "lab", "lab warm", "lab first", "lab server")}
    outputs: dict[str, dict] = {}
    for side in order:
        seconds, outputs[side] = plain(params) if side == "plain" else through_lab(args.epochs, args.subset)
        times[side].append(seconds)
        print(f"  {side}: {seconds:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    if not args.no_warm:
        home = tempfile.mkdtemp(prefix="lab-bench-")
        with warm_instance(home):
            wait_warm(home)
            seconds, outputs["lab warm"] = through_lab(args.epochs, args.subset, home)
        times["lab warm"].append(seconds)
        print(f"  lab warm: {seconds:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    if not args.no_server_rows:
        home = tempfile.mkdtemp(prefix="lab-bench-")
        with lab_server(home):
            for side in ("lab first", "lab server"):
                if side == "lab server":
                    wait_warm(home)
                seconds, outputs[side] = through_lab(args.epochs, args.subset, home, server=True)
                times[side].append(seconds)
                print(f"  {side}: {seconds:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    plain_seconds = sum(times["plain"]) / len(times["plain"])
    plain_out = outputs["plain"]
    samples = plain_out["num_train"] * args.epochs
    print(f"mlp-fashion-mnist, {args.epochs} epochs of {plain_out['num_train']} images; load average before "
          f"{' '.join(f'{x:.1f}' for x in load_before)}, after {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'run':<42}{'wall s':>8}{'samples/s':>11}{'best val acc':>14}{'ratio':>8}  per epoch: fit, in step, between")
    print(f"{'plain model.fit (fresh process)':<42}{plain_seconds:>8.1f}{samples / plain_seconds:>11.0f}"
          f"{plain_out['val']:>14.4f}{1.0:>7.2f}x  fit {plain_out['fit_seconds'] / args.epochs:.2f} s")
    sides = (("lab first", "lab run, first run (server starts)", None), ("lab server", "lab run, server warm", 1.03),
             ("lab", "lab run --no-server, cold (Ray started)", 1.05), ("lab warm", "lab run --no-server, warm (lab up)", 1.05))
    for side, name, target in sides:
        if not times[side]:
            continue
        seconds, out = sum(times[side]) / len(times[side]), outputs[side]
        print(f"{name:<42}{seconds:>8.1f}{samples / seconds:>11.0f}{out['val']:>14.4f}{seconds / plain_seconds:>7.2f}x"
              f"  fit {out['fit']:.2f} s, in step +{out['in_step']:.3f} s, between +{out['between']:.3f} s")
        verdict = "" if target is None else f" (target {target}: {'met' if seconds / plain_seconds <= target else 'MISSED'})"
        print(f"  {side} / plain = {seconds / plain_seconds:.3f}x{verdict}; fixed cost + per-epoch overhead = "
              f"{seconds - plain_seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
