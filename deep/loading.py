"""Loading what `lab export` wrote from Keras workloads: `.keras` files, in safe mode, trusted knowingly.

    model = load_keras_model("out/")                  # the folder `lab export ID --out out/` wrote
    model = load_keras_model("theirs.keras", trust=True)   # only from someone you trust: it is code
"""
from __future__ import annotations

import os

from lab.errors import LabError
from lab.results.provenance import private_copy


def load_keras_model(path: str, trust: bool = False):
    """A Keras model exported by `lab export` (a `.keras` file, or the folder holding one), in safe mode.

    A `.keras` file is code (it names modules that tf_keras imports, even in safe mode): one that this lab
    did not export is refused unless `trust` (lab/results/provenance.py).
    """
    if os.path.isdir(path):
        found = sorted(name for name in os.listdir(path) if name.endswith(".keras"))
        if len(found) != 1:
            raise LabError(f"{path} holds {len(found)} .keras files: name the one to load")
        path = os.path.join(path, found[0])
    if not os.path.isfile(path) or not path.endswith(".keras"):
        raise LabError(f"no .keras file at {path}")
    with private_copy(path, "Keras model", trust) as copy:  # what was checked is what is loaded
        from lab import settings

        settings.apply_worker_env()
        import tf_keras

        from deep.layers import custom_objects

        return tf_keras.models.load_model(copy, custom_objects=custom_objects(), safe_mode=True)
