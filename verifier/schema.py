"""EU DCC JSON schema 1.3.x validation (jsonschema-rs, compiled once).

    >>> from verifier.schema import schema_problems
    >>> schema_problems({"ver": "1.3.0"}) != []
    True

The schema is the official combined schema (ehn-dcc-development/ehn-dcc-schema,
``DCC.combined-schema.json``, version 1.3.3, JSON Schema draft 2020-12),
shipped in ``verifier/data/schema`` (see its README for provenance).
``format`` keywords are annotations in draft 2020-12 and are not asserted,
as in the EU reference validators; the schema's patterns still apply.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import jsonschema_rs

SCHEMA_FILE = "DCC.combined-schema.json"
#: read next to this module (a wheel installs it as a plain file): importlib.resources
#: imports tempfile, shutil, zipfile, bz2 and lzma, 3 to 8 ms of a `verifier pdf` start
_SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "data", "schema", SCHEMA_FILE)
SCHEMA_VERSION = "1.3.3"
_MAX_PROBLEMS = 5


@functools.cache
def schema() -> dict[str, Any]:
    """The combined DCC schema as a dict."""
    with open(_SCHEMA_PATH, encoding="utf-8") as fh:
        text = fh.read()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.cache
def _validator() -> Any:
    return jsonschema_rs.Draft202012Validator(schema(), validate_formats=False)


#: The problem reported for decoded CBOR that JSON cannot hold (bytes, tags,
#: non-text keys): jsonschema-rs refuses such values with ValueError.
NOT_JSON = "payload holds values JSON cannot represent (bytes, tags or non-text keys)"


def schema_problems(dcc: Any) -> list[str]:
    """Schema violations of a DCC payload (empty list: valid). Never raises.

    jsonschema-rs converts the Python value itself: non-JSON types raise
    ValueError (reported as :data:`NOT_JSON`) and NaN/infinity match no
    JSON type, so no separate walk over the payload is needed.
    """
    validator = _validator()
    try:
        if validator.is_valid(dcc):
            return []
        return [
            e.message
            for _, e in zip(range(_MAX_PROBLEMS), validator.iter_errors(dcc), strict=False)
        ]
    except ValueError:
        return [NOT_JSON]
    except Exception as err:  # defensive: never raise on untrusted input
        return [f"payload could not be validated ({type(err).__name__})"]
