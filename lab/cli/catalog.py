"""`lab presets` and `lab params`: what can be run, and with which parameters."""
from __future__ import annotations

import argparse
import json
from typing import Any

from lab.cli.output import print_table
from lab.errors import SpecError
from lab.workload.config import suggest


def cmd_presets(args: argparse.Namespace) -> int:
    from lab import spec as specs

    if args.name:  # one preset, resolved as `lab run NAME` would run it
        known = specs.presets()
        if args.name not in known:
            raise SpecError(f"unknown preset '{args.name}'{suggest(args.name, known)}")
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
    from lab import spec as specs
    from lab import workload as workloads
    from lab.workload import params as described

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
                        f"{suggest(args.name, [*known_workloads, *known_presets])}")
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
