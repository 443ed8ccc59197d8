"""What a warm Ray worker imports before it accepts work (`lab up`: Ray's `preload_python_modules`).

The heavy imports a trial would otherwise pay in a fresh worker: TensorFlow (Keras 2 through tf_keras),
TF-Agents' agents, networks, environments and replay buffers, scikit-learn, Ray Tune and the lab's
trainable with every registered workload. The worker's environment (TF_USE_LEGACY_KERAS=1, ...) comes
from the raylet's, set by `lab up`. Nothing here creates a TensorFlow context: thread pools and logical
devices are still configured by the trial.
"""
import importlib
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

MODULES = (
    "tensorflow",
    "tf_keras",
    "tensorflow_probability",
    "tf_agents.agents.dqn.dqn_agent",
    "tf_agents.agents.ppo.ppo_clip_agent",
    "tf_agents.agents.categorical_dqn.categorical_dqn_agent",
    "tf_agents.agents.reinforce.reinforce_agent",
    "tf_agents.agents.sac.sac_agent",
    "tf_agents.agents.td3.td3_agent",
    "tf_agents.agents.ddpg.ddpg_agent",
    "tf_agents.networks",
    "tf_agents.environments.suite_gymnasium",
    "tf_agents.environments.tf_py_environment",
    "tf_agents.replay_buffers.tf_uniform_replay_buffer",
    "tf_agents.policies.policy_saver",
    "sklearn.model_selection",
    "sklearn.metrics",
    "sklearn.pipeline",
    "sklearn.compose",
    "sklearn.preprocessing",
    "sklearn.impute",
    "sklearn.decomposition",
    "sklearn.manifold",
    "sklearn.cluster",
    "sklearn.mixture",
    "sklearn.calibration",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.neighbors",
    "sklearn.svm",
    "sklearn.tree",
    "sklearn.datasets",
    "pandas",
    "skops.io",  # checkpoints of scikit-learn pipelines: ~1.5 s of CPU to import
    "matplotlib.pyplot",  # figures of classifiers (the Agg backend: no display in a worker)
    "lab.execution.trainable",
    "lab.workload.tboard",
    "tensorboard.plugins.hparams.summary_v2",
)

for _name in MODULES:
    try:
        importlib.import_module(_name)
    except Exception:  # noqa: BLE001, S110 - a missing optional module only makes that trial import it later
        pass

try:
    from lab import workload as _workloads

    _workloads.discover()
except Exception:  # noqa: BLE001, S110 - discovery is retried by the trial itself
    pass

if os.environ.get("LAB_WARM_MARKS"):  # lab.infra.warm's keeper counts the workers whose imports are done
    try:
        os.makedirs(os.environ["LAB_WARM_MARKS"], exist_ok=True)
        open(os.path.join(os.environ["LAB_WARM_MARKS"], str(os.getpid())), "w").close()
    except OSError:
        pass
