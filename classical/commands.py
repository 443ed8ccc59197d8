"""`lab baselines`: the classical part's command (registered as an `agent_lab.commands` entry point)."""
from __future__ import annotations

import argparse


def add_baselines(commands) -> None:
    """Add `lab baselines` to the `lab` parser's subcommands."""
    baselines = commands.add_parser("baselines", help="rank a standard set of scikit-learn models on a data set")
    baselines.add_argument("dataset", help="a bundled data set (digits, iris, wine, breast_cancer, diabetes, ...) or FILE.csv")
    baselines.add_argument("--target", default="", help="the label column of a CSV file")
    baselines.add_argument("--models", help="comma-separated models (default: the standard set for the task)")
    baselines.add_argument("--cv", type=int, default=5, help="folds of the cross-validation (default 5)")
    baselines.add_argument("--subset", type=int, default=0, help="use only this many rows")
    baselines.add_argument("--address", help="Ray cluster address")
    baselines.add_argument("--verbose", action="store_true", help="Tune's progress tables and the libraries' log output")
    baselines.set_defaults(handler=cmd_baselines)


def cmd_baselines(args: argparse.Namespace) -> int:
    from classical.baselines import baseline_spec
    from lab import spec as specs
    from lab.cli.output import exit_code, fmt, print_table
    from lab.errors import DataError, SpecError
    from lab.registry import Registry, views
    from lab.execution import runner

    try:
        spec = baseline_spec(args.dataset, target=args.target, cv_folds=args.cv, subset=args.subset,
                             models=args.models.split(",") if args.models else None)
    except DataError as exc:
        raise SpecError(str(exc)) from None
    spec = specs.runnable(spec.to_dict(), specs.Source.command("baselines"))  # the one way in of every spec
    registry = Registry()
    outcome = runner.run(spec, address=args.address, registry=registry, verbose=args.verbose)
    metric, test = spec.metric, spec.metric.replace("cv/", "test/")
    shown, _ = views.natural(metric, 0.0)  # RMSE positive, under its plain name
    rows = []
    for rank, t in enumerate(sorted(registry.trials(outcome.experiment_id),
                                    key=lambda t: -(t["best_metric"] if t["best_metric"] is not None else float("inf"))), 1):
        result = t["last_result"]
        rows.append([rank, t["config"].get("model"), fmt(views.natural(metric, result.get(metric))[1]),
                     fmt(result.get(metric + "_std")), fmt(views.natural(test, result.get(test))[1]),
                     fmt(result.get("charts/fit_seconds")), t["status"] if t["status"] != "TERMINATED" else ""])
    print(f"\nexperiment {outcome.experiment_id}: {spec.description}, ranked by {shown} ({args.cv}-fold CV)")
    print_table(["RANK", "MODEL", shown.upper(), "STD", "TEST", "FIT S", "STATUS"], rows)  # empty columns left out
    return exit_code([outcome])
