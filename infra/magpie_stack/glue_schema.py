"""Glue (Hive) column types generated from the event models in chalicelib/events.py.

The lake table is typed after the MESSAGE_ANALYSED envelope: EventBridge's envelope fields,
then `detail` as a struct generated field by field from `events.MessageAnalysed`, so a field
added to the model is a column in the next deploy. Python types map as:

  str -> string, int -> bigint, float -> double, bool -> boolean,
  X | None -> X, list[X] -> array<X>, dict[str, X] -> map<string,X>,
  a dataclass -> struct<...> of its fields, Any (or dict[str, Any]) -> string
  (the JSON SerDe hands a nested object to a string column as its JSON text).

The models leave the providers' payloads opaque (`Labels: list[dict[str, Any]]`). Where they
do, and only there, the shape declared for the same path in the lake's table files
(queries/glue/*.json, shared with the local reports) is used when one is given, so that
`labels.name` or `celebrityfaces.name` can be queried. The model still decides every field,
its nesting and whether it is an array.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

# EventBridge's envelope, in the order it writes it (the reference table's first columns).
ENVELOPE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("version", "string"),
    ("id", "string"),
    ("detail-type", "string"),
    ("source", "string"),
    ("account", "string"),
    ("time", "string"),
    ("region", "string"),
    ("resources", "array<string>"),
)

# Firehose writes the lake under these date prefixes (and the local lake uses the same layout).
PARTITION_KEYS: tuple[tuple[str, str], ...] = (
    ("year", "string"),
    ("month", "string"),
    ("day", "string"),
)

_SCALARS = {str: "string", int: "bigint", float: "double", bool: "boolean"}

# A parsed Hive type: "string" | ("array", t) | ("map", k, v) | ("struct", {name: t}).
Shape = Any


def parse_hive(text: str) -> Shape:
    tokens = re.findall(r"[<>,:]|[^<>,:]+", text)
    position = 0

    def parse() -> Shape:
        nonlocal position
        word = tokens[position].strip()
        position += 1
        if position < len(tokens) and tokens[position] == "<":
            position += 1
            if word == "array":
                inner = parse()
                position += 1
                return ("array", inner)
            if word == "map":
                key = parse()
                position += 1
                value = parse()
                position += 1
                return ("map", key, value)
            fields = {}
            while True:
                name = tokens[position].strip()
                position += 2
                fields[name] = parse()
                separator = tokens[position]
                position += 1
                if separator == ">":
                    return ("struct", fields)
        return word

    return parse()


def render(shape: Shape) -> str:
    if isinstance(shape, str):
        return shape
    if shape[0] == "array":
        return f"array<{render(shape[1])}>"
    if shape[0] == "map":
        return f"map<{render(shape[1])},{render(shape[2])}>"
    return "struct<" + ",".join(f"{n}:{render(t)}" for n, t in shape[1].items()) + ">"


def _hint_at(hint: Shape | None, *path: str) -> Shape | None:
    for step in path:
        if hint is None or isinstance(hint, str):
            return None
        if step == "[]":
            hint = hint[1] if hint[0] == "array" else None
        elif hint[0] == "struct":
            hint = {k.lower(): v for k, v in hint[1].items()}.get(step.lower())
        else:
            return None
    return hint


def hive_type(tp: Any, hint: Shape | None = None) -> str:
    """The Hive type of one annotation; `hint` is the declared shape at the same path."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(options) != 1:
            raise TypeError(f"cannot map a union of {options} to one Hive type")
        return hive_type(options[0], hint)
    if origin is list:
        (item,) = typing.get_args(tp)
        return f"array<{hive_type(item, _hint_at(hint, '[]'))}>"
    if origin is dict:
        key, value = typing.get_args(tp)
        if isinstance(hint, tuple) and hint[0] == "struct":
            return render(hint)  # an opaque or open-keyed object the tables spell out
        if value is Any:
            return "string"
        return f"map<{hive_type(key)},{hive_type(value)}>"
    if dataclasses.is_dataclass(tp):
        return f"struct<{','.join(f'{n}:{t}' for n, t in struct_fields(tp, hint))}>"
    if tp is Any:
        return render(hint) if hint is not None else "string"
    if tp in _SCALARS:
        return _SCALARS[tp]
    raise TypeError(f"no Hive type for {tp!r}")


def struct_fields(model: type, hint: Shape | None = None) -> list[tuple[str, str]]:
    """(name, hive type) for each field of a dataclass, in declaration order."""
    hints = typing.get_type_hints(model)
    return [
        (f.name, hive_type(hints[f.name], _hint_at(hint, f.name)))
        for f in dataclasses.fields(model)
    ]


def envelope_columns(detail_model: type, detail_hint: Shape | None = None) -> list[tuple[str, str]]:
    """The table's columns: the envelope, then `detail` typed from the model."""
    return [*ENVELOPE_COLUMNS, ("detail", hive_type(detail_model, detail_hint))]


def load_table_files(folder: Path) -> dict[str, dict[str, Any]]:
    """queries/glue/*.json by table name (none when the folder is missing)."""
    if not folder.is_dir():
        return {}
    tables = {}
    for path in sorted(folder.glob("*.json")):
        table = json.loads(path.read_text(encoding="utf-8"))
        tables[table["name"]] = table
    return tables


def detail_hint(tables: Mapping[str, Mapping[str, Any]], prefer: str) -> Shape | None:
    """The declared `detail` shape, merged over the tables, the preferred table first."""
    shapes = []
    for name in sorted(tables, key=lambda n: n != prefer):
        for column in tables[name].get("columns", []):
            if column["name"] == "detail":
                shapes.append(parse_hive(column["type"]))
    merged: Shape | None = None
    for shape in shapes:
        merged = shape if merged is None else _merge(merged, shape)
    return merged


def _merge(first: Shape, second: Shape) -> Shape:
    """Fields of `first` win; `second` adds the fields `first` does not declare."""
    if isinstance(first, tuple) and isinstance(second, tuple) and first[0] == second[0]:
        if first[0] == "struct":
            fields = dict(first[1])
            lower = {k.lower(): k for k in fields}
            for name, shape in second[1].items():
                if name.lower() in lower:
                    key = lower[name.lower()]
                    fields[key] = _merge(fields[key], shape)
                else:
                    fields[name] = shape
            return ("struct", fields)
        if first[0] == "array":
            return ("array", _merge(first[1], second[1]))
    return first
