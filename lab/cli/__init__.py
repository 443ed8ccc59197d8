"""`lab`: run experiments, list and inspect them, open TensorBoard.

Start-up stays light: TensorFlow and Ray are imported only by the commands that run experiments.
"""
from __future__ import annotations

import argparse
import errno
import json
import sys
from typing import Any

from lab.errors import LabError, SpecError

MAX_ERROR_LINES = 30
JSON_HELP = "print it as JSON (the shapes are in README.md, 'Machine-readable output')"


def main(argv: list[str] | None = None) -> int:
    """Run one command; any end other than success is one line on stderr (never a traceback)."""
    import signal

    from lab.errors import HangUp

    def hang_up(signum, frame):  # the terminal closed: end like Ctrl-C, without a word to a dead terminal
        raise HangUp()

    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:
        signal.signal(signal.SIGHUP, hang_up)
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        code = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's own flush at exit
        return code
    except SpecError as exc:  # every problem of a spec, one per line
        for line in str(exc).splitlines()[:MAX_ERROR_LINES] or [""]:
            _say(f"lab: error: {line}", 2)
        return 2
    except LabError as exc:
        return _say(f"lab: error: {(str(exc).splitlines() or [type(exc).__name__])[0]}", 2)
    except HangUp:
        return _quiet_exit(129)
    except KeyboardInterrupt:
        return _say("lab: interrupted", 130)
    except BrokenPipeError:  # `lab best --json | head -c1`: the reader went away, nothing more to say
        return _quiet_exit(141)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return _say(f"lab: error: no space left on the device{_where(exc)}", 2)
        if exc.errno == errno.EIO:  # a closed terminal
            return _quiet_exit(129)
        raise


def _say(line: str, code: int) -> int:
    """Print one line to stderr (if anyone still reads it) and return `code`."""
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        pass
    return code


def _quiet_exit(code: int) -> int:
    """Stdout's reader is gone: point stdout at /dev/null so that flushing at exit raises nothing."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return code


def _where(exc: OSError) -> str:
    return f" (writing {exc.filename})" if getattr(exc, "filename", None) else ""


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lab", description="Run tracked Ray Tune experiments of the Hands-On ML curriculum.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a preset or a spec.yaml as a Ray Tune experiment")
    run.add_argument("source", help="a preset name (see `lab presets`) or a path to a spec YAML")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a spec field (num_samples=4, params.learning_rate=1e-3, or just learning_rate=1e-3)")
    run.add_argument("--address", help="Ray cluster address (default: start Ray locally; or $LAB_RAY_ADDRESS)")
    run.add_argument("--dry-run", action="store_true", help="validate and print the resolved spec, run nothing")
    run.add_argument("--storage", help="where Tune writes: a folder, or s3://, gs://, file:// (default: $LAB_STORAGE)")
    run.add_argument("--mlflow", metavar="URI", help="also log the trials to this MLflow tracking URI ($LAB_MLFLOW_URI)")
    run.add_argument("--trust-spec", action="store_true",
                     help="use the storage and MLflow server a spec file names (else: refused, or asked at a terminal)")
    run.add_argument("--verbose", action="store_true", help="Tune's progress tables and the libraries' log output")
    run.set_defaults(handler=cmd_run)

    submit = commands.add_parser("submit", help="run a preset or a spec.yaml as a Ray job on a cluster (its dashboard's job API)")
    submit.add_argument("source", help="a preset name or a path to a spec YAML")
    submit.add_argument("--address", default="http://127.0.0.1:8265",
                        help="the cluster's dashboard, http://HOST:PORT (default http://127.0.0.1:8265)")
    submit.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec field, as for `lab run`")
    submit.add_argument("--wait", action="store_true", help="follow the job's logs; exit with its exit status")
    submit.add_argument("--trust-spec", action="store_true", help="use the storage and MLflow server a spec file names")
    submit.set_defaults(handler=cmd_submit)

    resume = commands.add_parser("resume", help="continue an interrupted experiment")
    resume.add_argument("id", type=int)
    resume.add_argument("--address", help="Ray cluster address")
    resume.add_argument("--verbose", action="store_true", help="Tune's progress tables and the libraries' log output")
    resume.set_defaults(handler=cmd_resume)

    ls = commands.add_parser("ls", help="list experiments in the registry")
    ls.add_argument("--limit", type=int, default=30)
    ls.add_argument("--json", action="store_true", help=JSON_HELP)
    ls.add_argument("--where", help='a filter: "status = completed and workload = dqn and metric.eval/average_return > 400" '
                                    "(fields: status workload name user dataset tag.KEY metric.NAME best; see README)")
    ls.add_argument("--tag", dest="tags", action="append", default=[], metavar="KEY=VALUE", help="only experiments with this tag")
    ls.set_defaults(handler=cmd_ls)

    show = commands.add_parser("show", help="an experiment and its trials (final metrics of each)")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true", help=JSON_HELP)
    show.set_defaults(handler=cmd_show)

    best = commands.add_parser("best", help="the best trial of an experiment")
    best.add_argument("id", type=int)
    best.add_argument("--json", action="store_true", help=JSON_HELP)
    best.set_defaults(handler=cmd_best)

    board = commands.add_parser("tensorboard", help="start TensorBoard over experiments (default: the last 10)")
    board.add_argument("ids", type=int, nargs="*")
    board.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1; "
                       "TensorBoard has no authentication: reach it through an SSH tunnel)")
    board.add_argument("--port", type=int, default=None,
                       help="port (default 6006, or a free one when 6006 is taken; a taken --port is an error)")
    board.set_defaults(handler=cmd_tensorboard)

    up = commands.add_parser("up", help="start a warm local Ray (workers with TensorFlow imported) that runs then use")
    up.add_argument("--cpus", type=int, help="CPUs of the instance (default: all)")
    up.add_argument("--workers", type=int, help="idle warm workers to keep (default: one per CPU)")
    up.add_argument("--dashboard", action="store_true", help="also start Ray's dashboard (on 127.0.0.1)")
    up.set_defaults(handler=cmd_up)

    down = commands.add_parser("down", help="stop the warm local Ray of `lab up`")
    down.set_defaults(handler=cmd_down)

    status = commands.add_parser("status", help="is a warm local Ray up?")
    status.set_defaults(handler=cmd_status)

    export = commands.add_parser("export", help="write a trial's trained model in a portable format")
    export.add_argument("id", type=int, help="experiment id")
    export.add_argument("--trial", help="trial id (default: the best trial)")
    export.add_argument("--out", required=True, help="folder to write (absent or empty)")
    export.add_argument("--force", action="store_true", help="replace --out when it is not empty")
    export.set_defaults(handler=cmd_export)

    presets = commands.add_parser("presets", help="list the presets shipped with the lab, or show one resolved")
    presets.add_argument("name", nargs="?", help="a preset: print its resolved spec (what `lab run NAME` runs)")
    presets.add_argument("--json", action="store_true", help=JSON_HELP)
    presets.set_defaults(handler=cmd_presets)

    params = commands.add_parser("params", help="a workload's parameters: type, default, meaning")
    params.add_argument("name", metavar="WORKLOAD|PRESET", help="a workload (e.g. sklearn_cv, dqn) or a preset")
    params.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="params to show it with, e.g. model=random_forest for that pipeline's step__param names")
    params.add_argument("--json", action="store_true", help=JSON_HELP)
    params.set_defaults(handler=cmd_params)

    from lab.cli.experiments import add_commands

    add_commands(commands)
    for add_command in command_plugins():
        add_command(commands)
    return parser


def command_plugins() -> list:
    """The functions of the `agent_lab.commands` entry points, each adding one subcommand (`lab.plugins`).

    Their modules are small (heavy imports happen inside the handlers), so start-up stays fast.
    """
    from lab import plugins

    return [entry.load() for _, entry in sorted(plugins.entry_points(plugins.COMMANDS).items())]


# ------------------------------------------------------------------ commands
def cmd_run(args: argparse.Namespace) -> int:
    from lab import spec as specs

    extra = [f"{key}={value}" for key, value in (("storage", args.storage), ("mlflow", args.mlflow)) if value]
    experiment_specs = specs.load(args.source, [*args.overrides, *extra], trust_spec=args.trust_spec)
    if args.dry_run:
        import yaml

        for spec in experiment_specs:
            print(yaml.safe_dump(spec.to_dict(), sort_keys=False))
        return 0
    from lab.run import runner
    from lab.registry import Registry

    registry = Registry()
    registry.check()
    outcomes = []
    for spec in experiment_specs:
        outcomes.append(runner.run(spec, address=args.address, registry=registry, verbose=args.verbose))
    print_outcomes(outcomes)
    return exit_code(outcomes)


def cmd_submit(args: argparse.Namespace) -> int:
    from lab.infra import jobs

    return jobs.submit(args.source, args.overrides, args.address, wait=args.wait, trust_spec=args.trust_spec)


def cmd_resume(args: argparse.Namespace) -> int:
    from lab.run import runner

    outcome = runner.resume(args.id, address=args.address, verbose=args.verbose)
    print_outcomes([outcome])
    return exit_code([outcome])


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
         _time(r["started_at"]), r["user"] or "", r["host"] or ""]
        for r in rows
    ]
    print_table(["ID", "NAME", "WORKLOAD", "STATUS", "TRIALS", "ERRORS", "STARTED", "USER", "HOST"], table)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from lab.registry import views
    from lab.registry import Registry, display_status

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
        status += f" (no heartbeat since {_time(exp['heartbeat_at'])}: its driver died; `lab resume {exp['id']}`)"
    metric_name, _ = views.natural(exp["metric"], 0.0)
    print(f"experiment {exp['id']}: {exp['name']} ({exp['workload']}) - {status}")
    if metric_name == exp["metric"]:
        print(f"  metric   {metric_name} ({exp['mode']})")
    else:  # a neg_* scoring: shown in its natural sign, so the better direction flips too
        natural_mode = "min" if exp["mode"] == "max" else "max"
        print(f"  metric   {metric_name} ({natural_mode}; recorded as {exp['metric']}, {exp['mode']})")
    print(f"  started  {_time(exp['started_at'])}   ended {_time(exp['ended_at'])}")
    print(f"  by       {exp['user']}@{exp['host']}   commit {exp['git_commit'] or '-'}")
    print(f"  storage  {exp['storage_path']}")
    if spec.get("search"):
        print(f"  search   {json.dumps(spec['search'])}")
    if exp["error"]:
        print(f"  error    {exp['error']}")
    print_provenance(registry, exp)
    searched = list(spec.get("search", {}))
    rows = []
    for t in trials:
        params = " ".join(f"{k}={_fmt(t['config'].get(k))}" for k in searched)
        rows.append([t["trial_id"], t["status"], t["iterations"],
                     _fmt(views.natural(exp["metric"], t["last_result"].get(exp["metric"]))[1]),
                     _fmt(views.natural(exp["metric"], t["best_metric"])[1]), params,
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


def cmd_tensorboard(args: argparse.Namespace) -> int:
    import os

    from lab.registry import Registry

    if not is_loopback(args.host):
        port = args.port or 6006
        raise LabError(f"TensorBoard has no authentication: it binds to loopback only (got --host {args.host}; "
                       f"reach it from elsewhere through an SSH tunnel: ssh -L {port}:127.0.0.1:{port} HOST)")
    registry = Registry()
    experiments = [registry.experiment(i) for i in args.ids] if args.ids else registry.experiments(limit=10)
    folders = {f"{e['id']}-{e['name']}": e["storage_path"] for e in experiments if e["storage_path"]}
    missing = [path for path in folders.values() if "://" not in path and not os.path.isdir(path)]
    if not folders:
        raise LabError("no experiments to show: run one first (`lab run quickstart`)")
    if missing:
        raise LabError(f"experiment folder not found: {missing[0]}")
    logdir_spec = ",".join(f"{name}:{path}" for name, path in folders.items())
    from lab.results import board
    from lab.infra.signals import terminate_like_ctrl_c

    terminate_like_ctrl_c()  # SIGTERM, SIGHUP: TensorBoard is stopped and its port freed, as on Ctrl-C
    return board.serve(logdir_spec, args.host, args.port, list(folders))


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_up(args: argparse.Namespace) -> int:
    from lab.infra import warm

    if args.cpus is not None and args.cpus < 1 or args.workers is not None and args.workers < 0:
        raise LabError("--cpus must be at least 1 and --workers at least 0")
    warm.check_none_up()
    print("starting a warm local Ray (its workers import TensorFlow and TF-Agents first) ...", flush=True)
    warm.up(num_cpus=args.cpus, pool=args.workers, dashboard=args.dashboard)
    print(warm.describe())
    print("runs without --address now use it; `lab down` stops it")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from lab.infra import warm

    instance = warm.down()
    print(f"stopped the warm Ray instance at {instance.address} (pid {instance.pid})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from lab.infra import warm

    print(warm.describe())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from lab.results.artifacts import export_trial

    path, trial = export_trial(args.id, args.out, args.trial, force=args.force)
    print(f"exported trial {trial['trial_id']} of experiment {args.id}: {path}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from lab import spec as specs

    if args.name:  # one preset, resolved as `lab run NAME` would run it
        known = specs.presets()
        if args.name not in known:
            raise SpecError(f"unknown preset '{args.name}'{specs.suggest(args.name, known)}")
        resolved = [spec.to_dict() for spec in specs.load(args.name)]
        if args.json:
            print(json.dumps(resolved, indent=2))
        else:
            import yaml

            print("---\n".join(yaml.safe_dump(spec, sort_keys=False) for spec in resolved), end="")
        return 0
    rows = []
    for name, resource in sorted(specs.presets().items()):
        raw = specs.parse_yaml(resource.read_text(), name)
        kind = "suite" if "suite" in raw else raw.get("workload", "?")
        rows.append([name, kind, (raw.get("description") or "").strip().splitlines()[0] if raw.get("description") else ""])
    if args.json:
        print(json.dumps([dict(zip(("name", "workload", "description"), row)) for row in rows], indent=2))
        return 0
    print_table(["PRESET", "WORKLOAD", "DESCRIPTION"], rows)
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    from lab.workload import params as described
    from lab import spec as specs
    from lab import workload as workloads

    known_workloads, known_presets = workloads.discover(), specs.presets()
    search: dict[str, Any] = {}
    if args.name in known_workloads:
        raw = specs.apply_overrides({"workload": args.name, "params": {}}, args.overrides)
        workload, params = args.name, raw.get("params") or {}
        workloads.get(workload).make_config(params)  # a typo in --set: the usual one-line error
    elif args.name in known_presets:
        spec = specs.load(args.name, args.overrides, say=lambda line: None)[0]
        workload, params, search = spec.workload, spec.params, spec.search
    else:
        raise SpecError(f"unknown workload or preset '{args.name}'"
                        f"{specs.suggest(args.name, [*known_workloads, *known_presets])}")
    view = described.describe(workload, params)
    view["preset"] = args.name if workload != args.name else None
    view["search"] = search
    if args.json:
        print(json.dumps(view, indent=2))
        return 0
    source = f" (values of preset '{view['preset']}')" if view["preset"] else ""
    print(f"{workload}: {view['doc']}{source}")
    print_table(["PARAMETER", "TYPE", "DEFAULT", "MEANING"],
                [[p["name"], p["type"], _searched(search, p["name"]) or _value(p["default"]), p["help"]]
                 for p in view["parameters"]])
    for step, names in view["searchable"].items():
        print(f"\nstep '{step}': its parameters, as params or search keys")
        print_table(["NAME", "DEFAULT"], [[name, _searched(search, name) or _value(value)] for name, value in names.items()])
    return 0


def _searched(search: dict[str, Any], name: str) -> str:
    return f"search {json.dumps(search[name])}" if name in search else ""


def _value(value: Any) -> str:
    return json.dumps(value)  # as YAML would read it: true, null, 0.001, "scale"


def exit_code(outcomes) -> int:
    """0 only when every experiment completed and no trial failed."""
    return 0 if all(o.status == "completed" and not o.num_errors for o in outcomes) else 1


# ------------------------------------------------------------------ output
def print_outcomes(outcomes) -> None:
    from lab.registry import Registry

    registry = Registry()
    print()
    for outcome in outcomes:
        exp = registry.experiment(outcome.experiment_id)
        print(f"experiment {outcome.experiment_id} ({outcome.name}): {outcome.status}, "
              f"{outcome.num_trials} trials, {outcome.num_errors} errors")
        if outcome.best:
            print_best(exp, outcome.best, indent="  ")
    ids = " ".join(str(o.experiment_id) for o in outcomes)
    print(f"\nexperiment ids: {ids}")
    print(f"TensorBoard:    lab tensorboard {ids}")


def print_provenance(registry, exp: dict[str, Any]) -> None:
    """Tags, notes and the environment record (Python, packages, commit) of `lab show`."""
    from lab.run.environment import format_lines

    tags = registry.tags(exp["id"])
    if tags:
        print(f"  tags     {' '.join(f'{k}={v}' for k, v in tags.items())}")
    for note in registry.notes(exp["id"]):
        print(f"  note     {_time(note['created_at'])} {note['user'] or ''}: {note['text']}")
    params = exp["spec"].get("params") or {}
    if params:
        print(f"  params   {' '.join(f'{k}={json.dumps(v)}' for k, v in params.items())}")
    for i, line in enumerate(format_lines(exp.get("environment") or {})):
        print(f"  {'env' if i == 0 else '':<8} {line}")


def print_best(exp: dict[str, Any], best: dict[str, Any], indent: str = "") -> None:
    from lab.registry import views

    metric = exp["metric"]
    print(f"{indent}best trial {best['trial_id']}: {views.fmt_metric(metric, best['best_metric'])}")
    reference = exp["spec"].get("reference") or {}
    if reference.get("metric"):
        # the reference score is checked on the best trial's final value (its best value when it is the metric)
        value = best["best_metric"] if reference["metric"] == metric else best["last_result"].get(reference["metric"])
        if isinstance(value, (int, float)):
            reached = value >= reference["score"] if exp["mode"] == "max" else value <= reference["score"]
            print(f"{indent}  reference: {views.fmt_metric(reference['metric'], value)} against "
                  f"{views.fmt(views.natural(reference['metric'], float(reference['score']))[1])}: "
                  f"{'reached' if reached else 'NOT reached'}")
    searched = exp["spec"].get("search") or {}
    if searched:
        config = best["config"]
        print(f"{indent}  config: {' '.join(f'{k}={_fmt(config.get(k))}' for k in searched)}")
    if best.get("checkpoint_path"):
        print(f"{indent}  checkpoint: {best['checkpoint_path']}")


def print_table(header: list[str], rows: list[list[Any]]) -> None:
    """Aligned columns; a column with no value in any row is left out."""
    cells = [[str(c) for c in row] for row in rows]
    keep = [i for i in range(len(header)) if not cells or any(row[i] != "" for row in cells)]
    cells = [[header[i] for i in keep], *[[row[i] for i in keep] for row in cells]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(keep))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


TUNE_COUNTERS = ("training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "time_since_restore",
                 "iterations_since_restore", "timesteps_total", "episodes_total", "done", "timesteps_since_restore")


def print_metrics(trials: list[dict[str, Any]]) -> None:
    """Every final metric of the trials, in its natural sign: one row per metric, one column per trial."""
    from lab.registry import views

    names = sorted({k for t in trials for k, v in t["last_result"].items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in TUNE_COUNTERS})
    if not names:
        return
    print()
    rows = [[views.natural(name, 0.0)[0], *[_fmt(views.natural(name, t["last_result"].get(name))[1]) for t in trials]]
            for name in names]
    print_table(["FINAL METRIC", *[t["trial_id"] for t in trials]], rows)


def _fmt(value: Any) -> str:
    from lab.registry import views

    return views.fmt(value)


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


if __name__ == "__main__":
    sys.exit(main())
