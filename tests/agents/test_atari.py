"""Atari at scale: uint8 frames from the env to the replay buffer, scaled inside the network; training-only
episodic life and reward clipping; `lab eval`/`lab export` building only the policy; the Breakout presets
through `lab run`, `lab eval --video` and the benchmarks on tiny budgets."""
from __future__ import annotations

import re
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import lab

ROOT = Path(__file__).resolve().parents[2]
TINY_DQN = dict(num_envs=2, replay_capacity=200, initial_collect_steps=32, collect_steps_per_iteration=16,
                train_steps_per_iteration=2, batch_size=8, target_update_period=4, epsilon_decay_steps=64,
                env_steps_per_step=32, max_env_steps=64, eval_episodes=1, max_episode_steps=40)


def preset_params(name: str, **overrides) -> dict:
    from lab import spec as specs

    return {**specs.load(name)[0].trial_params, **overrides}


def test_training_envs_end_at_a_lost_life_and_clip_rewards_evaluation_envs_play_the_full_game():
    from envs.gym_envs import make_gym_env

    def play(training: bool):
        env = make_gym_env("ALE/Breakout-v5", training=training)
        env.action_space.seed(0)
        observation, _ = env.reset(seed=0)
        assert observation.dtype == np.uint8 and observation.shape == (84, 84, 4)
        rewards, lives = [], [env.unwrapped.ale.lives()]
        while True:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            rewards.append(reward)
            if terminated or truncated:
                lives.append(env.unwrapped.ale.lives())
                env.reset()  # a training env goes on with the same game
                lives.append(env.unwrapped.ale.lives())
                break
        env.close()
        return rewards, lives

    rewards, lives = play(training=True)
    assert lives == [5, 4, 4]  # the episode ended at the first lost life; the reset kept the game
    assert set(rewards) <= {0.0, 1.0}
    rewards, lives = play(training=False)
    assert lives[-2] == 0 and lives[-1] == 5  # the full game, then a new one


def test_dqn_breakout_keeps_uint8_frames_from_env_to_replay_buffer(tmp_path):
    import tensorflow as tf

    from lab.workload.testing import make

    workload = make("dqn", preset_params("dqn-breakout", **TINY_DQN), trial_dir=str(tmp_path))
    try:
        assert workload.train_env.observation_spec().dtype == tf.uint8
        assert workload.q_network.input_tensor_spec.dtype == tf.uint8
        assert workload.replay_buffer.data_spec.observation.dtype == tf.uint8
        workload.step()
        stored = workload.replay_buffer.gather_all().observation
        assert stored.dtype == tf.uint8 and int(tf.reduce_max(stored)) > 1  # raw 0..255 pixels, not scaled
        # the scaling happens inside the network's graph: 255 in, the same Q-values as the float 1.0 path
        layer = workload.q_network.layers[0].layers[0]
        assert layer.name == "scale_pixels" and float(layer(tf.constant([[255]], tf.uint8))[0, 0]) == 1.0
    finally:
        workload.close()


@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
def test_the_newest_frame_replay_rebuilds_the_envs_own_stacked_observations(tmp_path, backend):
    """Random play with short episodes and lost lives: every stack rebuilt from single frames equals the one
    the env produced (stored whole beside it), episode starts included; a quarter of the bytes stored."""
    import tensorflow as tf
    from tf_agents.drivers import dynamic_step_driver
    from tf_agents.policies import random_tf_policy
    from tf_agents.replay_buffers import tf_uniform_replay_buffer
    from tf_agents.trajectories import StepType

    from agents.frame_replay import NewestFrameReplay, restack
    from lab.workload.testing import make

    if backend == "envpool":
        pytest.importorskip("envpool")
    params = preset_params("dqn-breakout", **{**TINY_DQN, "max_episode_steps": 25, "env_backend": backend})
    workload = make("dqn", params, trial_dir=str(tmp_path))
    try:
        assert isinstance(workload.replay_buffer, tf_uniform_replay_buffer.TFUniformReplayBuffer)
        assert workload.replay_buffer.data_spec.observation.shape == (84, 84, 1)  # the preset's frame_stack: 4
        env, spec = workload.train_env, workload.agent.collect_data_spec
        whole = tf_uniform_replay_buffer.TFUniformReplayBuffer(spec, batch_size=env.batch_size, max_length=300)
        newest = NewestFrameReplay(spec, batch_size=env.batch_size, max_length=300, frames=4)
        tf.random.set_seed(1)
        policy = random_tf_policy.RandomTFPolicy(env.time_step_spec(), env.action_spec())
        dynamic_step_driver.DynamicStepDriver(env, policy, observers=[whole.add_batch, newest.add_batch],
                                              num_steps=280 * env.batch_size).run()
        expected, singles = whole.gather_all(), newest.buffer.gather_all()
        steps = int(singles.step_type.shape[1])
        rebuilt = restack(singles, num_steps=steps - 3, frames=4)
        assert int(tf.reduce_sum(tf.cast(tf.equal(expected.step_type[:, 3:], StepType.FIRST), tf.int32))) >= 8
        np.testing.assert_array_equal(rebuilt.observation.numpy(), expected.observation[:, 3:].numpy())
        np.testing.assert_array_equal(rebuilt.action.numpy(), expected.action[:, 3:].numpy())
        assert singles.observation.numpy().nbytes * 4 == expected.observation.numpy().nbytes
        sample, _ = newest.get_next(sample_batch_size=8, num_steps=2)
        assert sample.observation.shape == (8, 2, 84, 84, 4) and sample.observation.dtype == tf.uint8
    finally:
        workload.close()


def test_a_policy_only_rebuild_allocates_no_replay_buffer(tmp_path):
    """lab eval / lab export rebuild a trial with policy_only: a replay capacity of 10^9 Atari transitions
    (28 TB if allocated) builds and exports at once, with the memory of the networks alone."""
    from lab import settings
    from lab import workload as workloads

    settings.apply_worker_env()
    cls = workloads.get("dqn")
    config = cls.make_config(preset_params("dqn-breakout", **{**TINY_DQN, "replay_capacity": 10**9}))
    workload = cls(config, workloads.TrialContext(trial_dir=str(tmp_path), policy_only=True))
    workload.setup()
    try:
        assert not hasattr(workload, "replay_buffer") and workload.eval_env is None
        assert workload.train_env.batch_size == 1  # one env, for the specs
        path = workload.export(str(tmp_path / "out"))
        assert (Path(path) / "saved_model.pb").is_file()
    finally:
        workload.close()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 4 * 2**20  # KiB: under 4 GB, the test process


@pytest.mark.slow
def test_ppo_breakout_preset_trains_a_round_on_uint8_frames(tmp_path):
    import tensorflow as tf

    from lab.workload.testing import make

    params = preset_params("ppo-breakout", num_envs=2, collect_steps_per_iteration=32, num_epochs=1,
                           num_minibatches=2, env_steps_per_step=32, max_env_steps=64, eval_episodes=1, max_episode_steps=50,
                           actor_fc_layers=[16], value_fc_layers=[16], conv_layers=[[8, 8, 4], [8, 4, 2]])
    workload = make("ppo", params, trial_dir=str(tmp_path))
    try:
        assert workload.actor_net.input_tensor_spec.dtype == tf.uint8
        assert workload.carry.observation.dtype == tf.uint8  # the round's experience stays uint8
        metrics = workload.step()
        assert metrics["charts/env_steps"] >= 32 and np.isfinite(metrics["train/loss"])
    finally:
        workload.close()


@pytest.mark.slow
def test_breakout_dqn_through_lab_run_then_eval_with_video(tmp_path):
    """The dqn-breakout preset trains through `lab run` (tiny budget); `lab eval ID --video` plays its policy."""
    env = {"LAB_HOME": str(tmp_path / "home")}
    sets = [f"{key}={value}" for key, value in {**TINY_DQN, "conv_layers": "[[8,8,4],[8,4,2]]", "fc_layers": "[16]"}.items()]
    run = lab("run", "dqn-breakout", *[arg for s in sets for arg in ("--set", s)], "--set", "resources.cpu=1", env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    experiment = re.search(r"experiment ids: (\d+)", run.stdout).group(1)
    gif = tmp_path / "breakout.gif"
    result = lab("eval", experiment, "--episodes", "1", "--video", str(gif), env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DQN on ALE/Breakout-v5" in result.stdout and gif.stat().st_size > 1000
    assert re.search(r"length\s+40 ", result.stdout)  # the trial's time limit travels with the policy


@pytest.mark.slow
def test_atari_benchmark_prints_figures_and_a_learning_curve_on_a_tiny_budget(tmp_path):
    sets = {**TINY_DQN, "conv_layers": "[[8,8,4],[8,4,2]]", "fc_layers": "[16]", "max_env_steps": 32}
    args = [arg for key, value in sets.items() for arg in ("--set", f"{key}={value}")]
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "atari.py"), "--presets", "dqn-breakout", "--minutes", "0.1",
         "--eval-every", "32", "--random-episodes", "1", "--png-dir", str(tmp_path), *args],
        capture_output=True, text=True, timeout=600)
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: the target missed, as on a tiny budget
    assert re.search(r"random policy: [\d.]+ \+- [\d.]+ over 1 full games", result.stdout), result.stdout
    assert "dqn-breakout: best greedy" in result.stdout and "peak RSS" in result.stdout
    assert (tmp_path / "atari-dqn-breakout.png").stat().st_size > 1000
