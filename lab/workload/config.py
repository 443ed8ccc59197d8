"""Workload configs from plain dicts: `build_dataclass` checks names and types (`coerce`), `suggest` names
the close match of a typo."""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any, Literal

from lab.errors import SpecError, printable, quoted


def suggest(word: str, choices, limit: int = 30) -> str:
    """' (did you mean ...?)' for close matches in any spelling (see `close_names`), else a short list of
    what is known (nothing when there are more than `limit`)."""
    choices = sorted(choices)
    close = close_names(word, choices)
    if close:
        return f" (did you mean {', '.join(repr(c) for c in close)}?)"
    return f" (known: {', '.join(choices)})" if len(choices) <= limit else ""


def close_names(word: str, choices, n: int = 3) -> list[str]:
    """Names of `choices` that `word` may mean, best first, across the ways a name is spelt:
    the short name of a `step__param` (`max_depth` -> `randomforestclassifier__max_depth`), initials
    (`lr` -> `learning_rate`), a different case or separator, and plain typos (difflib)."""
    choices = list(choices)
    key = _normal(word)
    found: list[str] = []

    def add(names) -> None:
        found.extend(name for name in names if name not in found)

    add(c for c in choices if _normal(c) == key)
    add(c for c in choices if _normal(_short(c)) == key)
    add(c for c in choices if _normal(c).endswith("_" + key) or _normal(_short(c)).startswith(key + "_"))
    add(c for c in choices if len(key) >= 2 and _initials(_short(c)) == key)
    add(difflib.get_close_matches(word, choices, n=n, cutoff=0.6))
    shorts: dict[str, list[str]] = {}
    for c in choices:
        shorts.setdefault(_normal(_short(c)), []).append(c)
    for short in difflib.get_close_matches(key, list(shorts), n=n, cutoff=0.6):
        add(shorts[short])
    if not found:
        add(difflib.get_close_matches(word, choices, n=n, cutoff=0.5))
    return found[:n]


def _short(name: str) -> str:
    return name.rsplit("__", 1)[-1].rsplit(".", 1)[-1]


def _normal(name: str) -> str:
    return name.lower().replace("-", "_").replace(" ", "_")


def _initials(name: str) -> str:
    return "".join(part[0] for part in _normal(name).split("_") if part)


# ---------------------------------------------------------------- dataclass validation
def build_dataclass(cls: type, params: dict[str, Any], owner: str) -> Any:
    """Build dataclass `cls` from `params`, checking names and types; SpecError with every problem, one a line."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    values, problems = {}, []
    for key, value in params.items():
        if not isinstance(key, str):  # YAML keys may be numbers, lists, null
            problems.append(f"parameter names of {owner} must be words, got {quoted(key)}")
            continue
        if key not in fields:
            hint = suggest(key, fields, limit=12) or " (`lab params WORKLOAD` lists them)"
            problems.append(f"unknown parameter '{printable(key)}' for {owner}{hint}")
            continue
        try:
            values[key] = coerce(value, hints[key], f"parameter '{key}' of {owner}")
        except SpecError as exc:
            problems.append(str(exc))
    problems += [
        f"missing parameter '{n}' for {owner}" for n, f in fields.items()
        if n not in params and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if problems:
        raise SpecError("\n".join(problems))
    config = cls(**values)
    check = getattr(config, "check", None)
    if check is not None:
        try:
            check()
        except (ValueError, TypeError) as exc:
            raise SpecError(f"{owner}: {exc}") from None
    return config


def coerce(value: Any, hint: Any, what: str) -> Any:
    """Check `value` against a type hint, converting the harmless cases (int->float, '1e-3'->float)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(value, option, what)
            except SpecError:
                pass
        raise SpecError(f"{what} must be {_hint_name(hint)}, got {quoted(value)}")
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise SpecError(f"{what} must be one of {', '.join(map(repr, allowed))}, got {quoted(value)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise SpecError(f"{what} must be a list, got {quoted(value)}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return tuple(coerce(v, item, what) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise SpecError(f"{what} must be a mapping, got {quoted(value)}")
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(float(value)):
                raise SpecError(f"{what} must be a finite number, got {quoted(value)}")
            return float(value)
        if isinstance(value, str):
            try:
                return coerce(float(value), float, what)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    else:
        return value
    raise SpecError(f"{what} must be {_hint_name(hint)}, got {quoted(value)}")


def _hint_name(hint: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint in names:
        return names[hint]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_hint_name(h) for h in typing.get_args(hint) if h is not type(None))
    return str(hint)
