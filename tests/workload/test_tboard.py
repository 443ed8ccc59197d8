"""The trial's TensorBoard writer: what flush() promises is on disk when it returns (Tune syncs the file to
remote storage right after a step; tensorboardX's queued writer left the step's scalars out of S3)."""
from __future__ import annotations

import os

from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from lab.workload.tboard import SummaryWriter


def events_on_disk(folder) -> list[tuple[int, list[str]]]:
    (name,) = [n for n in os.listdir(folder) if ".tfevents." in n]
    return [(e.step, [v.tag for v in e.summary.value]) for e in EventFileLoader(os.path.join(folder, name)).Load()
            if e.summary.value]


def test_every_event_written_before_flush_is_in_the_file_when_it_returns(tmp_path):
    writer = SummaryWriter(str(tmp_path / "run"))
    writer.hparams({"lr": 0.1, "layers": [2, 3]}, trial_id="t1")
    assert events_on_disk(tmp_path / "run") == [(0, ["_hparams_/session_start_info"])]  # flushed by hparams()
    for step in range(1, 51):  # many at once: more than a queue of 10 would hold
        writer.scalars({"train/loss": 1.0 / step, "eval/return": float(step), "not_a_number": "x"}, step=step)
        writer.flush()
        assert events_on_disk(tmp_path / "run")[-1] == (step, ["train/loss", "eval/return"])
    writer.close()
    writer.close()  # twice: harmless
    writer.scalars({"train/loss": 0.0}, step=99)  # after close: dropped, no error
    assert len(events_on_disk(tmp_path / "run")) == 51
