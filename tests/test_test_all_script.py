"""scripts/test_all.sh (`make test`'s runner) refuses a bad LAB_TEST_WORKERS in one line, before any test starts."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "test_all.sh"


@pytest.mark.parametrize("workers", ["abc", "0", "-1", "1 2", "100", "3; rm -rf /"])
def test_a_bad_worker_count_is_one_line_and_exit_2(workers):
    result = subprocess.run([str(SCRIPT)], env={**os.environ, "LAB_TEST_WORKERS": workers}, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2 and result.stdout == "", result.stdout[-2000:]
    assert result.stderr.count("\n") == 1 and "LAB_TEST_WORKERS must be a whole number" in result.stderr
