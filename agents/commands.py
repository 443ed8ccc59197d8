"""`lab eval`: the RL part's command (registered as an `agent_lab.commands` entry point)."""
from __future__ import annotations

import argparse


def add_eval(commands) -> None:
    """Add `lab eval` to the `lab` parser's subcommands."""
    evaluate = commands.add_parser("eval", help="play a trained policy for N episodes: mean return, optional video")
    evaluate.add_argument("source", metavar="ID|PATH", help="experiment id (its best trial) or a policy folder from `lab export`")
    evaluate.add_argument("--episodes", type=int, default=10, help="greedy episodes to play (default 10)")
    evaluate.add_argument("--video", metavar="FILE", help="record the first episode to FILE.gif or FILE.mp4")
    evaluate.add_argument("--trial", help="trial id (default: the best trial; only with an experiment id)")
    evaluate.add_argument("--seed", type=int, default=0, help="episode i is reset with seed + i (default 0)")
    evaluate.add_argument("--trust", action="store_true",
                          help="load a policy folder this lab did not export (a SavedModel is code: only from people you trust)")
    evaluate.set_defaults(handler=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from agents.evaluate import evaluate, format_result

    print(format_result(evaluate(args.source, args.episodes, args.video, args.trial, args.seed, trust=args.trust)))
    return 0
