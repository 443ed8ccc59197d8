"""The `lab` commands on recorded experiments: ls, show, best, export, leaderboard, compare, tag, note, rm,
importance, report."""
from __future__ import annotations

import argparse
import json
import sys

from lab.cli.output import (
    fmt,
    fmt_time,
    print_best,
    print_metrics,
    print_provenance,
    print_table,
)
from lab.errors import LabError
from lab.spec.safety import printable


def cmd_leaderboard(args: argparse.Namespace) -> int:
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
    print(printable(f"ranked by {metric} ({mode})"))
    table = [[r["rank"], r["experiment_id"], r["name"], r["workload"], r["dataset"] or "-", r["user"] or "-",
              r["trial_id"], fmt(r["value"]), r["config"]] for r in rows]
    print_table(["RANK", "EXP", "NAME", "WORKLOAD", "DATASET", "USER", "TRIAL", metric.upper(), "CONFIG"], table)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from lab.api import compare

    frame = compare(*args.ids)
    rows = [[key, *(fmt(_none(v)) for v in frame.loc[key])] for key in frame.index]
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
    print(printable(f"experiment {args.id}: " + (" ".join(f"{k}={v}" for k, v in tags.items()) or "no tags")))
    return 0


def cmd_note(args: argparse.Namespace) -> int:
    from lab.api import note

    note(args.id, args.text)
    print(f"noted on experiment {args.id}")
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    """Delete an experiment's rows and, only after the checks, its folder: the one its registry row names,
    under the configured storage root, carrying this experiment's marker (the row is a stranger's text)."""
    from lab.infra import storage
    from lab.registry import Registry, display_status

    registry = Registry()
    exp = registry.experiment(args.id)
    status = display_status(exp)
    if status == "running":
        raise LabError(f"experiment {args.id} is running (heartbeat {exp['heartbeat_at']:%H:%M:%S}): "
                       "stop it first (Ctrl-C in its `lab run`)")
    where = None
    if exp["storage_path"] and not args.keep_files:
        where = storage.recorded(exp["storage_path"], f"experiment {args.id}'s storage folder")
    if where and not storage.exists(where):
        where = None  # its folder is gone already: only the rows are left to delete
    if where:
        if not exp.get("uuid"):
            raise LabError(f"experiment {args.id} was recorded by an older lab (no uuid): its folder "
                           f"{printable(where.uri)} cannot be proven to be its own; delete the folder yourself and "
                           "pass --keep-files")
        storage.check_marker(where, exp)
        storage.check_removable(where)
    target = printable(where.uri) if where else "no files"
    if not args.yes:
        if not sys.stdin.isatty():
            raise LabError(f"lab rm {args.id} asks for confirmation: run it in a terminal or pass --yes")
        # the prompt on stdout, never where input() may put it (stderr, which a quiet command sends to its log)
        print(f"delete experiment {args.id} ({printable(exp['name'])}, {printable(status)}) and {target}? [y/N] ",
              end="", flush=True)
        answer = sys.stdin.readline()
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    registry.delete_experiment(args.id)  # first: a read-only registry role deletes nothing at all
    if where:
        try:
            storage.remove(where)
        except LabError as exc:
            raise LabError(f"deleted experiment {args.id}'s rows, but not its folder: {exc}") from None
    print(f"deleted experiment {args.id}" + (f" and {target}" if where else ""))
    return 0


def cmd_importance(args: argparse.Namespace) -> int:
    from lab.results.insight import importance

    scores = importance(args.id)
    print(f"hyperparameter importance for {scores.attrs['metric']} over {scores.attrs['trials']} trials (fANOVA)")
    print_table(["PARAM", "IMPORTANCE"], [[k, f"{v:.3f}"] for k, v in scores.items()])
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from lab.results.insight import report

    if args.metric and len(args.ids) < 2:
        raise LabError("--metric chooses what several experiments are compared on: give two ids or more")
    path = report(args.ids if len(args.ids) > 1 else args.ids[0], args.out, args.metric)
    what = f"experiment {args.ids[0]}" if len(args.ids) == 1 else f"experiments {', '.join(map(str, args.ids))}"
    print(f"report of {what}: {path}")
    return 0


def _none(value):
    try:
        import pandas as pd

        return None if pd.isna(value) else value
    except (TypeError, ValueError):
        return value


def cmd_ls(args: argparse.Namespace) -> int:
    from lab.registry import Registry, display_status

    tags = {}
    for pair in args.tags:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise LabError(f"--tag expects KEY=VALUE, got {pair!r}")
        tags[key] = value
    rows = Registry().experiments(limit=args.limit, where=args.where, tags=tags)
    if args.json:
        from lab.registry import views

        print(json.dumps([views.experiment(r) for r in rows], indent=2))
        return 0
    if not rows:
        print("no experiments match" if args.where or tags else "no experiments yet: try `lab run quickstart`")
        return 0
    table = [
        [r["id"], r["name"], r["workload"], display_status(r), f"{r['num_trials'] or 0}", f"{r['num_errors'] or 0}",
         fmt_time(r["started_at"]), r["user"] or "", r["host"] or ""]
        for r in rows
    ]
    print_table(["ID", "NAME", "WORKLOAD", "STATUS", "TRIALS", "ERRORS", "STARTED", "USER", "HOST"], table)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from lab.registry import Registry, display_status, views

    registry = Registry()
    exp = registry.experiment(args.id)
    trials = registry.trials(args.id)
    if args.json:
        print(json.dumps({**views.experiment(exp), "spec": exp["spec"], "environment": exp.get("environment") or {},
                          "tags": registry.tags(args.id),
                          "notes": [{k: views.jsonable(v) for k, v in n.items()} for n in registry.notes(args.id)],
                          "trials": [views.trial(t, exp) for t in trials]}, indent=2))
        return 0
    spec = exp["spec"]
    status = display_status(exp)
    if status == "stale":
        status += f" (no heartbeat since {fmt_time(exp['heartbeat_at'])}: its driver died; `lab resume {exp['id']}`)"
    metric_name, _ = views.natural(exp["metric"], 0.0)
    print(printable(f"experiment {exp['id']}: {exp['name']} ({exp['workload']}) - {status}"))
    if metric_name == exp["metric"]:
        print(printable(f"  metric   {metric_name} ({exp['mode']})"))
    else:  # a neg_* scoring: shown in its natural sign, so the better direction flips too
        natural_mode = "min" if exp["mode"] == "max" else "max"
        print(printable(f"  metric   {metric_name} ({natural_mode}; recorded as {exp['metric']}, {exp['mode']})"))
    print(f"  started  {fmt_time(exp['started_at'])}   ended {fmt_time(exp['ended_at'])}")
    print(printable(f"  by       {exp['user']}@{exp['host']}   commit {exp['git_commit'] or '-'}"))
    print(printable(f"  storage  {exp['storage_path']}"))
    if spec.get("search"):
        print(f"  search   {json.dumps(spec['search'])}")
    if exp["error"]:
        print(printable(f"  error    {exp['error']}"))
    print_provenance(registry, exp)
    searched = list(spec.get("search", {}))
    rows = []
    for t in trials:
        params = " ".join(f"{k}={fmt(t['config'].get(k))}" for k in searched)
        rows.append([t["trial_id"], t["status"], t["iterations"],
                     fmt(views.natural(exp["metric"], t["last_result"].get(exp["metric"]))[1]),
                     fmt(views.natural(exp["metric"], t["best_metric"])[1]), params,
                     (t["error"] or "").splitlines()[0] if t["error"] else ""])
    print_table(["TRIAL", "STATUS", "ITER", "LAST", "BEST", "PARAMS", "ERROR"], rows)
    print_metrics(trials)
    return 0


def cmd_best(args: argparse.Namespace) -> int:
    from lab.registry import Registry

    registry = Registry()
    exp = registry.experiment(args.id)
    best = registry.best_trial(args.id)
    if best is None:
        raise LabError(f"experiment {args.id} has no trial that reported '{exp['metric']}'")
    if args.json:
        from lab.registry import views

        print(json.dumps(views.trial(best, exp), indent=2))
        return 0
    print_best(exp, best)
    print_metrics([best])
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from lab.results.artifacts import export_trial

    path, trial = export_trial(args.id, args.out, args.trial, force=args.force)
    print(f"exported trial {trial['trial_id']} of experiment {args.id}: {path}")
    return 0
