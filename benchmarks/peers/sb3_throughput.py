"""The peer of `benchmarks/rl_vs_sb3.py --heavy`: Stable-Baselines3's training env steps/s with rl-zoo's
hyperparameters (read from rl_zoo3's own YAML) on the lab's heavy presets' envs.

    ppo, dqn   ALE/Breakout-v5 (frameskip 1: SB3's AtariWrapper skips 4 frames with max-pooling, 30 no-ops,
               episodic life, 84x84 grey, clipped rewards; 4 frames stacked): rl-zoo's `atari` entry
    sac, td3   Hopper-v5 with rl-zoo's Hopper-v4 entry (its MuJoCo defaults)

Only `learning_starts` is shortened (to `--learning-starts`): the figure is the training rate, measured over
whole rounds (rollout and gradient steps) from the first round that starts after `--warmup` env steps until
`--seconds` have passed. Runs in the benchmark's venv (benchmarks/.peer-venv), never in the lab's. Prints one
JSON line.

With `--evaluate N`: rl-zoo's settings unchanged (its `learning_starts`, its schedules over its `n_timesteps`),
trained from the first env step for `--seconds`, then N deterministic episodes (untimed) on the full game
(Atari: no episodic life, unclipped rewards, as the lab's evaluation): the return reached in that time.

    python sb3_throughput.py ppo|dqn|sac|td3 [--seconds 60] [--warmup 3000] [--learning-starts 1000] [--seed 0]
                             [--evaluate 10]
"""
import argparse
import json
import os
import time

ENTRIES = {"ppo": ("atari", "ALE/Breakout-v5"), "dqn": ("atari", "ALE/Breakout-v5"),
           "sac": ("Hopper-v4", "Hopper-v5"), "td3": ("Hopper-v4", "Hopper-v5")}


def hyperparameters(algo: str, entry: str | None = None) -> dict:
    """rl-zoo's settings for `algo` (its entry for the env: this script's by default), schedules as callables."""
    import rl_zoo3
    import yaml

    with open(os.path.join(os.path.dirname(rl_zoo3.__file__), "hyperparams", f"{algo}.yml")) as handle:
        hyper = dict(yaml.safe_load(handle)[entry or ENTRIES[algo][0]])
    for key in ("learning_rate", "clip_range"):  # rl-zoo's "lin_X": linear decay from X to 0
        if isinstance(hyper.get(key), str) and hyper[key].startswith("lin_"):
            start = float(hyper[key][4:])
            hyper[key] = lambda progress, start=start: progress * start
    if isinstance(hyper.get("policy_kwargs"), str):
        hyper["policy_kwargs"] = eval(hyper["policy_kwargs"], {"dict": dict})  # rl-zoo writes it as Python
    return hyper


def make_env(algo: str, hyper: dict, seed: int):
    import gymnasium
    from stable_baselines3.common.env_util import make_atari_env, make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack

    n_envs = int(hyper.pop("n_envs", 1))
    env_id = ENTRIES[algo][1]
    if ENTRIES[algo][0] == "atari":
        import ale_py

        gymnasium.register_envs(ale_py)
        hyper.pop("env_wrapper", None)  # make_atari_env applies SB3's AtariWrapper itself
        return VecFrameStack(make_atari_env(env_id, n_envs=n_envs, seed=seed, env_kwargs={"frameskip": 1}),
                             n_stack=int(hyper.pop("frame_stack", 4))), n_envs
    noise = hyper.pop("noise_type", None), float(hyper.pop("noise_std", 0.0))
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    if noise[0] == "normal":
        import numpy as np
        from stable_baselines3.common.noise import NormalActionNoise

        size = env.action_space.shape[0]
        hyper["action_noise"] = NormalActionNoise(np.zeros(size), noise[1] * np.ones(size))
    hyper.pop("normalize", None)
    return env, n_envs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("algo", choices=sorted(ENTRIES))
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=int, default=3000, help="env steps before the timed rounds")
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--evaluate", type=int, default=0, metavar="N", help="train from scratch, then N episodes")
    args = parser.parse_args()
    if args.evaluate:
        return wall_clock(args)

    import torch
    from stable_baselines3 import DQN, PPO, SAC, TD3
    from stable_baselines3.common.callbacks import BaseCallback

    hyper = hyperparameters(args.algo)
    env, n_envs = make_env(args.algo, hyper, args.seed)
    for key in ("n_timesteps", "policy"):
        hyper.pop(key, None)
    if "learning_starts" in hyper or args.algo in ("dqn", "sac", "td3"):
        hyper["learning_starts"] = args.learning_starts
    cls = {"ppo": PPO, "dqn": DQN, "sac": SAC, "td3": TD3}[args.algo]
    policy = "CnnPolicy" if ENTRIES[args.algo][0] == "atari" else "MlpPolicy"
    model = cls(policy, env, seed=args.seed, verbose=0, **hyper)

    class Rounds(BaseCallback):
        """Times whole rounds: each rollout starts after the previous round's gradient steps."""

        def __init__(self):
            super().__init__()
            self.first = self.last = None

        def _on_rollout_start(self) -> None:
            now = (time.perf_counter(), self.num_timesteps)
            if self.first is None and self.num_timesteps >= args.warmup:
                self.first = now
            elif self.first is not None:
                self.last = now

        def _on_step(self) -> bool:
            return self.last is None or self.last[0] - self.first[0] < args.seconds

    rounds = Rounds()
    model.learn(total_timesteps=10**9, callback=rounds)
    (t0, s0), (t1, s1) = rounds.first, rounds.last
    env.close()
    print(json.dumps({"algo": args.algo, "env_id": ENTRIES[args.algo][1], "n_envs": n_envs,
                      "env_steps_per_s": (s1 - s0) / (t1 - t0), "timed_env_steps": s1 - s0, "seconds": t1 - t0,
                      "torch_threads": torch.get_num_threads(),
                      "hyperparameters": {k: (v if isinstance(v, (int, float, str, list, dict)) else repr(v))
                                          for k, v in hyper.items()}}), flush=True)


def wall_clock(args) -> None:
    """rl-zoo's settings as they are, `--seconds` of training from the first env step, then `--evaluate` episodes."""
    import torch
    from stable_baselines3 import DQN, PPO, SAC, TD3
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    hyper = hyperparameters(args.algo)
    env, n_envs = make_env(args.algo, hyper, args.seed)
    total = int(float(hyper.pop("n_timesteps")))
    hyper.pop("policy", None)
    cls = {"ppo": PPO, "dqn": DQN, "sac": SAC, "td3": TD3}[args.algo]
    atari = ENTRIES[args.algo][0] == "atari"
    model = cls("CnnPolicy" if atari else "MlpPolicy", env, seed=args.seed, verbose=0, **hyper)

    class Clock(BaseCallback):
        def _on_training_start(self) -> None:
            self.started = time.perf_counter()

        def _on_step(self) -> bool:
            return time.perf_counter() - self.started < args.seconds

    clock = Clock()
    model.learn(total_timesteps=total, callback=clock)
    trained_s, steps = time.perf_counter() - clock.started, model.num_timesteps
    env.close()
    eval_env = full_game_env(args.algo, args.seed + 10_000)
    returns, lengths = evaluate_policy(model, eval_env, n_eval_episodes=args.evaluate, deterministic=True,
                                       return_episode_rewards=True)
    import numpy as np

    print(json.dumps({"algo": args.algo, "env_id": ENTRIES[args.algo][1], "n_envs": n_envs, "seconds": trained_s,
                      "env_steps": steps, "env_steps_per_s": steps / trained_s, "eval_episodes": len(returns),
                      "eval_return_mean": float(np.mean(returns)), "eval_return_std": float(np.std(returns)),
                      "eval_length_mean": float(np.mean(lengths)), "torch_threads": torch.get_num_threads(),
                      "n_timesteps": total}), flush=True)


def full_game_env(algo: str, seed: int):
    """One evaluation env: Atari's whole game (no life loss ends it, rewards unclipped), or the MuJoCo env."""
    import gymnasium
    from stable_baselines3.common.env_util import make_atari_env, make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack

    if ENTRIES[algo][0] == "atari":
        import ale_py

        gymnasium.register_envs(ale_py)
        return VecFrameStack(make_atari_env(ENTRIES[algo][1], n_envs=1, seed=seed, env_kwargs={"frameskip": 1},
                                            wrapper_kwargs={"terminal_on_life_loss": False, "clip_reward": False}),
                             n_stack=4)
    return make_vec_env(ENTRIES[algo][1], n_envs=1, seed=seed)


if __name__ == "__main__":
    main()
