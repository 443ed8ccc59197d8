"""Files and specs from others: they never run code, write outside their folder, or take a secret."""
from __future__ import annotations

import io
import json
import zipfile

import pytest

from lab.errors import LabError


# ------------------------------------------------------------------ crafted .skops files (finding 1)
def _node(value) -> dict:
    """The skops tree of a plain value (as skops itself writes it)."""
    import skops.io

    with zipfile.ZipFile(io.BytesIO(skops.io.dumps(value))) as archive:
        tree = json.loads(archive.read("schema.json"))
    for key in ("protocol", "_skops_version"):
        tree.pop(key, None)
    return tree


def crafted_skops(path, module: str, name: str, args: tuple) -> None:
    """A .skops file whose root node calls `module.name(*args)` when built (skops' LossNode calls its
    named constructor with the file's arguments: harmless only while that name is not trusted)."""
    import skops

    root = {"__class__": name, "__module__": module, "__loader__": "LossNode",
            "__reduce__": {"args": _node(args)}, "content": _node({}), "__id__": 1,
            "protocol": 2, "_skops_version": skops.__version__}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", json.dumps(root))


def payloads(marker):
    code = f"open({str(marker)!r}, 'w').write('ran')"
    return [("numpy.testing", "runstring", (code, {})),
            ("builtins", "eval", (code,)),
            ("os", "system", (f"touch {marker}",))]


@pytest.mark.parametrize("which", range(3))
def test_a_crafted_skops_file_is_refused_before_anything_runs(tmp_path, which):
    from classical.cross_validation import load_pipeline

    marker = tmp_path / "pwned"
    module, name, args = payloads(marker)[which]
    path = tmp_path / "pipeline.skops"
    crafted_skops(path, module, name, args)
    try:
        load_pipeline(str(path))
        error = None
    except Exception as exc:  # noqa: BLE001 - checked below, after the marker
        error = exc
    assert not marker.exists(), f"loading {module}.{name} ran code"
    assert isinstance(error, LabError) and "\n" not in str(error)
    assert f"names types the lab does not trust (a skops file may run code): {module}.{name}" in str(error)
    with pytest.raises(LabError, match="does not trust"):  # the export folder is accepted as well
        load_pipeline(str(tmp_path))
    assert not marker.exists()


@pytest.mark.slow
def test_the_trust_list_is_exactly_what_the_catalogue_needs():
    """Derived from the catalogue (every model, reducer, preprocessing, clustering and anomaly pipeline)."""
    from classical._skops_trust import TRUSTED_TYPES, catalogue_types

    assert catalogue_types() == set(TRUSTED_TYPES)
    assert not any(t.endswith(".") or t in ("numpy", "sklearn", "scipy") for t in TRUSTED_TYPES)
