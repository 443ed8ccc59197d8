"""The `lab` argument parser: every subcommand, its options and its handler (leaves add theirs by entry point)."""
from __future__ import annotations

import argparse

from lab.cli import catalog, experiments, infra, running
from lab.infra.server_files import SERVED

JSON_HELP = "print it as JSON (the shapes are in README.md, 'Machine-readable output')"


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
    run.set_defaults(handler=running.cmd_run)

    submit = commands.add_parser("submit", help="run a preset or a spec.yaml as a Ray job on a cluster (its dashboard's job API)")
    submit.add_argument("source", help="a preset name or a path to a spec YAML")
    submit.add_argument("--address", default="http://127.0.0.1:8265",
                        help="the cluster's dashboard, http://HOST:PORT (default http://127.0.0.1:8265)")
    submit.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec field, as for `lab run`")
    submit.add_argument("--wait", action="store_true", help="follow the job's logs; exit with its exit status")
    submit.add_argument("--trust-spec", action="store_true", help="use the storage and MLflow server a spec file names")
    submit.set_defaults(handler=infra.cmd_submit)

    resume = commands.add_parser("resume", help="continue an interrupted experiment")
    resume.add_argument("id", type=int)
    resume.add_argument("--address", help="Ray cluster address")
    resume.add_argument("--verbose", action="store_true", help="Tune's progress tables and the libraries' log output")
    resume.add_argument("--trust", action="store_true",
                        help="resume from remote storage (Tune unpickles its files: only if you trust all who can write there)")
    resume.set_defaults(handler=running.cmd_resume)

    ls = commands.add_parser("ls", help="list experiments in the registry")
    ls.add_argument("--limit", type=int, default=30)
    ls.add_argument("--json", action="store_true", help=JSON_HELP)
    ls.add_argument("--where", help='a filter: "status = completed and workload = dqn and metric.eval/average_return > 400" '
                                    "(fields: status workload name user dataset tag.KEY metric.NAME best; see README)")
    ls.add_argument("--tag", dest="tags", action="append", default=[], metavar="KEY=VALUE", help="only experiments with this tag")
    ls.set_defaults(handler=experiments.cmd_ls)

    show = commands.add_parser("show", help="an experiment and its trials (final metrics of each)")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true", help=JSON_HELP)
    show.set_defaults(handler=experiments.cmd_show)

    best = commands.add_parser("best", help="the best trial of an experiment")
    best.add_argument("id", type=int)
    best.add_argument("--json", action="store_true", help=JSON_HELP)
    best.set_defaults(handler=experiments.cmd_best)

    board = commands.add_parser("tensorboard", help="start TensorBoard over experiments (default: the last 10)")
    board.add_argument("ids", type=int, nargs="*")
    board.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1; "
                       "TensorBoard has no authentication: reach it through an SSH tunnel)")
    board.add_argument("--port", type=int, default=None,
                       help="port (default 6006, or a free one when 6006 is taken; a taken --port is an error)")
    board.set_defaults(handler=infra.cmd_tensorboard)

    up = commands.add_parser("up", help="start a warm local Ray (workers with TensorFlow imported) that runs then use")
    up.add_argument("--cpus", type=int, help="CPUs of the instance (default: all)")
    up.add_argument("--workers", type=int, help="idle warm workers to keep (default: LAB_WARM_WORKERS, else one per CPU)")
    up.add_argument("--dashboard", action="store_true", help="also start Ray's dashboard (on 127.0.0.1)")
    up.set_defaults(handler=infra.cmd_up)

    down = commands.add_parser("down", help="stop the lab server and the warm local Ray")
    down.set_defaults(handler=infra.cmd_down)

    status = commands.add_parser("status", help="are the lab server and a warm local Ray up?")
    status.set_defaults(handler=infra.cmd_status)

    export = commands.add_parser("export", help="write a trial's trained model in a portable format")
    export.add_argument("id", type=int, help="experiment id")
    export.add_argument("--trial", help="trial id (default: the best trial)")
    export.add_argument("--out", required=True, help="folder to write (absent or empty)")
    export.add_argument("--force", action="store_true", help="replace --out when it is not empty")
    export.set_defaults(handler=experiments.cmd_export)

    presets = commands.add_parser("presets", help="list the presets shipped with the lab, or show one resolved")
    presets.add_argument("name", nargs="?", help="a preset: print its resolved spec (what `lab run NAME` runs)")
    presets.add_argument("--json", action="store_true", help=JSON_HELP)
    presets.set_defaults(handler=catalog.cmd_presets)

    params = commands.add_parser("params", help="a workload's parameters: type, default, meaning")
    params.add_argument("name", metavar="WORKLOAD|PRESET", help="a workload (e.g. sklearn_cv, dqn) or a preset")
    params.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="params to show it with, e.g. model=random_forest for that pipeline's step__param names")
    params.add_argument("--json", action="store_true", help=JSON_HELP)
    params.set_defaults(handler=catalog.cmd_params)

    add_commands(commands)
    for add_command in command_plugins():
        add_command(commands)
    for name in SERVED:  # read by the client (lab.server.client) before this parser runs
        if name in commands.choices:
            commands.choices[name].add_argument("--no-server", action="store_true",
                                                help="run in this process, not in the lab server (also LAB_NO_SERVER=1)")
    for command in commands.choices.values():
        if "--verbose" not in command._option_string_actions:
            command.add_argument("--verbose", action="store_true",
                                 help="the libraries' warnings on the terminal (default: in $LAB_HOME/logs/lab.log)")
    return parser


def command_plugins() -> list:
    """The functions of the `agent_lab.commands` entry points, each adding one subcommand (`lab.plugins`).

    Their modules are small (heavy imports happen inside the handlers), so start-up stays fast.
    """
    from lab import plugins

    return [entry.load() for _, entry in sorted(plugins.entry_points(plugins.COMMANDS).items())]


def add_commands(commands) -> None:
    """The commands across experiments: leaderboard, compare, tag, note, rm, rerun, importance, report, ui."""
    board = commands.add_parser("leaderboard", help="rank trials across experiments (and users) by one metric")
    board.add_argument("--workload", help="only this workload (e.g. sklearn_cv, dqn)")
    board.add_argument("--dataset", help="only this data set or env id (e.g. digits, CartPole-v1)")
    board.add_argument("--metric", help="rank by this metric (default: the newest matching experiment's)")
    board.add_argument("--where", help='a filter on the experiments, as for `lab ls --where`')
    board.add_argument("--limit", type=int, default=20)
    board.add_argument("--json", action="store_true", help="print it as JSON (README.md, 'Machine-readable output')")
    board.set_defaults(handler=experiments.cmd_leaderboard)

    compare = commands.add_parser("compare", help="experiments side by side: differing config, best metrics")
    compare.add_argument("ids", type=int, nargs="+")
    compare.set_defaults(handler=experiments.cmd_compare)

    tag = commands.add_parser("tag", help="set (or --rm) tags on an experiment")
    tag.add_argument("id", type=int)
    tag.add_argument("pairs", nargs="*", metavar="KEY=VALUE")
    tag.add_argument("--rm", action="append", default=[], metavar="KEY", help="remove this tag")
    tag.set_defaults(handler=experiments.cmd_tag)

    note = commands.add_parser("note", help="append a note to an experiment")
    note.add_argument("id", type=int)
    note.add_argument("text")
    note.set_defaults(handler=experiments.cmd_note)

    rm = commands.add_parser("rm", help="delete an experiment and its files (never a running one)")
    rm.add_argument("id", type=int)
    rm.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rm.add_argument("--keep-files", action="store_true", help="delete only its registry rows, not its folder")
    rm.set_defaults(handler=experiments.cmd_rm)

    rerun = commands.add_parser("rerun", help="run an experiment's recorded spec again, as a new experiment")
    rerun.add_argument("id", type=int)
    rerun.add_argument("--address", help="Ray cluster address")
    rerun.add_argument("--verbose", action="store_true", help="Tune's progress tables and the workers' logs")
    rerun.add_argument("--trust-spec", action="store_true",
                       help="use the storage and MLflow server the recorded spec names (it may be another user's)")
    rerun.set_defaults(handler=running.cmd_rerun)

    importance = commands.add_parser("importance", help="hyperparameter importance over an experiment's trials (fANOVA)")
    importance.add_argument("id", type=int)
    importance.set_defaults(handler=experiments.cmd_importance)

    report = commands.add_parser("report", help="an HTML page about an experiment (several ids: compared on one metric)")
    report.add_argument("ids", type=int, nargs="+", metavar="ID")
    report.add_argument("--out", default="", help="the HTML file (default report-ID.html or compare-ID-ID.html); "
                        "plotly.min.js is written once beside it")
    report.add_argument("--metric", help="with several ids: the metric to compare (default: the first one's)")
    report.set_defaults(handler=experiments.cmd_report)

    from lab.ui.server import add_command as add_ui

    add_ui(commands)
