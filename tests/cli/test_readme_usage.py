"""README's "Using it" commands, each run as written (plus tiny budgets), so the README cannot drift.

Every line of that block must be covered here: a new example without a plan below fails the test.
The one that needs a Ray cluster (`--address 10.0.0.5:6379`) is validated with `--dry-run` instead.
"""
from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, lab
from tests.proc_utils import ctrl_c_as_at_a_terminal

DQN_TINY = ["num_envs=2", "fc_layers=[16]", "replay_capacity=1000", "batch_size=16", "initial_collect_steps=40",
            "collect_steps_per_iteration=4", "train_steps_per_iteration=2", "target_update_period=2",
            "epsilon_decay_steps=100", "env_steps_per_step=200", "eval_episodes=2", "max_env_steps=200",
            "num_samples=1", "stop.training_iteration=1"]
SKLEARN_TINY = ["subset=300", "cv_folds=2", "log_figures=false"]


def sets(*pairs: str) -> list[str]:
    return [arg for pair in pairs for arg in ("--set", pair)]


# README command (without `.venv/bin/lab`) -> what the test adds to it; DRY_RUN: needs a cluster, validated only
DRY_RUN = ["--dry-run"]
PLANS = {
    "presets": [],
    "presets svc-digits": [],
    "params sklearn_cv --set model=random_forest": [],
    "run svc-digits": sets("svc__C=10", "svc__gamma=0.01", *SKLEARN_TINY),  # starts the lab server (and warm Ray)
    "run svc-digits --no-server": sets("svc__C=10", "svc__gamma=0.01", *SKLEARN_TINY),
    "status": [],
    "run my-spec.yaml --set num_samples=8 --set svc__C=10": sets("num_samples=1", "resources.gpu=0", *SKLEARN_TINY),
    "run dqn-cartpole --set learning_rate=3e-4 --set seed=per_trial": sets(*DQN_TINY),
    "run dqn-cartpole --address 10.0.0.5:6379": DRY_RUN,  # CLUSTER: no cluster here, the spec is only validated
    "ls": [],
    "show 3": [],
    "best 3 --json": [],
    "resume 3": [],
    "tensorboard 1 2 3": [],  # started, fetched once it prints its URL, stopped with SIGINT
    "ui": [],  # the same: started, its URL (with the token) fetched, stopped with SIGINT
    "report 3": [],
    "baselines wine": ["--models", "logistic", "--cv", "2"],
    "baselines houses.csv --target price": ["--models", "ridge", "--cv", "2"],
    "export 3 --out model/": [],
    "eval 3 --episodes 10 --video run.gif": ["--episodes", "2"],
    "eval model/policy --seed 7": ["--episodes", "2"],
}


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Using it", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.strip().splitlines():
        command = re.split(r"\s+#", line, maxsplit=1)[0].strip()
        assert command.startswith(".venv/bin/lab "), line
        commands.append(command[len(".venv/bin/lab "):])
    return commands


def readme_spec() -> str:
    """The example spec of README's "The experiment spec" section."""
    text = (ROOT / "README.md").read_text()
    return text.split("## The experiment spec", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]


def write_houses(path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    rows = ["rooms,area,town,price"]
    for _ in range(120):
        rooms, area = rng.integers(1, 8), rng.uniform(30, 250)
        town = rng.choice(["north", "south"])
        rows.append(f"{rooms},{area:.1f},{town},{30000 + 1500 * area + 8000 * rooms + rng.normal(0, 20000):.0f}")
    path.write_text("\n".join(rows) + "\n")


def tensorboard(args: list[str], cwd: Path) -> tuple[int, str]:
    """Start it, wait for its URL line, fetch the URL, stop it with SIGINT: (exit code, output)."""
    command = [str(Path(sys.executable).parent / "lab"), *args]
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=ctrl_c_as_at_a_terminal)
    lines = ""
    for _ in range(3):  # blocks until the URL is printed (once TensorBoard serves), after a "port taken" line
        lines += process.stdout.readline()
        url = re.search(r"http://\S+/(\?token=\S+)?", lines)
        if url:
            break
    assert url, (lines, process.stderr.read() if process.poll() is not None else "")
    with urllib.request.urlopen(url.group(0), timeout=10) as response:
        assert response.status == 200
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    return process.returncode, lines + out + err


@pytest.mark.slow
def test_readme_usage_commands_run(tmp_path, lab_home, monkeypatch):
    monkeypatch.delenv("LAB_NO_SERVER")  # as a user runs them: through the lab server, `lab down` at the end
    commands = readme_commands()
    assert set(commands) == set(PLANS), f"README examples without a plan here: {set(commands) - set(PLANS)}"
    (tmp_path / "my-spec.yaml").write_text(readme_spec())
    write_houses(tmp_path / "houses.csv")
    outputs, started = {}, time.monotonic()
    try:
        for command in commands:
            args = [*shlex.split(command), *PLANS[command]]
            begun = time.monotonic()
            if command.startswith(("tensorboard", "ui")):
                code, output = tensorboard(args, tmp_path)
            else:
                result = lab(*args, cwd=tmp_path, timeout=300)
                code, output = result.returncode, result.stdout + result.stderr
            assert code == 0, f"lab {' '.join(args)} -> {code}\n{output[-3000:]}"
            outputs[command] = output
            print(f"{time.monotonic() - begun:5.1f} s  lab {command}")
    finally:
        lab("down", cwd=tmp_path, timeout=120)
    assert "replaces the search over 'svc__C'" in outputs["run my-spec.yaml --set num_samples=8 --set svc__C=10"]
    assert '"experiment_id": 3' in outputs["best 3 --json"]
    assert "lab server: running" in outputs["status"]
    assert re.search(r"warm Ray instance (up|is starting) at 127\.0\.0\.1:", outputs["status"]), outputs["status"]
    assert "STATUS" not in outputs["baselines wine"]  # every model finished: no empty column
    houses = outputs["baselines houses.csv --target price"]
    table = houses.split("\nRANK", 1)[1]
    assert "ROOT_MEAN_SQUARED_ERROR" in table and "e+0" not in table and " -" not in table  # RMSE positive, fixed
    assert (tmp_path / "run.gif").is_file() and (tmp_path / "model").is_dir()
    assert (tmp_path / "report-3.html").is_file() and (tmp_path / "plotly.min.js").is_file()
    assert "lab ui stopped" in outputs["ui"]
    video = next(line for line in outputs["eval 3 --episodes 10 --video run.gif"].splitlines() if "video" in line)
    from PIL import Image

    with Image.open(tmp_path / "run.gif") as gif:
        assert f"({gif.n_frames} frames" in video, video  # the frames the GIF holds, not those rendered
    import os

    print(f"README commands: {time.monotonic() - started:.0f} s (load {os.getloadavg()[0]:.1f})")
