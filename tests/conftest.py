"""Shared fixtures. Area fixtures live in tests/fixtures/*.py and are loaded here."""

pytest_plugins = [
    "tests.fixtures.pki",
    "tests.fixtures.softhsm",
    "tests.fixtures.logscan",
]
