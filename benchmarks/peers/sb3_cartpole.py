"""The peer of benchmarks/rl_vs_sb3.py: Stable-Baselines3 DQN or PPO on CartPole-v1 with rl-zoo's tuned
hyperparameters (read from rl_zoo3's own YAML), until a 10-episode greedy mean reaches the target.

Runs in the benchmark's own venv (benchmarks/.peer-venv), never in the lab's. Evaluates every ~1000 env
steps, as the lab's presets do. Prints one JSON line: the phases' seconds, env steps, score.

    python sb3_cartpole.py dqn|ppo [--seed 0] [--score 475] [--max-steps 100000]
"""
import argparse
import json
import time

STARTED = time.time()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("algo", choices=["dqn", "ppo"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--score", type=float, default=475.0)
    parser.add_argument("--max-steps", type=int, default=0, help="default: rl-zoo's n_timesteps")
    parser.add_argument("--process-start", type=float, default=STARTED)
    args = parser.parse_args()


    from sb3_throughput import hyperparameters  # beside this file
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold
    from stable_baselines3.common.env_util import make_vec_env

    imported = time.time()
    hyper = hyperparameters(args.algo, "CartPole-v1")
    n_envs = int(hyper.pop("n_envs", 1))
    n_timesteps = int(float(hyper.pop("n_timesteps")))
    hyper.pop("policy", None)
    env = make_vec_env("CartPole-v1", n_envs=n_envs, seed=args.seed)
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=args.seed + 1000)
    cls = DQN if args.algo == "dqn" else PPO
    model = cls("MlpPolicy", env, seed=args.seed, verbose=0, **hyper)
    stop = StopTrainingOnRewardThreshold(reward_threshold=args.score, verbose=0)
    evaluation = EvalCallback(eval_env, callback_on_new_best=stop, n_eval_episodes=10,
                              eval_freq=max(1000 // n_envs, 1), deterministic=True, verbose=0)
    set_up = time.time()
    model.learn(total_timesteps=args.max_steps or n_timesteps, callback=evaluation)
    trained = time.time()
    env.close()
    eval_env.close()
    print(json.dumps({
        "imports": imported - args.process_start, "setup": set_up - imported, "training": trained - set_up,
        "env_steps": int(model.num_timesteps), "score": float(evaluation.best_mean_reward),
        "solved": bool(evaluation.best_mean_reward >= args.score), "n_envs": n_envs,
        "hyperparameters": {k: (v if isinstance(v, (int, float, str, list, dict)) else "schedule") for k, v in hyper.items()},
        "end": time.time(),
    }), flush=True)


if __name__ == "__main__":
    main()
