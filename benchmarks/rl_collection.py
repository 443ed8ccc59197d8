"""Collection speed: env steps/s of the lab's TF-Agents collect path against raw Gymnasium, side by side.

Rows (CartPole-v1 by default, 8 envs, 256 env steps per collect call):
  raw gymnasium         8 envs stepped in a Python loop with random actions (the ceiling)
  gymnasium vector      SyncVectorEnv of 8, random actions
  py batched / vector   the TF-Agents PyEnvironment alone (BatchedPyEnvironment of GymnasiumWrappers, or the
                        lab's GymnasiumVectorPyEnvironment), NumPy random actions: the Python env layer
  tf random / dqn       a tf.function'd DynamicStepDriver run over the TFPyEnvironment, with a random policy
                        or DQN's epsilon-greedy collect policy writing to a replay buffer (what agents/dqn.py
                        runs), over each of the two PyEnvironments
Then the DQN workload's own collect function (agents/dqn.py, the dqn-cartpole preset's envs). The profile
is the differences between rows: what each layer adds per batched step. Target (the issue): >= 20,000
env steps/s with the agent's policy on 8 CartPoles.

Run: python benchmarks/rl_collection.py [--env CartPole-v1] [--envs 8] [--seconds 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab import settings

TARGET = 20_000  # env steps/s with the agent's policy, 8 CartPoles


def rate(step_fn, steps_per_call: int, seconds: float) -> tuple[float, float]:
    """(env steps per wall second, per CPU second of this process) of calling `step_fn` for ~`seconds`.

    The CPU figure is the one to compare on a loaded machine: other processes stretch the wall time.
    """
    step_fn()
    calls, started, cpu_started = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        step_fn()
        calls += 1
    steps = calls * steps_per_call
    return steps / (time.perf_counter() - started), steps / max(time.process_time() - cpu_started, 1e-9)


def raw_gymnasium(env_id: str, n: int, seconds: float) -> tuple[float, float]:
    import gymnasium

    import envs.gym_envs

    envs = [gymnasium.make(env_id) for _ in range(n)]
    for i, env in enumerate(envs):
        env.reset(seed=i)
    rng = np.random.default_rng(0)
    space_n = envs[0].action_space.n

    def run(steps=256 // n):
        for _ in range(steps):
            for env in envs:
                _, _, terminated, truncated, _ = env.step(int(rng.integers(space_n)))
                if terminated or truncated:
                    env.reset()

    return rate(run, (256 // n) * n, seconds)


def gymnasium_vector(env_id: str, n: int, seconds: float) -> tuple[float, float]:
    import gymnasium

    import envs.gym_envs  # noqa: F401

    vector = gymnasium.make_vec(env_id, num_envs=n, vectorization_mode="sync")
    vector.reset(seed=0)
    rng = np.random.default_rng(0)

    def run(steps=256 // n):
        for _ in range(steps):
            vector.step(rng.integers(vector.single_action_space.n, size=n))

    return rate(run, (256 // n) * n, seconds)


def py_env_rate(py_env, n: int, seconds: float) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    high = int(py_env.action_spec().maximum) + 1
    py_env.reset()

    def run(steps=256 // n):
        for _ in range(steps):
            py_env.step(rng.integers(high, size=n))

    return rate(run, (256 // n) * n, seconds)


def tf_collect_rate(tf_env, policy_kind: str, n: int, seconds: float) -> tuple[float, float]:
    """A tf.function'd driver run of 256 env steps, as in agents/dqn.py (autograph off, one trace)."""
    import tensorflow as tf
    from tf_agents.agents.dqn import dqn_agent
    from tf_agents.drivers import dynamic_step_driver
    from tf_agents.networks import q_network
    from tf_agents.policies import random_tf_policy
    from tf_agents.replay_buffers import tf_uniform_replay_buffer

    observers = []
    if policy_kind == "random":
        policy = random_tf_policy.RandomTFPolicy(tf_env.time_step_spec(), tf_env.action_spec())
    else:
        net = q_network.QNetwork(tf_env.observation_spec(), tf_env.action_spec(), fc_layer_params=(128, 128))
        agent = dqn_agent.DdqnAgent(tf_env.time_step_spec(), tf_env.action_spec(), q_network=net,
                                    optimizer=tf.keras.optimizers.Adam(1e-3), epsilon_greedy=0.1, n_step_update=3)
        agent.initialize()
        policy = agent.collect_policy
        buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(agent.collect_data_spec, batch_size=n, max_length=10_000)
        observers = [buffer.add_batch]
    driver = dynamic_step_driver.DynamicStepDriver(tf_env, policy, observers=observers, num_steps=256)
    collect = tf.function(driver.run, autograph=False)
    return rate(collect, 256, seconds)


def dqn_workload_rate(env_id: str, n: int, seconds: float) -> tuple[float, float]:
    """The DQN workload's own collect tf.function (agents/dqn.py), dqn-cartpole's collect settings."""
    import tempfile

    from lab import spec as specs
    from lab import workload as workloads

    params = {**specs.load("dqn-cartpole")[0].trial_params, "env_id": env_id, "num_envs": n,
              "initial_collect_steps": 0, "eval_episodes": 1}
    cls = workloads.get("dqn")
    workload = cls(cls.make_config(params), workloads.TrialContext(trial_dir=tempfile.mkdtemp(prefix="bench-")))
    workload.setup()
    try:
        return rate(workload._collect, params["collect_steps_per_iteration"], seconds)
    finally:
        workload.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per row")
    args = parser.parse_args(argv)
    settings.apply_worker_env()
    import tensorflow  # noqa: F401  (imported before the timings)

    from agents.tf_env import make_tf_env
    from agents.vector_env import make_vector_py_env

    n, s = args.envs, args.seconds
    print(f"{args.env}, {n} envs, {s:.0f} s per row; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    raw = raw_gymnasium(args.env, n, s)
    rows = [("raw gymnasium, random actions", raw), ("gymnasium SyncVectorEnv, random", gymnasium_vector(args.env, n, s))]
    from tf_agents.environments import batched_py_environment

    from agents.tf_env import make_py_env

    batched = batched_py_environment.BatchedPyEnvironment([make_py_env(args.env, i) for i in range(n)],
                                                          multithreading=False)
    rows.append(("py BatchedPyEnvironment, random", py_env_rate(batched, n, s)))
    rows.append(("py lab vector env, random", py_env_rate(make_vector_py_env(args.env, n, 0), n, s)))
    for name, vector in (("batched", False), ("vector", True)):
        rows.append((f"tf driver ({name}), random policy", tf_collect_rate(make_tf_env(args.env, n, 0, vector=vector), "random", n, s)))
        rows.append((f"tf driver ({name}), DQN eps-greedy", tf_collect_rate(make_tf_env(args.env, n, 0, vector=vector), "dqn", n, s)))
    rows.append(("DQN workload's collect (agents/dqn.py)", dqn_workload_rate(args.env, n, s)))
    print(f"{'path':<42}{'steps/wall s':>13}{'steps/CPU s':>12}{'vs raw (CPU)':>13}{'CPU us/batched step':>20}")
    for name, (wall, cpu) in rows:
        print(f"{name:<42}{wall:>13,.0f}{cpu:>12,.0f}{cpu / raw[1]:>13.3f}{1e6 * n / cpu:>20.0f}")
    best = max(rates for name, rates in rows if "DQN" in name)
    print(f"best agent-policy collection: {best[0]:,.0f} env steps/wall s ({best[1]:,.0f}/CPU s) against the target "
          f"{TARGET:,}: {'reached' if best[0] >= TARGET else 'NOT reached'} (wall); load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
