"""`lab eval` (agents/evaluate.py): a tiny DQN run, evaluated by experiment id and by exported policy folder."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from lab.errors import LabError
from agents.evaluate import evaluate
from tests.conftest import lab

TINY_SPEC = """\
name: eval-tiny-dqn
workload: dqn
description: a tiny CartPole DQN, ~2k env steps in two Tune iterations
params: {env_id: CartPole-v1, num_envs: 4, fc_layers: [32], learning_rate: 0.02, replay_capacity: 2000,
         initial_collect_steps: 200, collect_steps_per_iteration: 64, train_steps_per_iteration: 64,
         target_update_period: 64, epsilon_decay_steps: 1000, env_steps_per_step: 1000, eval_episodes: 2,
         max_env_steps: 2000}
metric: eval/average_return
mode: max
resources: {cpu: 1}
seed: 0
"""
RETURN = re.compile(r"return\s+([-\d.e+]+) \+- ([\d.e+]+) over (\d+) episodes")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(LAB_HOME env, experiment id, exported policy folder) of a tiny DQN run through `lab run`."""
    home = tmp_path_factory.mktemp("eval-home")
    env = {"LAB_HOME": str(home)}
    (home / "tiny.yaml").write_text(TINY_SPEC)
    run = lab("run", str(home / "tiny.yaml"), env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    experiment = re.search(r"experiment ids: (\d+)", run.stdout).group(1)
    out = home / "export"
    export = lab("export", experiment, "--out", str(out), env=env)
    assert export.returncode == 0, export.stderr[-2000:]
    return env, experiment, out / "policy"


@pytest.fixture(scope="module")
def by_id(trained, tmp_path_factory):
    """`lab eval ID --episodes 3 --video x.gif` of the tiny run: (completed process, GIF path)."""
    env, experiment, _ = trained
    gif = tmp_path_factory.mktemp("eval-video") / "x.gif"
    return lab("eval", experiment, "--episodes", "3", "--video", str(gif), env=env), gif


@pytest.mark.slow
def test_eval_by_id_reports_returns_and_writes_a_gif(by_id):
    import imageio.v3 as iio

    result, gif = by_id
    assert result.returncode == 0, result.stderr[-2000:]
    mean, std, episodes = RETURN.search(result.stdout).groups()
    assert int(episodes) == 3 and float(mean) >= 8 and float(std) >= 0  # CartPole ends after >= 8 steps
    written = int(re.search(r"\((\d+) frames of the first episode[;)]", result.stdout).group(1))
    frames = iio.imread(gif, index=None)  # the GIF writer merges identical successive frames
    assert frames.ndim == 4 and 8 < frames.shape[0] <= written and frames.shape[-1] in (3, 4)
    assert frames.std(axis=0).max() > 0  # the pole moves
    assert "DQN on CartPole-v1" in result.stdout


@pytest.mark.slow
def test_eval_of_exported_policy_matches_eval_by_id(trained, by_id, tmp_path):
    env, _, policy = trained
    by_path = lab("eval", str(policy), "--episodes", "3", "--seed", "0", "--video", str(tmp_path / "x.mp4"), env=env)
    assert by_path.returncode == 0 and by_id[0].returncode == 0, by_path.stderr[-2000:]
    assert RETURN.search(by_path.stdout).groups() == RETURN.search(by_id[0].stdout).groups()  # same policy and seeds
    assert (tmp_path / "x.mp4").stat().st_size > 1000
    from agents.saved_policy import policy_folder

    assert policy_folder(str(policy.parent)) == str(policy)  # the --out folder of `lab export` is accepted too


@pytest.mark.slow
def test_policy_of_another_env_is_refused(trained, tmp_path):
    env, _, policy = trained
    other = tmp_path / "policy"
    shutil.copytree(policy, other)
    meta = json.loads((other / "lab_policy.json").read_text())
    (other / "lab_policy.json").write_text(json.dumps({**meta, "env_id": "lab/GridMaze-v0"}))
    untrusted = lab("eval", str(other), env=env)  # changed since `lab export` wrote it: not this lab's any more
    assert untrusted.returncode == 2 and "did not export" in untrusted.stderr.strip().splitlines()[-1]
    result = lab("eval", str(other), "--trust", env=env)
    assert result.returncode == 2  # (TensorFlow's start-up chatter precedes the one error line)
    assert result.stderr.strip().splitlines()[-1] == (
        "lab: error: the DQN policy observes [4], but 'lab/GridMaze-v0' gives [49]: it was trained on another environment")
    assert result.stderr.count("lab: error") == 1 and "Traceback" not in result.stderr


def test_unknown_id_and_path_are_one_line_errors(tmp_path):
    for source, message in (("42", "no experiment with id 42"),
                            (str(tmp_path / "missing"), "no such experiment id or policy folder")):
        result = lab("eval", source)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
        assert message in result.stderr


@pytest.mark.parametrize("make, message", [
    (lambda p: p, "is not a saved policy (no saved_model.pb)"),
    (lambda p: (p / "saved_model.pb").write_bytes(b"") or p, "SavedModel without lab_policy.json"),
    (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "is a file"),
])
def test_a_folder_that_is_not_a_policy_is_refused(tmp_path, make, message):
    with pytest.raises(LabError, match=re.escape(message)):
        evaluate(str(make(tmp_path)), episodes=1)


@pytest.mark.parametrize("kwargs, message", [
    ({"episodes": 0}, "--episodes must be positive"),
    ({"video": "x.png"}, "--video must name a .gif or .mp4 file"),
    ({"trial_id": "t1"}, "--trial only applies to an experiment id"),
])
def test_bad_options_are_refused(tmp_path, kwargs, message):
    with pytest.raises(LabError, match=re.escape(message)):
        evaluate(str(tmp_path), **{"episodes": 1, **kwargs})
