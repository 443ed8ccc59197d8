"""An exported policy, written and read here: a TF-Agents PolicySaver SavedModel with `lab_policy.json` beside it.

    path = export_policy(workload.eval_policy, "out/", workload.train_step, "CartPole-v1", "DQN")
    policy = load_policy("out/")          # refused unless this lab exported it (or trust=True): it is code
    action, _ = policy.predict(observation)   # SB3's predict; the SavedModel's own methods pass through

`lab export` writes one (agents/_common.AgentWorkload.export), `lab eval PATH` and `lab.load` read it
(agents/evaluate.py). TensorFlow and TF-Agents are imported inside the functions.
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

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
    meta = {"env_id": env_id, "agent": agent, "train_step": int(train_step.numpy()),
            "max_episode_steps": int(max_episode_steps)}
    with open(os.path.join(path, POLICY_META), "w") as handle:
        json.dump(meta, handle)
    write_model_json(out_dir, policy, meta)  # beside the policy folder: schema, loading without the lab
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
    `tf.saved_model.load`, as a SavedPolicy (SB3's `predict`, below); one this lab did not export is refused
    unless `trust` (it is code)."""
    folder = policy_folder(path)
    with private_copy(folder, "policy", trust) as copy:  # what was checked is what is loaded
        from lab import settings

        settings.apply_worker_env()
        import tensorflow as tf
        import tensorflow_probability  # noqa: F401  (registers the TFP specs the saved policy refers to)

        from tf_agents.specs import tensor_spec

        specs = tensor_spec.from_pbtxt_file(os.path.join(copy, "policy_specs.pbtxt"))["collect_data_spec"]
        return SavedPolicy(tf.saved_model.load(copy), specs.observation)


class SavedPolicy:
    """A loaded PolicySaver SavedModel (its attributes pass through) with SB3's `predict`."""

    def __init__(self, saved, observation_spec):
        self.saved = saved
        self.observation_shape = tuple(observation_spec.shape.as_list())
        self.observation_dtype = observation_spec.dtype.as_numpy_dtype

    def __getattr__(self, name: str) -> Any:  # action, get_initial_state, get_train_step, ...
        return getattr(self.__dict__["saved"], name) if "saved" in self.__dict__ else super().__getattribute__(name)

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = True):
        """(action, next state) for one observation, or (actions, next state) for a batch of them, as SB3.

        `state` is the policy state of the previous call (None: the initial one); `episode_start`, one
        bool per observation, marks the first step of an episode (a recurrent policy resets there).
        """
        import tensorflow as tf
        from tf_agents.trajectories import time_step as ts

        if not deterministic:
            raise LabError("the exported policy is the greedy one: predict(..., deterministic=True)")
        observations = np.asarray(observation, dtype=self.observation_dtype)
        single = observations.shape == self.observation_shape
        if single:
            observations = observations[None]
        if observations.shape[1:] != self.observation_shape:
            raise LabError(f"the policy observes {list(self.observation_shape)} (or a batch of them), "
                           f"got an array of shape {list(np.shape(observation))}")
        n = len(observations)
        first = np.ones(n, bool) if state is None or episode_start is None else np.asarray(episode_start, bool)
        step = ts.TimeStep(step_type=tf.constant(np.where(first, ts.StepType.FIRST, ts.StepType.MID), tf.int32),
                           reward=tf.zeros([n], tf.float32), discount=tf.ones([n], tf.float32),
                           observation=tf.constant(observations))
        action_step = self.saved.action(step, self.saved.get_initial_state(batch_size=n) if state is None else state)
        actions = tf.nest.map_structure(lambda a: a.numpy(), action_step.action)
        return (actions[0] if single else actions), action_step.state


PLAIN_TF_RECIPE = """import json
import numpy as np
import tensorflow as tf
import tensorflow_probability  # noqa: F401 - registers the TFP type specs the policy refers to
about = json.load(open("model.json"))
policy = tf.saved_model.load(about["file"])
observation = about["input_schema"]["observation"]
batch = np.zeros([1, *observation["shape"]], observation["dtype"])  # one observation, batched
action = policy.signatures["action"](
    **{"0/step_type": tf.constant([0]), "0/reward": tf.constant([0.0]), "0/discount": tf.constant([1.0]),
       "0/observation": tf.constant(batch)})["action"].numpy()[0]"""


def spec_schema(spec) -> dict[str, Any]:
    """A tensor spec as JSON: shape, dtype and, for a bounded one, its minimum and maximum."""
    schema: dict[str, Any] = {"shape": spec.shape.as_list(), "dtype": spec.dtype.name}
    if hasattr(spec, "minimum"):
        schema.update(minimum=np.asarray(spec.minimum).tolist(), maximum=np.asarray(spec.maximum).tolist())
    return schema


def write_model_json(out_dir: str, policy, meta: dict[str, Any]) -> None:
    """`<out_dir>/model.json`: the policy's observation and action specs and how to load it with TensorFlow
    alone (README, "Using an exported model without the lab")."""
    import json
    import os
    from importlib import metadata

    import tensorflow as tf

    observation, action = policy.time_step_spec.observation, policy.action_spec
    if len(tf.nest.flatten(observation)) != 1 or len(tf.nest.flatten(action)) != 1:
        schema = {"observation": tf.nest.map_structure(spec_schema, observation),
                  "action": tf.nest.map_structure(spec_schema, action)}
    else:
        schema = {"observation": spec_schema(observation), "action": spec_schema(action)}
    requires = {}
    for name in ("tensorflow", "tensorflow-probability", "numpy"):
        try:
            requires[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    about = {**meta, "format": "tf_saved_model (TF-Agents PolicySaver, greedy policy)", "file": "policy",
             "input_schema": schema,
             "load": {"requires": requires, "signature": "action: 0/step_type, 0/reward, 0/discount, 0/observation "
                                                          "(batched) -> action", "python": PLAIN_TF_RECIPE},
             "load_with_lab": "agents.evaluate.load_policy (lab.load, lab eval)"}
    with open(os.path.join(out_dir, "model.json"), "w") as handle:
        json.dump(about, handle, indent=2)
