"""What a workload takes: every `Config` field with its type, default and one-line meaning, read from the
source (the comment after the field, or a docstring under it) without running the workload's imports.

`lab params WORKLOAD|PRESET` prints it, with the extra names a workload accepts (a scikit-learn pipeline's
`step__param` names, by step).
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import textwrap
import tokenize
from typing import Any


@dataclasses.dataclass
class Param:
    name: str
    type: str
    default: Any
    help: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its one-line meaning, for a dataclass and its bases (the nearest definition wins)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        docs.update(_docs_in_source(source))
    return docs


def _docs_in_source(source: str) -> dict[str, str]:
    """Comments after each annotated field of the (first) class in `source`, else the string under it."""
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    body = ast.parse(source).body[0].body
    docs = {}
    for i, node in enumerate(body):
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        text = comments.get(node.end_lineno, "")
        following = body[i + 1] if i + 1 < len(body) else None
        if not text and isinstance(following, ast.Expr) and isinstance(getattr(following, "value", None), ast.Constant) \
                and isinstance(following.value.value, str):
            text = following.value.value.strip().splitlines()[0]
        docs[node.target.id] = text
    return docs


def config_params(cls: type) -> list[Param]:
    """Every init field of the dataclass `cls` as a Param (type as written in the source)."""
    docs = field_docs(cls)
    params = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        params.append(Param(f.name, kind, _plain(default), docs.get(f.name, "")))
    return params


def describe(workload: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON shape of `lab params --json`: the workload, its parameters, and its extra searchable names."""
    from lab.workload import registry as workloads

    cls = workloads.get(workload)
    params = params or {}
    own = [p for p in config_params(cls.Config) if p.name != "estimator_params"]  # internal: the step__param dict
    for p in own:
        if p.name == "seed" and not p.help:
            p.help = "seeds the trial (the spec's `seed`; `seed: per_trial` gives each trial its own)"
        if p.name in params:
            p.default = _plain(params[p.name])
    searchable = {step: {name: _plain(value) for name, value in names.items()}
                  for step, names in cls.searchable_params(params).items()}
    doc = (cls.__doc__ or inspect.getmodule(cls).__doc__ or "").strip()
    return {"workload": workload, "doc": doc.splitlines()[0] if doc else "",
            "parameters": [p.to_dict() for p in own], "searchable": searchable}


def _plain(value: Any) -> Any:
    """A JSON-friendly form of a default (objects by their repr)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return repr(value)
