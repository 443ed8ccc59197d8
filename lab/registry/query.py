"""`lab ls --where "..."`: a small filter language over the registry, turned into SQLAlchemy expressions.

    status = completed and workload = sklearn_cv and tag.team = vision and metric.cv/accuracy >= 0.9

Grammar (conditions joined by `and`, no `or` and no parentheses):

    query     := condition ("and" condition)*
    condition := field operator value
    field     := status | workload | name | user | dataset | tag.KEY | metric.NAME | best
    operator  := = | != | < | <= | > | >= | ~          (~ : the text contains the value)
    value     := a number, a bare word (letters, digits, _ - . / :) or a 'quoted' / "quoted" string

`metric.NAME` matches experiments with a trial whose final value of NAME compares true; `best` compares
the trials' best value of the experiment's own metric. Text fields take `=`, `!=` and `~`; metrics take
numbers. Values always reach the database as bound parameters: no text of the query becomes SQL.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lab.errors import LabError

TEXT_FIELDS = ("status", "workload", "name", "user", "dataset")
OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "~")
_TOKEN = re.compile(r"""\s*(?:(?P<op><=|>=|!=|==|=|<|>|~)|'(?P<sq>[^']*)'|"(?P<dq>[^"]*)"|(?P<word>[\w.\-/:+]+))""")


class QueryError(LabError):
    """A malformed `--where` filter."""


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any


def tokenize(text: str) -> list[tuple[str, str]]:
    """[(kind, text)] with kind 'op', 'str' (quoted) or 'word'; QueryError at the first unknown character."""
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError(f"--where: unexpected {text[pos:].strip()[:1]!r} at column {pos + 1} in {text!r}")
        if match.group("op"):
            tokens.append(("op", "=" if match.group("op") == "==" else match.group("op")))
        elif match.group("sq") is not None or match.group("dq") is not None:
            tokens.append(("str", match.group("sq") if match.group("sq") is not None else match.group("dq")))
        else:
            tokens.append(("word", match.group("word")))
        pos = match.end()
    return tokens


def parse(text: str) -> list[Condition]:
    """The conditions of a query; QueryError (one line) when it does not follow the grammar."""
    tokens = tokenize(text)
    if not tokens:
        raise QueryError("--where: empty filter")
    conditions = []
    i = 0
    while True:
        field, op, value = (tokens[i:i + 3] + [(None, None)] * 3)[:3]
        if field[0] is None:
            raise QueryError(f"--where: incomplete condition at the end of {text!r} (expected FIELD OP VALUE)")
        if field[0] != "word":
            raise QueryError(f"--where: expected a field name, got {field[1]!r}")
        if op[0] is None or value[0] is None:
            raise QueryError(f"--where: incomplete condition at the end of {text!r} (expected FIELD OP VALUE)")
        if op[0] != "op":
            raise QueryError(f"--where: expected an operator ({' '.join(OPERATORS)}) after '{field[1]}', got {op[1]!r}")
        if value[0] == "op":
            raise QueryError(f"--where: expected a value after '{field[1]} {op[1]}', got {value[1]!r}")
        (_, field), (_, op), (vkind, value) = field, op, value
        conditions.append(_condition(field, op, value, quoted=vkind == "str"))
        i += 3
        if i == len(tokens):
            return conditions
        if tokens[i][0] != "word" or tokens[i][1].lower() != "and":
            raise QueryError(f"--where: expected 'and' between conditions, got {tokens[i][1]!r}")
        i += 1


def _condition(field: str, op: str, value: str, quoted: bool) -> Condition:
    numeric = field == "best" or field.startswith("metric.")
    if field in TEXT_FIELDS or field.startswith("tag."):
        if op not in ("=", "!=", "~"):
            raise QueryError(f"--where: '{field}' is text: use =, != or ~, not {op}")
        if field.startswith("tag.") and not field[4:]:
            raise QueryError("--where: 'tag.' needs a key, e.g. tag.team = vision")
        return Condition(field, op, value)
    if numeric:
        if field == "metric.":
            raise QueryError("--where: 'metric.' needs a metric name, e.g. metric.cv/accuracy > 0.9")
        if op == "~":
            raise QueryError(f"--where: '{field}' is a number: use = != < <= > >=, not ~")
        try:
            number = float(value)
        except ValueError:
            raise QueryError(f"--where: '{field}' compares with a number, got {value!r}") from None
        if quoted:
            raise QueryError(f"--where: '{field}' compares with a number, got the string {value!r}")
        return Condition(field, op, number)
    known = ", ".join([*TEXT_FIELDS, "tag.KEY", "metric.NAME", "best"])
    raise QueryError(f"--where: unknown field '{field}' (fields: {known})")


def to_sql(conditions: list[Condition], dialect: str) -> list:
    """SQLAlchemy expressions over `experiments` (bound parameters only) for the registry's dialect."""
    import sqlalchemy as sa

    from lab.registry.schema import experiments, tags, trials

    clauses = []
    for c in conditions:
        if c.field in TEXT_FIELDS:
            clauses.append(_compare(experiments.c[c.field], c.op, c.value))
        elif c.field.startswith("tag."):
            match = sa.select(tags.c.experiment_id).where(
                tags.c.experiment_id == experiments.c.id, tags.c.key == c.field[4:],
                _compare(tags.c.value, "=" if c.op == "!=" else c.op, c.value))
            clauses.append(~match.exists() if c.op == "!=" else match.exists())
        else:
            column = trials.c.best_metric if c.field == "best" else _json_number(trials.c.last_result, c.field[7:], dialect)
            clauses.append(sa.select(trials.c.id).where(
                trials.c.experiment_id == experiments.c.id, _compare(column, c.op, c.value)).exists())
    return clauses


def _compare(column, op: str, value: Any):
    if op == "~":
        return column.contains(value, autoescape=True)
    return {"=": column.__eq__, "!=": column.__ne__, "<": column.__lt__, "<=": column.__le__,
            ">": column.__gt__, ">=": column.__ge__}[op](value)


def _json_number(column, key: str, dialect: str):
    """The number at `key` of a JSON text column: json_extract on SQLite, ->> on PostgreSQL (key bound)."""
    import sqlalchemy as sa

    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        return sa.cast(sa.cast(column, JSONB)[key].astext, sa.Float)
    return sa.type_coerce(column, sa.JSON)[key].as_float()
