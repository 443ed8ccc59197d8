"""TensorBoard event files without TensorFlow: scalars, images, text and the HParams records.

Uses tensorboardX's pure-Python event writer with TensorBoard's protobufs, so a scikit-learn trial never
imports TensorFlow just to log a curve.
"""
from __future__ import annotations

import io
import math
import os
import time
import uuid
from typing import Any

import numpy as np
from tensorboard.compat.proto import (
    event_pb2,
    summary_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)
from tensorboardX.event_file_writer import (
    EventsWriter,  # pure Python (TensorBoard's own calls tf.io.gfile)
)
from tensorboardX.proto import event_pb2 as tbx_event_pb2


class SummaryWriter:
    """Writes one TensorBoard run (one events file) under `logdir`, synchronously: once `flush()` returns,
    every event written before it is in the file. (tensorboardX's EventFileWriter queues events for a thread,
    and its flush() does not wait for that queue: Tune then synced the file to S3 at a checkpoint without the
    iteration's scalars, and the last iteration's never reached S3.)"""

    def __init__(self, logdir: str):
        self.logdir = logdir
        os.makedirs(logdir, exist_ok=True)
        # a unique suffix: the driver and the trial write into the same folder, often in the same second
        self._writer = EventsWriter(os.path.join(logdir, "events"), f".{os.getpid()}.{uuid.uuid4().hex[:8]}")
        self._closed = False

    def _add(self, event: event_pb2.Event) -> None:
        # the same wire format; tensorboardX's writer only accepts its own copy of the class
        if not self._closed:
            self._writer.write_event(tbx_event_pb2.Event.FromString(event.SerializeToString()))

    def _write(self, summary: summary_pb2.Summary, step: int) -> None:
        self._add(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def scalars(self, metrics: dict[str, Any], step: int) -> None:
        """Write every finite number of `metrics` as a scalar under its own (namespaced) tag."""
        values = [
            summary_pb2.Summary.Value(tag=tag, simple_value=float(value))
            for tag, value in metrics.items()
            if _is_number(value) and math.isfinite(float(value))
        ]
        if values:
            self._write(summary_pb2.Summary(value=values), step)

    def image(self, tag: str, array: np.ndarray, step: int) -> None:
        """An image from an HxW or HxWxC array (uint8, or floats in [0, 1])."""
        from PIL import Image

        array = np.asarray(array)
        if array.dtype != np.uint8:
            array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        self._png(tag, buffer.getvalue(), array.shape[0], array.shape[1], 1 if array.ndim == 2 else array.shape[2], step)

    def figure(self, tag: str, figure: Any, step: int) -> None:
        """A matplotlib figure, rendered to PNG and closed."""
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        plt.close(figure)
        from PIL import Image

        width, height = Image.open(io.BytesIO(buffer.getvalue())).size
        self._png(tag, buffer.getvalue(), height, width, 4, step)

    def _png(self, tag: str, png: bytes, height: int, width: int, channels: int, step: int) -> None:
        image = summary_pb2.Summary.Image(
            height=height, width=width, colorspace=channels, encoded_image_string=png
        )
        self._write(summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, image=image)]), step)

    def text(self, tag: str, text: str, step: int) -> None:
        """Markdown text, shown in TensorBoard's Text dashboard."""
        tensor = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING,
            string_val=[text.encode("utf-8")],
            tensor_shape=tensor_shape_pb2.TensorShapeProto(),
        )
        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text")
        )
        value = summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=metadata)
        self._write(summary_pb2.Summary(value=[value]), step)

    def hparams(self, config: dict[str, Any], trial_id: str) -> None:
        """This run's hyperparameters, for the HParams dashboard (one session per trial)."""
        # imported here: it pulls TensorBoard's TensorFlow stub (and boto3), ~0.8 s a driver needs not pay
        from tensorboard.plugins.hparams import summary_v2 as hparams_summary

        values = {k: _hparam_value(v) for k, v in config.items()}
        self._add(event_pb2.Event(wall_time=time.time(), summary=hparams_summary.hparams_pb(values, trial_id=trial_id)))
        self.flush()

    def flush(self) -> None:
        if not self._closed:
            self._writer.flush()

    def close(self) -> None:
        if not self._closed:
            self._writer.close()
            self._closed = True


class MediaLogger:
    """What a workload gets as `context.logger`: images, figures and text at the current iteration."""

    def __init__(self, writer: SummaryWriter):
        self._writer = writer
        self.step = 0

    def image(self, tag: str, array: np.ndarray) -> None:
        self._writer.image(tag, array, self.step)

    def figure(self, tag: str, figure: Any) -> None:
        self._writer.figure(tag, figure, self.step)

    def text(self, tag: str, text: str) -> None:
        self._writer.text(tag, text, self.step)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _hparam_value(value: Any) -> bool | float | str:
    """HParams accept only bool, number or string: lists and None become strings."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if _is_number(value):
        return float(value)
    return str(value)
