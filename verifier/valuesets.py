"""Display names from the official EU DCC value sets (shipped in verifier/data/valuesets).

    >>> from verifier.valuesets import display
    >>> display("vaccine-medicinal-product", "EU/1/20/1528")
    'Comirnaty'
    >>> display("vaccine-medicinal-product", "unknown-code")
    'unknown-code'

Value sets: eHealth Network "Value Sets for Digital Covid Certificates",
section 2 (ehn-dcc-development/ehn-dcc-valuesets). Used for the human
verdict only; the schema check does not restrict codes to these sets
(the sets change over time and older certificates stay valid).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from typing import Any

VALUE_SETS = (
    "country-2-codes",
    "disease-agent-targeted",
    "test-manf-example",
    "test-result",
    "test-type",
    "vaccine-mah-manf",
    "vaccine-medicinal-product",
    "vaccine-prophylaxis",
)

_FOLDER = os.path.join(os.path.dirname(__file__), "data", "valuesets")


@functools.cache
def value_set(name: str) -> Mapping[str, str]:
    """code -> display name for one value set (``KeyError`` for an unknown set)."""
    if name not in VALUE_SETS:
        raise KeyError(name)
    # next to this module, as verifier.schema reads the schema (no importlib.resources)
    with open(os.path.join(_FOLDER, f"{name}.json"), encoding="utf-8") as fh:
        text = fh.read()
    data: dict[str, Any] = json.loads(text)
    values = data.get("valueSetValues", {})
    return {str(code): str(v.get("display", code)) for code, v in values.items()}


def display(name: str, code: object) -> str:
    """Display name of ``code`` in value set ``name``; the code itself if unknown."""
    text = str(code)
    return value_set(name).get(text, text)
