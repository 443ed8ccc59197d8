"""How the leaves plug into the core: Python entry points, read from the installed package metadata.

The core (`lab/`) imports no workload package. Each package declares what it adds in its
`pyproject.toml`, as pytest plugins and Gymnasium environments do:

    [project.entry-points."agent_lab.workloads"]   # workload name -> "module:Class"
    dqn = "agents.dqn:DQN"
    [project.entry-points."agent_lab.presets"]     # any name -> a package with a presets/ folder of YAML
    agents = "agents"
    [project.entry-points."agent_lab.commands"]    # `lab NAME` -> "module:function(subparsers)"
    eval = "agents.commands:add_eval"
    [project.entry-points."agent_lab.loaders"]     # package -> its loader of exports (`lab.load`)
    agents = "agents.saved_policy:load_policy"

Reading the metadata imports nothing; an entry is loaded (its module imported) only when it is used.
After editing those tables, reinstall the package (`pip install --no-deps -e .`).
"""
from __future__ import annotations

from importlib import metadata

WORKLOADS = "agent_lab.workloads"
PRESETS = "agent_lab.presets"
COMMANDS = "agent_lab.commands"
LOADERS = "agent_lab.loaders"  # package -> "module:function(path)": reads what its workloads' export() writes


def entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    """The entry points of `group`, by name (the first one wins when two installs declare a name)."""
    found: dict[str, metadata.EntryPoint] = {}
    for entry in metadata.entry_points(group=group):
        found.setdefault(entry.name, entry)
    return found
