"""`lab run`, `lab resume`, `lab rerun`: the commands that run experiments."""
from __future__ import annotations

import argparse

from lab.cli.output import exit_code, print_outcomes


def cmd_run(args: argparse.Namespace) -> int:
    from lab import spec as specs

    extra = [f"{key}={value}" for key, value in (("storage", args.storage), ("mlflow", args.mlflow)) if value]
    experiment_specs = specs.load(args.source, [*args.overrides, *extra], trust_spec=args.trust_spec)
    if args.dry_run:
        import yaml

        for spec in experiment_specs:
            print(yaml.safe_dump(spec.to_dict(), sort_keys=False))
        return 0
    from lab.registry import Registry
    from lab.execution import runner

    registry = Registry()  # checked by runner.run, once per experiment
    outcomes = []
    for spec in experiment_specs:
        outcomes.append(runner.run(spec, address=args.address, registry=registry, verbose=args.verbose))
    print_outcomes(outcomes)
    return exit_code(outcomes)


def cmd_resume(args: argparse.Namespace) -> int:
    from lab.execution import runner

    outcome = runner.resume(args.id, address=args.address, verbose=args.verbose, trust=args.trust)
    print_outcomes([outcome])
    return exit_code([outcome])


def cmd_rerun(args: argparse.Namespace) -> int:
    from lab.api import recorded_spec
    from lab.registry import Registry
    from lab.execution import runner

    spec = recorded_spec(args.id, args.trust_spec)
    outcome = runner.run(spec, address=args.address, registry=Registry(), verbose=args.verbose)
    print(f"rerun of experiment {args.id}:")
    print_outcomes([outcome])
    return exit_code([outcome])
