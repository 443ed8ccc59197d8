"""Fashion-MNIST accuracy of the shipped classifier presets against the book's figures.

Trains each preset's configuration (`mlp-fashion-mnist`, `cnn-fashion-mnist`, `resnet-fashion-mnist`)
through the workload itself, as one trial would (setup, one step per epoch), and prints the test accuracy
beside the book's: 88.5% for the MLP (chapter 10), 92% for the CNN (chapter 14). The ResNet is compared
with its preset's reference. The load average is printed beside the times: they are wall seconds.

Run: python benchmarks/fashion_mnist.py [--model mlp|cnn|resnet|all] [--quick]
(--quick: 6000 training images and 2 epochs, a smoke run whose accuracy says nothing about the book's.)
The full MLP takes a few minutes on 2 free cores, the CNN ~8 minutes, the ResNet ~10.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BOOK = {"mlp": 0.885, "cnn": 0.92}  # Hands-On ML, 3rd edition: chapter 10 MLP, chapter 14 CNN
PRESETS = {"mlp": "mlp-fashion-mnist", "cnn": "cnn-fashion-mnist", "resnet": "resnet-fashion-mnist"}


def train(preset: str, quick: bool) -> dict:
    """Run the preset's trial configuration in this process; the last step's metrics, wall seconds, best val."""
    from lab import spec as specs
    from lab.workload.testing import make

    (spec,) = specs.load(preset)
    params = {**spec.trial_params, "log_images": 0}  # trial_params carries the spec's seed
    if quick:
        params.update(subset=6000, max_epochs=2)
    start = time.perf_counter()
    workload = make(spec.workload, params)
    try:
        while True:
            metrics = workload.step()
            print(f"  {preset} epoch {metrics['charts/epoch']:.0f}: test/accuracy {metrics['test/accuracy']:.4f} "
                  f"({metrics['charts/seconds_per_epoch']:.1f} s/epoch, load {os.getloadavg()[0]:.1f})", flush=True)
            if metrics["done"]:
                break
    finally:
        workload.close()
    metrics["wall_seconds"] = time.perf_counter() - start
    metrics["reference"] = spec.reference.score
    return metrics


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=[*PRESETS, "all"], default="all", help="which preset (default: mlp and cnn)")
    parser.add_argument("--quick", action="store_true", help="6000 images, 2 epochs: a smoke run")
    args = parser.parse_args()
    models = ["mlp", "cnn"] if args.model == "all" else [args.model]
    rows = []
    for model in models:
        metrics = train(PRESETS[model], args.quick)
        rows.append((model, metrics))
    print(f"\n{'model':<8}{'epochs':>7}{'test acc':>10}{'book':>8}{'preset ref':>12}{'wall s':>9}{'s/epoch':>9}  load avg")
    ok = True
    for model, m in rows:
        book = BOOK.get(model)
        reached = m["test/accuracy"] >= m["reference"]
        ok &= reached or args.quick
        print(f"{model:<8}{m['charts/epoch']:>7.0f}{m['test/accuracy']:>10.4f}{(f'{book:.3f}' if book else '-'):>8}"
              f"{m['reference']:>12.3f}{m['wall_seconds']:>9.0f}{m['charts/seconds_per_epoch']:>9.1f}  "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}{'' if reached else '  (below the reference)'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
