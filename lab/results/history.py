"""A trial's history: every iteration it reported, read back from Tune's files (local or remote storage)."""
from __future__ import annotations

import json
import os

from lab.errors import LabError

HISTORY_DROP = ("hostname", "node_ip", "pid", "date", "experiment_tag", "trial_id", "done", "checkpoint_dir_name",
                "should_checkpoint")


def history(experiment_id: int, trial: str | None = None):
    """Every reported iteration's metrics (from Tune's progress.csv, else result.json), with a trial_id column."""
    import pandas as pd

    from lab.registry import Registry
    from lab.results.artifacts import trial_record

    registry = Registry()
    registry.experiment(experiment_id)  # UnknownExperiment, as every call that takes an id
    chosen = [trial_record(experiment_id, trial, registry)[1]] if trial else registry.trials(experiment_id)
    frames = []
    for t in chosen:
        frame = read_progress(t.get("logdir"))
        if frame is None or frame.empty:
            continue
        frame = frame[[c for c in frame.columns if not c.startswith("config/") and c not in HISTORY_DROP]]
        frame.insert(0, "trial_id", t["trial_id"])
        frames.append(frame)
    if not frames:
        if trial:
            raise LabError(f"trial {trial} of experiment {experiment_id} has no recorded iterations")
        return pd.DataFrame(columns=["trial_id", "training_iteration"])
    return pd.concat(frames, ignore_index=True)


def read_progress(logdir: str | None):
    """A trial folder's progress.csv (or result.json lines) as a DataFrame; None when neither is there."""
    import io

    import pandas as pd

    if not logdir:
        return None
    for name in ("progress.csv", "result.json"):
        text = _read_text(logdir, name)
        if not text or not text.strip():
            continue
        if name == "progress.csv":
            return pd.read_csv(io.StringIO(text))
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        return pd.json_normalize(rows, sep="/")
    return None


def _read_text(folder: str, name: str) -> str | None:
    """A file of a trial folder the registry names: only under the configured storage root, opened with the
    root's filesystem (a query string in the row never reaches pyarrow, so no credential goes elsewhere)."""
    from lab.infra import storage

    where = storage.recorded(folder, "trial folder")
    if where.is_local:
        path = os.path.join(where.path, name)
        if not os.path.isfile(path):
            return None
        with open(path) as handle:
            return handle.read()
    try:
        with where.filesystem.open_input_stream(f"{where.path.rstrip('/')}/{name}") as stream:
            return stream.read().decode()
    except (OSError, FileNotFoundError):
        return None
