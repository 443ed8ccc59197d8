"""Drive one workload through setup / step / save / restore outside Ray (used by tests and by hand)."""
from __future__ import annotations

import tempfile

from lab import settings, workload as workloads
from lab.tboard import MediaLogger, SummaryWriter


def make(name: str, params: dict, trial_dir: str | None = None):
    settings.apply_worker_env()
    cls = workloads.get(name)
    config = cls.make_config(params)
    trial_dir = trial_dir or tempfile.mkdtemp(prefix=f"lab-{name}-")
    writer = SummaryWriter(trial_dir)
    context = workloads.TrialContext(trial_dir=trial_dir, logger=MediaLogger(writer))
    instance = cls(config, context)
    instance.setup()
    close = instance.close

    def close_all() -> None:  # the workload, then its TensorBoard writer
        try:
            close()
        finally:
            writer.close()

    instance.close = close_all
    return instance
