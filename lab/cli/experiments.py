"""The `lab` commands across experiments: leaderboard, compare, tag, note, rm, rerun, importance, report."""
from __future__ import annotations

import argparse
import sys

from lab.errors import LabError


def add_commands(commands) -> None:
    """Add this module's sub-commands to the `lab` parser's sub-parsers."""
    board = commands.add_parser("leaderboard", help="rank trials across experiments (and users) by one metric")
    board.add_argument("--workload", help="only this workload (e.g. sklearn_cv, dqn)")
    board.add_argument("--dataset", help="only this data set or env id (e.g. digits, CartPole-v1)")
    board.add_argument("--metric", help="rank by this metric (default: the newest matching experiment's)")
    board.add_argument("--where", help='a filter on the experiments, as for `lab ls --where`')
    board.add_argument("--limit", type=int, default=20)
    board.add_argument("--json", action="store_true", help="print it as JSON (README.md, 'Machine-readable output')")
    board.set_defaults(handler=cmd_leaderboard)

    compare = commands.add_parser("compare", help="experiments side by side: differing config, best metrics")
    compare.add_argument("ids", type=int, nargs="+")
    compare.set_defaults(handler=cmd_compare)

    tag = commands.add_parser("tag", help="set (or --rm) tags on an experiment")
    tag.add_argument("id", type=int)
    tag.add_argument("pairs", nargs="*", metavar="KEY=VALUE")
    tag.add_argument("--rm", action="append", default=[], metavar="KEY", help="remove this tag")
    tag.set_defaults(handler=cmd_tag)

    note = commands.add_parser("note", help="append a note to an experiment")
    note.add_argument("id", type=int)
    note.add_argument("text")
    note.set_defaults(handler=cmd_note)

    rm = commands.add_parser("rm", help="delete an experiment and its files (never a running one)")
    rm.add_argument("id", type=int)
    rm.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rm.set_defaults(handler=cmd_rm)

    rerun = commands.add_parser("rerun", help="run an experiment's recorded spec again, as a new experiment")
    rerun.add_argument("id", type=int)
    rerun.add_argument("--address", help="Ray cluster address")
    rerun.add_argument("--verbose", action="store_true", help="Tune's progress tables and the workers' logs")
    rerun.add_argument("--trust-spec", action="store_true",
                       help="use the storage and MLflow server the recorded spec names (it may be another user's)")
    rerun.set_defaults(handler=cmd_rerun)

    importance = commands.add_parser("importance", help="hyperparameter importance over an experiment's trials (fANOVA)")
    importance.add_argument("id", type=int)
    importance.set_defaults(handler=cmd_importance)

    report = commands.add_parser("report", help="one self-contained HTML page about an experiment")
    report.add_argument("id", type=int)
    report.add_argument("--out", default="", help="the HTML file (default report-ID.html)")
    report.set_defaults(handler=cmd_report)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from lab.cli import _fmt, print_table
    from lab.registry import Registry

    if args.limit < 1:
        raise LabError(f"--limit must be at least 1, got {args.limit}")
    from lab.api import leaderboard_rows

    metric, mode, rows = leaderboard_rows(args.workload, args.dataset, args.metric, args.limit, args.where)
    if args.json:
        import json

        from lab.registry.views import jsonable

        print(json.dumps({"metric": metric, "mode": mode,
                          "rows": [{k: jsonable(v) for k, v in r.items()} for r in rows]}, indent=2, default=str))
        return 0
    if not rows:
        if args.metric and metric is None and Registry().leaderboard(
                args.workload, args.dataset, None, 1, args.where)[0] is not None:
            raise LabError(f"no matching experiment is ranked by metric '{args.metric}'")
        print("no trials match")
        return 0
    print(f"ranked by {metric} ({mode})")
    table = [[r["rank"], r["experiment_id"], r["name"], r["workload"], r["dataset"] or "-", r["user"] or "-",
              r["trial_id"], _fmt(r["value"]), r["config"]] for r in rows]
    print_table(["RANK", "EXP", "NAME", "WORKLOAD", "DATASET", "USER", "TRIAL", metric.upper(), "CONFIG"], table)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from lab.api import compare
    from lab.cli import _fmt, print_table

    frame = compare(*args.ids)
    rows = [[key, *(_fmt(_none(v)) for v in frame.loc[key])] for key in frame.index]
    print_table(["", *(f"EXP {i}" for i in frame.columns)], rows)
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    from lab.registry import Registry

    if not args.pairs and not args.rm:
        raise LabError("lab tag needs KEY=VALUE pairs or --rm KEY")
    values = {}
    for pair in args.pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not key.replace("_", "").replace("-", "").replace(".", "").isalnum():
            raise LabError(f"a tag is KEY=VALUE with a key of letters, digits, _ - . ; got {pair!r}")
        values[key.strip()] = value
    registry = Registry()
    registry.experiment(args.id)
    known = registry.tags(args.id)
    for key in args.rm:  # check everything before changing anything
        if key not in known:
            raise LabError(f"experiment {args.id} has no tag '{key}' (tags: {', '.join(known) or 'none'})")
    if values:
        registry.set_tags(args.id, values)
    for key in args.rm:
        registry.remove_tag(args.id, key)
    tags = registry.tags(args.id)
    print(f"experiment {args.id}: " + (" ".join(f"{k}={v}" for k, v in tags.items()) or "no tags"))
    return 0


def cmd_note(args: argparse.Namespace) -> int:
    from lab.api import note

    note(args.id, args.text)
    print(f"noted on experiment {args.id}")
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    from lab.infra import storage
    from lab.registry import Registry, display_status

    registry = Registry()
    exp = registry.experiment(args.id)
    status = display_status(exp)
    if status == "running":
        raise LabError(f"experiment {args.id} is running (heartbeat {exp['heartbeat_at']:%H:%M:%S}): "
                       "stop it first (Ctrl-C in its `lab run`)")
    folder = exp["storage_path"]
    if not args.yes:
        if not sys.stdin.isatty():
            raise LabError(f"lab rm {args.id} asks for confirmation: run it in a terminal or pass --yes")
        answer = input(f"delete experiment {args.id} ({exp['name']}, {status}) and {folder or 'no files'}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    if folder:
        storage.remove(folder)
    registry.delete_experiment(args.id)
    print(f"deleted experiment {args.id}" + (f" and {folder}" if folder else ""))
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    from lab.run import runner
    from lab.api import recorded_spec
    from lab.cli import exit_code, print_outcomes
    from lab.registry import Registry
    from lab.spec import build_spec, validate_params

    spec = build_spec(recorded_spec(args.id, args.trust_spec), f"experiment {args.id}'s recorded spec")
    validate_params(spec)
    outcome = runner.run(spec, address=args.address, registry=Registry(), verbose=args.verbose)
    print(f"rerun of experiment {args.id}:")
    print_outcomes([outcome])
    return exit_code([outcome])


def cmd_importance(args: argparse.Namespace) -> int:
    from lab.cli import print_table
    from lab.results.insight import importance

    scores = importance(args.id)
    print(f"hyperparameter importance for {scores.attrs['metric']} over {scores.attrs['trials']} trials (fANOVA)")
    print_table(["PARAM", "IMPORTANCE"], [[k, f"{v:.3f}"] for k, v in scores.items()])
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from lab.results.insight import report

    path = report(args.id, args.out or f"report-{args.id}.html")
    print(f"report of experiment {args.id}: {path}")
    return 0


def _none(value):
    try:
        import pandas as pd

        return None if pd.isna(value) else value
    except (TypeError, ValueError):
        return value
