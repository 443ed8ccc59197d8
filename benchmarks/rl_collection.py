"""Collection speed: env steps/s of the lab's TF-Agents collect path against raw Gymnasium, side by side.

Rows (CartPole-v1 by default, 8 envs, 256 env steps per collect call):
  raw gymnasium         8 envs stepped in a Python loop with random actions (the ceiling)
  gymnasium vector      SyncVectorEnv of 8, random actions
  py batched / vector   the TF-Agents PyEnvironment alone (BatchedPyEnvironment of GymnasiumWrappers, or the
                        lab's GymnasiumVectorPyEnvironment), NumPy random actions: the Python env layer
  tf random / dqn       a tf.function'd DynamicStepDriver run over the TFPyEnvironment, with a random policy
                        or DQN's epsilon-greedy collect policy writing to a replay buffer (what agents/dqn.py
                        runs), over each of the two PyEnvironments
  py driver, DQN policy  TF-Agents' PyDriver over the lab's vector env with DQN's collect policy wrapped in a
                        PyTFEagerPolicy (a tf.function per batched step, the env stepped in Python)
Then the DQN workload's own collect function (agents/dqn.py, the dqn-cartpole or dqn-breakout preset's
envs), once per env backend (Gymnasium, EnvPool when installed), with random-backend rows side by side.
The profile is the differences between rows (what each layer adds per batched step), and with
`--profile` cProfile's top functions of the PyDriver path. Targets (the issue), with the agent's own
policy against raw Gymnasium random stepping in the same run: CartPole x8 >= 0.3, Atari x8 >= 0.5.
Raw stepping uses the lab's preprocessing (Atari: the training envs of envs/atari.py).

Run: python benchmarks/rl_collection.py [--env CartPole-v1 | ALE/Breakout-v5] [--envs 8] [--seconds 3] [--profile]
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

RATIO_TARGETS = {"CartPole-v1": 0.3, "ALE/Breakout-v5": 0.5}  # agent-policy collection / raw random stepping


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
    from envs.gym_envs import make_gym_env

    envs = [make_gym_env(env_id, training=True) for _ in range(n)]
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


def vector_random(env_id: str, n: int, seconds: float, backend: str = "gymnasium") -> tuple[float, float]:
    """A vector env of the backend (envs/backends.py: Gymnasium's SyncVectorEnv or EnvPool), random actions."""
    from envs.backends import make_vector_env

    vector = make_vector_env(env_id, n, 0, training=True, backend=backend)
    vector.reset(seed=list(range(n)))
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


def py_driver_rate(env_id: str, n: int, seconds: float, profile: bool = False) -> tuple[float, float]:
    """TF-Agents' PyDriver over the lab's vector env, DQN's epsilon-greedy collect policy in a PyTFEagerPolicy."""
    import tensorflow as tf
    from tf_agents.agents.dqn import dqn_agent
    from tf_agents.drivers import py_driver
    from tf_agents.networks import q_network
    from tf_agents.policies import py_tf_eager_policy
    from tf_agents.specs import tensor_spec

    from agents.pixels import conv_network_args
    from agents.vector_env import make_vector_py_env

    py_env = make_vector_py_env(env_id, n, 0, training=True)
    time_step_spec = tensor_spec.from_spec(py_env.time_step_spec())
    action_spec = tensor_spec.from_spec(py_env.action_spec())
    images = len(time_step_spec.observation.shape) == 3
    conv = conv_network_args([(32, 8, 4), (64, 4, 2), (64, 3, 1)] if images else [])
    net = q_network.QNetwork(time_step_spec.observation, action_spec, fc_layer_params=(512,) if images else (128, 128), **conv)
    agent = dqn_agent.DdqnAgent(time_step_spec, action_spec, q_network=net, optimizer=tf.keras.optimizers.Adam(1e-3),
                                epsilon_greedy=0.1)
    agent.initialize()
    policy = py_tf_eager_policy.PyTFEagerPolicy(agent.collect_policy, use_tf_function=True, batch_time_steps=False)
    driver = py_driver.PyDriver(py_env, policy, observers=[], max_steps=256)
    state = {"time_step": py_env.reset()}

    def run():
        state["time_step"], _ = driver.run(state["time_step"])

    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        result = rate(run, 256, seconds)
        profiler.disable()
        print("cProfile of the PyDriver path (top 12 by own time):")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
        return result
    return rate(run, 256, seconds)


def dqn_workload_rate(env_id: str, n: int, seconds: float, backend: str = "gymnasium") -> tuple[float, float]:
    """The DQN workload's own collect tf.function (agents/dqn.py), its preset's collect settings."""
    import tempfile

    from lab import spec as specs
    from lab import workload as workloads

    preset = "dqn-breakout" if env_id.startswith("ALE/") else "dqn-cartpole"
    params = {**specs.load(preset)[0].trial_params, "env_id": env_id, "num_envs": n, "replay_capacity": 20_000,
              "initial_collect_steps": 0, "eval_episodes": 1, "env_backend": backend, "max_env_steps": 10**12,
              "collect_steps_per_iteration": max(n, 256 // n * n)}
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
    parser.add_argument("--profile", action="store_true", help="cProfile the PyDriver path")
    args = parser.parse_args(argv)
    settings.apply_worker_env()
    import tensorflow  # noqa: F401  (imported before the timings)

    from agents.tf_env import make_tf_env
    from agents.vector_env import make_vector_py_env

    n, s = args.envs, args.seconds
    print(f"{args.env}, {n} envs, {s:.0f} s per row; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    raw = raw_gymnasium(args.env, n, s)
    from envs.envpool_env import envpool_id, installed

    backends = ["gymnasium"] + (["envpool"] if installed() and envpool_id(args.env) else [])
    rows = [("raw gymnasium, random actions", raw)]
    rows += [(f"{backend} vector env, random", vector_random(args.env, n, s, backend)) for backend in backends]
    atari = args.env.startswith("ALE/")
    if not atari:  # suite_gymnasium's BatchedPyEnvironment path: vector observations only
        from tf_agents.environments import batched_py_environment

        from agents.tf_env import make_py_env

        batched = batched_py_environment.BatchedPyEnvironment([make_py_env(args.env, i) for i in range(n)],
                                                              multithreading=False)
        rows.append(("py BatchedPyEnvironment, random", py_env_rate(batched, n, s)))
    rows.append(("py lab vector env, random", py_env_rate(make_vector_py_env(args.env, n, 0, training=True), n, s)))
    if not atari:
        for name, vector in (("batched", False), ("vector", True)):
            rows.append((f"tf driver ({name}), random policy", tf_collect_rate(make_tf_env(args.env, n, 0, vector=vector), "random", n, s)))
            rows.append((f"tf driver ({name}), DQN eps-greedy", tf_collect_rate(make_tf_env(args.env, n, 0, vector=vector), "dqn", n, s)))
    rows.append(("py driver, DQN eps-greedy (PyTFEagerPolicy)", py_driver_rate(args.env, n, s, args.profile)))
    for backend in backends:
        rows.append((f"DQN workload's collect, {backend}", dqn_workload_rate(args.env, n, s, backend)))
    print(f"{'path':<46}{'steps/wall s':>13}{'steps/CPU s':>12}{'vs raw (wall)':>14}{'vs raw (CPU)':>13}{'CPU us/batched step':>20}")
    for name, (wall, cpu) in rows:
        print(f"{name:<46}{wall:>13,.0f}{cpu:>12,.0f}{wall / raw[0]:>14.3f}{cpu / raw[1]:>13.3f}{1e6 * n / cpu:>20.0f}")
    target = RATIO_TARGETS.get(args.env)
    name, best = max(((name, rates) for name, rates in rows if "DQN" in name), key=lambda item: item[1][0])
    ratio = best[0] / raw[0]
    print(f"best agent-policy collection: {name}, {best[0]:,.0f} env steps/wall s = {ratio:.3f} of raw Gymnasium random "
          f"stepping ({raw[0]:,.0f}); target {target if target else '-'}: "
          f"{'met' if target and ratio >= target else 'MISSED' if target else '-'}; load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
