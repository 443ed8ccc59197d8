"""Validation loss per epoch of the char-rnn-shakespeare preset against a unigram-frequency baseline.

Runs in-process through the workload class (no Ray). The baseline predicts every character with the
training text's character frequencies, ignoring context: its cross-entropy on the validation text (nats
per character) is what the char-RNN must beat. Prints per epoch the validation loss and accuracy, the ratio
of the loss to the baseline's, training windows (samples) and characters per second, the load average
beside each line (2 shared cores), and the text sampled at the end.
Run: python benchmarks/char_rnn.py [--seeds 42] [--set max_epochs=2 max_chars=200000]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PRESET = "char-rnn-shakespeare"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to run (default: the preset's)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override preset params")
    args = parser.parse_args()

    from lab import settings, spec as specs, workload as workloads

    settings.apply_worker_env()
    (spec,) = specs.load(PRESET)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    cls = workloads.get("keras_char_rnn")
    worst = 0.0
    for seed in args.seeds or [spec.trial_params["seed"]]:
        params = {**spec.trial_params, **overrides, "seed": seed}
        start = time.perf_counter()
        w = cls(cls.make_config(params), workloads.TrialContext(trial_dir=tempfile.mkdtemp(prefix="char-rnn-bench-")))
        try:
            w.setup()
            print(f"{PRESET} seed {seed}: {len(w.ids['train']):,} training characters, vocabulary {w.vocab_size}, "
                  f"{w.num_windows:,} windows of {params['seq_length']}; setup {time.perf_counter() - start:.1f} s")
            print(f"unigram baseline: val loss {w.unigram['valid']:.3f} nats/char")
            print(f"{'epoch':>5}{'train loss':>11}{'val loss':>9}{'val acc':>8}{'/unigram':>9}{'samples/s':>10}"
                  f"{'chars/s':>9}{'s/epoch':>8}{'load':>6}")
            metrics = {"done": False}
            while not metrics["done"]:
                metrics = w.step()
                print(f"{metrics['charts/epoch']:>5.0f}{metrics['train/loss']:>11.3f}{metrics['val/loss']:>9.3f}"
                      f"{metrics['val/accuracy']:>8.3f}{metrics['val/loss_ratio_to_unigram']:>9.3f}"
                      f"{metrics['charts/samples_per_sec']:>10.0f}{metrics['charts/chars_per_sec']:>9.0f}"
                      f"{metrics['charts/seconds_per_epoch']:>8.1f}{os.getloadavg()[0]:>6.1f}", flush=True)
            print(f"test loss {metrics['test/loss']:.3f} (unigram {metrics['baseline/unigram_test_loss']:.3f}); "
                  f"{time.perf_counter() - start:.0f} s in all")
            for temperature, text in w.samples().items():
                print(f"--- temperature {temperature:g}:\n{params['seed_text']}{text}")
        finally:
            w.close()
        worst = max(worst, metrics["val/loss"])
    met = worst <= spec.reference.score
    print(f"worst val/loss {worst:.3f}; reference {spec.reference.score:g}: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
