"""Device selection for the Keras workloads: a tf.distribute strategy and the mixed-precision policy.

    strategy = distribution_strategy(requested=c.devices, num_gpus=context.num_gpus)
    with strategy.scope(), precision_policy(c.mixed_precision):
        model = build(...)          # variables mirrored on every replica; layers built in mixed_float16
        model.compile(...)
    global_batch = c.batch_size * strategy.num_replicas_in_sync

One replica gives TensorFlow's default strategy (no change at all). More than one GPU in the trial
(TrialContext.num_gpus > 1), or a `devices` param > 1, gives a MirroredStrategy. On a machine with no
GPU, `devices: N` splits the CPU into N logical devices (for testing the distributed path); that works
only before TensorFlow initialises its devices, i.e. as the first TensorFlow work of the process.
"""
from __future__ import annotations

import contextlib
import warnings

from deep.backend import load_tf
from lab.errors import LabError


def replica_devices(requested: int = 0, num_gpus: float = 0.0) -> list[str]:
    """The device names to mirror the model on; [] means one replica (no strategy).

    `requested` > 0 asks for that many replicas; 0 means one per GPU of the trial (`num_gpus`).
    """
    tf = load_tf()
    gpus = tf.config.list_physical_devices("GPU")
    wanted = requested if requested > 0 else max(1, int(num_gpus))
    if requested <= 0 and wanted > 1 and not gpus:
        # e.g. Ray's fake GPUs in scheduling tests: TensorFlow sees none and runs on the CPU, as one replica
        warnings.warn(f"the trial has {num_gpus:g} GPUs but TensorFlow sees none: training on one CPU replica",
                      stacklevel=2)
        return []
    if wanted <= 1:
        return []
    if gpus:
        if len(gpus) < wanted:
            raise LabError(f"devices={wanted} but TensorFlow sees only {len(gpus)} GPU(s)")
        return [f"/gpu:{i}" for i in range(wanted)]
    return _logical_cpus(tf, wanted)


def _logical_cpus(tf, n: int) -> list[str]:
    """n logical CPU devices, made now if TensorFlow has not initialised its devices yet."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    if tf.config.get_logical_device_configuration(cpu) is None:
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
        except RuntimeError:  # devices already initialised in this process
            pass
    logical = tf.config.list_logical_devices("CPU")
    if len(logical) < n:
        raise LabError(
            f"devices={n} on a CPU needs {n} logical CPU devices, but TensorFlow was initialised with "
            f"{len(logical)} in this process (split the CPU before any other TensorFlow work)"
        )
    return [device.name for device in logical[:n]]


def distribution_strategy(requested: int = 0, num_gpus: float = 0.0):
    """MirroredStrategy over `replica_devices(...)`, or TensorFlow's default (one-device) strategy."""
    tf = load_tf()
    devices = replica_devices(requested, num_gpus)
    if not devices:
        return tf.distribute.get_strategy()
    cross_device_ops = None if devices[0].lower().startswith("/gpu") else tf.distribute.ReductionToOneDevice()
    return tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=cross_device_ops)


def check_mixed_precision(enabled: bool) -> None:
    """Refuse mixed precision where no GPU is visible: on a CPU mixed_float16 is slower than float32
    and some ops have no float16 kernel, so a run that asked for it would be slow or fail mid-way."""
    if enabled and not load_tf().config.list_physical_devices("GPU"):
        raise LabError("mixed_precision needs a GPU (on a CPU mixed_float16 is slower or unsupported): "
                       "set mixed_precision=false or give the trial a GPU (resources: {gpu: 1})")


@contextlib.contextmanager
def precision_policy(enabled: bool):
    """Build layers under the mixed_float16 policy (float16 compute, float32 variables) when enabled.

    The global policy is restored on exit: built layers keep theirs, and a reused actor's next trial
    starts from float32. Keep the output layer in float32 (`dtype="float32"`) for a stable softmax/loss;
    Keras' compile() then wraps the optimizer in a LossScaleOptimizer.
    """
    if not enabled:
        yield
        return
    check_mixed_precision(enabled)
    mixed_precision = load_tf().keras.mixed_precision
    previous = mixed_precision.global_policy()
    mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        mixed_precision.set_global_policy(previous)
