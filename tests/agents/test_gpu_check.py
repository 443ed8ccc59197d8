"""benchmarks/gpu_check.sh with the tiny budget: one line says there is no GPU (here), then one table."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU machine: the table has GPU figures")
def test_gpu_check_tiny_prints_one_table_of_cpu_figures():
    out = subprocess.run(["bash", str(ROOT / "benchmarks/gpu_check.sh"), "--tiny"], capture_output=True, text=True, check=False,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "gpu_check: no GPU on this machine: the CPU side only"
    assert lines[1] == "| measure | unit | CPU | GPU | load |"
    rows = lines[3:]
    assert len(rows) == 3
    for row in rows[:2]:
        assert re.fullmatch(r"\| [^|]+ \| [^|]+ \| \d+\.\d \| no GPU \| \d+\.\d\d \|", row), row
    assert re.fullmatch(r"\| Keras CNN, MirroredStrategy over 0 GPUs \| steps/s \| - \| no GPU \| \d+\.\d\d \|", rows[2])
