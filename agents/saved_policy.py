"""An exported policy, written and read here: a TF-Agents PolicySaver SavedModel with `lab_policy.json` beside it.

    path = export_policy(workload.eval_policy, "out/", workload.train_step, "CartPole-v1", "DQN")
    policy = load_policy("out/")          # refused unless this lab exported it (or trust=True): it is code

`lab export` writes one (agents/_common.AgentWorkload.export), `lab eval PATH` and `lab.load` read it
(agents/evaluate.py). TensorFlow and TF-Agents are imported inside the functions.
"""
from __future__ import annotations

import json
import os

from lab.errors import LabError
from lab.results.provenance import private_copy

POLICY_META = "lab_policy.json"  # written beside a PolicySaver export: which env and agent it belongs to


def export_policy(policy, out_dir: str, train_step, env_id: str, agent: str, max_episode_steps: int = 0) -> str:
    """Save the greedy `policy` with TF-Agents' PolicySaver into `<out_dir>/policy`; return that folder.

    A `lab_policy.json` beside the SavedModel names the env id and agent, so `lab eval PATH` can rebuild
    the environment (and `max_episode_steps`, the time limit the agent was trained and evaluated with,
    0: the env's own). Loading in a fresh process needs `import tensorflow_probability` first (docs/stack.md).
    """
    from tf_agents.policies import policy_saver

    path = os.path.join(out_dir, "policy")
    policy_saver.PolicySaver(policy, train_step=train_step).save(path)
    with open(os.path.join(path, POLICY_META), "w") as handle:
        json.dump({"env_id": env_id, "agent": agent, "train_step": int(train_step.numpy()),
                   "max_episode_steps": int(max_episode_steps)}, handle)
    return path


def policy_folder(path: str) -> str:
    """The PolicySaver folder at `path` (or at `path/policy`, the layout `lab export --out` writes)."""
    if not os.path.exists(path):
        raise LabError(f"no such experiment id or policy folder: '{path}'")
    if not os.path.isdir(path):
        raise LabError(f"'{path}' is a file: lab eval needs a policy folder (written by `lab export`) or an id")
    for candidate in (path, os.path.join(path, "policy")):
        if os.path.isfile(os.path.join(candidate, "saved_model.pb")):
            for name in (POLICY_META, "policy_specs.pbtxt"):
                if not os.path.isfile(os.path.join(candidate, name)):
                    raise LabError(f"'{candidate}' is a SavedModel without {name}, not a policy from `lab export`")
            return candidate
    raise LabError(f"'{path}' is not a saved policy (no saved_model.pb): export one with `lab export ID --out DIR`")


def load_policy(path: str, trust: bool = False):
    """The TF-Agents policy `lab export` wrote (its folder, or the folder above it), loaded with
    `tf.saved_model.load`; one this lab did not export is refused unless `trust` (it is code)."""
    folder = policy_folder(path)
    with private_copy(folder, "policy", trust) as copy:  # what was checked is what is loaded
        from lab import settings

        settings.apply_worker_env()
        import tensorflow as tf
        import tensorflow_probability  # noqa: F401  (registers the TFP specs the saved policy refers to)

        return tf.saved_model.load(copy)
