"""A JSON Schema subset, interpreted: the corpus manifest's schema (``corpus/schema.json``) and its checker."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from btfspec.locations import CORPUS_DIR

SCHEMA_PATH = CORPUS_DIR / "schema.json"

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


@functools.cache
def load_schema(path: str = str(SCHEMA_PATH)) -> dict[str, Any]:
    """The manifest JSON Schema (``corpus/schema.json``)."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def schema_errors(value: Any, schema: Mapping[str, Any] | None = None, root: Mapping[str, Any] | None = None,
                  where: str = "$") -> list[str]:
    """Violations of ``schema`` (default: the manifest schema) by ``value``, as ``path: problem`` lines.

    Supports the subset the manifest schema uses: ``type``, ``const``, ``enum``, ``pattern``,
    ``minLength``, ``minimum``/``maximum``, ``required``, ``properties``, ``additionalProperties``,
    ``propertyNames``, ``minProperties``, ``items``, ``oneOf`` and local ``$ref``.
    """
    if schema is None:
        schema = load_schema()
    root = root if root is not None else schema
    if "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        return schema_errors(value, node, root, where)
    errs: list[str] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](value) for t in types):
            return [f"{where}: expected {' or '.join(types)}, got {type(value).__name__}"]
    if "const" in schema and value != schema["const"]:
        errs.append(f"{where}: must be {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errs.append(f"{where}: {value!r} does not match {schema['pattern']!r}")
        if len(value) < schema.get("minLength", 0):
            errs.append(f"{where}: shorter than {schema['minLength']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errs.append(f"{where}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errs.append(f"{where}: {value} > {schema['maximum']}")
    if isinstance(value, dict):
        errs += [f"{where}: missing {k!r}" for k in schema.get("required", ()) if k not in value]
        if len(value) < schema.get("minProperties", 0):
            errs.append(f"{where}: needs at least {schema['minProperties']} entries")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            if "propertyNames" in schema:
                errs += schema_errors(k, schema["propertyNames"], root, f"{where} key {k!r}")
            if k in props:
                errs += schema_errors(v, props[k], root, f"{where}.{k}")
            elif extra is False:
                errs.append(f"{where}: unexpected key {k!r}")
            elif isinstance(extra, dict):
                errs += schema_errors(v, extra, root, f"{where}.{k}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            errs += schema_errors(v, schema["items"], root, f"{where}[{i}]")
    if "oneOf" in schema:
        results = [schema_errors(value, s, root, where) for s in schema["oneOf"]]
        matching = sum(1 for r in results if not r)
        if matching != 1:
            best = min(results, key=len)
            errs.append(f"{where}: matches {matching} of the allowed forms"
                        + (f" (closest: {best[0]})" if best else ""))
    return errs
