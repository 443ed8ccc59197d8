"""`import lab`'s public names stay what they are once every module of the package has been imported."""
from __future__ import annotations

import importlib
import pkgutil
import types

import lab


def test_no_sub_package_shadows_a_public_name():
    """A sub-package named like a public function (`lab/run/` once) replaced `lab.run` on first import."""
    for module in pkgutil.walk_packages(lab.__path__, "lab."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    for name in lab.__all__:
        value = getattr(lab, name)
        assert not isinstance(value, types.ModuleType), f"lab.{name} is the module {value.__name__}"
    assert callable(lab.run) and callable(lab.history)
