"""benchmarks/dqn_flops.py: the FLOP count of the Nature CNN, and bad input in one line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_the_nature_cnn_counts_as_published():
    from dqn_flops import layer_macs

    rows = layer_macs(84, 84, 4, [[32, 8, 4], [64, 4, 2], [64, 3, 1]], [512], actions=4)
    assert [name for name, _ in rows] == ["conv 32x8x8/4", "conv 64x4x4/2", "conv 64x3x3/1", "dense 3136->512",
                                          "dense 512->4"]  # 20x20x32, 9x9x64, 7x7x64 = 3136 features
    assert rows[0][1] == 20 * 20 * 32 * 8 * 8 * 4 and rows[3][1] == 3136 * 512
    assert sum(macs for _, macs in rows) == 9_345_024  # ~18.7 MFLOP a forward pass per frame stack


def test_a_preset_without_convolutions_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "dqn_flops.py"), "--preset", "dqn-cartpole"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == ["dqn_flops: error: preset 'dqn-cartpole' has no conv_layers"]
