"""CLI start-up: `lab --help` and `lab ls` against a bare `python -c pass`; target under 0.5 s.

Also checks that neither command imports TensorFlow or Ray.  Run: python benchmarks/cli_startup.py
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 0.5
REPEATS = 7


def timed(command: list[str], env: dict) -> float:
    runs = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def heavy_imports(args: list[str], env: dict) -> list[str]:
    code = (f"import sys; from lab import cli; cli.main({args!r}); "
            "print('HEAVY:' + ','.join(m for m in ('tensorflow', 'ray', 'tf_agents', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    line = [text for text in out.stdout.splitlines() if text.startswith("HEAVY:")][-1]
    return [m for m in line[len("HEAVY:"):].split(",") if m]


def main() -> int:
    lab = str(Path(sys.executable).parent / "lab")
    env = {**os.environ, "LAB_HOME": tempfile.mkdtemp(prefix="lab-bench-")}
    baseline = timed([sys.executable, "-c", "pass"], env)
    print(f"{'command':<16}{'median s':>10}{'vs python':>11}{'target':>9}  heavy imports")
    print(f"{'python -c pass':<16}{baseline:>10.3f}{1.0:>10.2f}x")
    ok = True
    for args in (["--help"], ["ls"], ["presets"]):
        seconds = timed([lab, *args], env)
        heavy = heavy_imports(args, env) if args != ["--help"] else []  # --help exits in argparse
        passed = seconds < TARGET_S and not heavy
        ok &= passed
        print(f"{'lab ' + ' '.join(args):<16}{seconds:>10.3f}{seconds / baseline:>10.2f}x{TARGET_S:>8}s  "
              f"{','.join(heavy) or 'none'}  {'OK' if passed else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
