"""Quiet everywhere: `lab export`, `lab eval`, `lab tensorboard` and `lab.load` print only their own lines; the
libraries' (TensorFlow, oneDNN, CUDA, absl, Gym, TF-Agents' checkpoint) lines go to $LAB_HOME/logs/lab.log,
or to the terminal with --verbose. `lab.load` also cleans up after itself and gives SB3's `predict`."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import lab
from tests.proc_utils import ctrl_c_as_at_a_terminal
from tests.recorded import record_trial

NOISE = ("oneDNN", "cuda", "absl", "Gym has been unmaintained", "Value in checkpoint", "WARNING")


@pytest.fixture(scope="module")
def dqn(tmp_path_factory):
    """(env, experiment id) of a recorded DQN trial (its checkpoint holds a replay buffer)."""
    home = tmp_path_factory.mktemp("quiet-home")
    old = os.environ.get("LAB_HOME")
    os.environ["LAB_HOME"] = str(home)
    try:
        experiment_id = record_trial("dqn", None, home / "experiments" / "dqn", "eval/average_return")  # under the storage root
    finally:
        os.environ["LAB_HOME"] = old or ""
    return {"LAB_HOME": str(home)}, str(experiment_id)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def lines(text: str) -> list[str]:
    return text.splitlines()


def test_export_prints_one_line_and_logs_the_rest(dqn, tmp_path):
    env, experiment = dqn
    result = lab("export", experiment, "--out", str(tmp_path / "out"), env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(lines(result.stdout)) == 1 and result.stdout.startswith("exported trial"), result.stdout
    assert result.stderr == "", result.stderr
    text = (Path(env["LAB_HOME"]) / "logs" / "lab.log").read_text()
    assert "oneDNN" in text and f"lab export {experiment}" in text


def test_export_verbose_shows_the_libraries_lines(dqn, tmp_path):
    env, experiment = dqn
    result = lab("export", experiment, "--out", str(tmp_path / "out"), "--verbose", env=env)
    assert result.returncode == 0 and "oneDNN" in result.stderr


def test_eval_prints_its_three_lines(dqn):
    env, experiment = dqn
    result = lab("eval", experiment, "--episodes", "2", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(lines(result.stdout)) == 3 and "return" in result.stdout, result.stdout
    assert result.stderr == "", result.stderr


def test_errors_still_reach_the_terminal(dqn):
    env, _ = dqn
    result = lab("export", "9999", "--out", "nowhere", env=env)
    assert result.returncode == 2 and result.stderr.startswith("lab: error: no experiment with id 9999")
    assert len(lines(result.stderr)) == 1


def test_tensorboard_prints_its_two_lines(dqn):
    env, experiment = dqn
    process = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "lab"), "tensorboard", experiment,
                                "--port", str(free_port())], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **env}, preexec_fn=ctrl_c_as_at_a_terminal)
    try:
        first = process.stdout.readline()
        assert first.startswith("TensorBoard on http://127.0.0.1:"), first
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert [first.strip(), *lines(out)] == [first.strip(), "TensorBoard stopped"] and err == "", (out, err)


def test_lab_load_prints_nothing_cleans_up_and_predicts(dqn, tmp_path):
    env, experiment = dqn
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    code = ("import lab, numpy as np\n"
            f"policy = lab.load({experiment})\n"
            "action, state = policy.predict(np.zeros(4, np.float32))\n"
            "actions, _ = policy.predict(np.zeros((3, 4), np.float32))\n"
            "print(int(action), actions.shape, int(policy.get_train_step()) >= 0)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, **env, "TMPDIR": str(scratch)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout in ("0 (3,) True\n", "1 (3,) True\n"), result.stdout
    assert result.stderr == "", result.stderr  # the 16 'Value in checkpoint could not be found' lines included
    assert sorted(p.name for p in scratch.iterdir() if p.name.startswith("lab-")) == []
