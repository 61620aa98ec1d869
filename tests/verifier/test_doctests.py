"""The short examples that open each verifier module run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "verifier.result",
    "verifier.valuesets",
    "verifier.human",
    "verifier.schema",
    "verifier.hc1",
    "verifier.trust",
]


@pytest.mark.parametrize("name", MODULES)
def test_module_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
