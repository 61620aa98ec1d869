"""EU DCC JSON schema 1.3.x validation (jsonschema-rs, compiled once).

    >>> from verifier.schema import schema_problems
    >>> schema_problems({"ver": "1.3.0"})[:1]
    ['"nam" is a required property']

The schema is the official combined schema (ehn-dcc-development/ehn-dcc-schema,
``DCC.combined-schema.json``, version 1.3.3, JSON Schema draft 2020-12),
shipped in ``verifier/data/schema`` (see its README for provenance).
``format`` keywords are annotations in draft 2020-12 and are not asserted,
as in the EU reference validators; the schema's patterns still apply.
"""

from __future__ import annotations

import functools
import json
import math
from importlib import resources
from typing import Any

import jsonschema_rs

SCHEMA_FILE = "DCC.combined-schema.json"
SCHEMA_VERSION = "1.3.3"
_MAX_PROBLEMS = 5


@functools.cache
def schema() -> dict[str, Any]:
    """The combined DCC schema as a dict."""
    text = resources.files("verifier.data.schema").joinpath(SCHEMA_FILE).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.cache
def _validator() -> Any:
    return jsonschema_rs.Draft202012Validator(schema(), validate_formats=False)


def _json_only(obj: Any, depth: int = 0) -> bool:
    """True when ``obj`` holds only JSON types (decoded CBOR may hold bytes, tags...)."""
    if depth > 32:
        return False
    if obj is None or isinstance(obj, bool | int | str):
        return True
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, list):
        return all(_json_only(x, depth + 1) for x in obj)
    if isinstance(obj, dict):
        return all(isinstance(k, str) and _json_only(v, depth + 1) for k, v in obj.items())
    return False


def schema_problems(dcc: Any) -> list[str]:
    """Schema violations of a DCC payload (empty list: valid). Never raises."""
    if not _json_only(dcc):
        return ["payload holds values JSON cannot represent (bytes, tags or non-text keys)"]
    validator = _validator()
    try:
        if validator.is_valid(dcc):
            return []
        return [
            e.message
            for _, e in zip(range(_MAX_PROBLEMS), validator.iter_errors(dcc), strict=False)
        ]
    except Exception as err:  # defensive: never raise on untrusted input
        return [f"payload could not be validated ({type(err).__name__})"]
