"""Fixtures of the data-cleaning tests: synthetic datasets checked once per session."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from signer.cleaning.evaluate import evaluate
from signer.cleaning.run import CheckOptions, run_checks
from signer.cleaning.synth import SynthConfig, generate
from tests.cleaning.pg import pg_dsn  # noqa: F401  (fixture)

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Checked:
    paths: dict[str, Path]
    out: Path
    summary: dict[str, Any]
    score: dict[str, Any]


def make_checked(base: Path, cfg: SynthConfig, **opts: Any) -> Checked:
    paths = generate(base / "data", cfg)
    out = base / "out"
    summary = run_checks(
        CheckOptions(records=paths["records"], registry=str(paths["registry"]), out_dir=out, now=NOW, **opts)
    )
    return Checked(paths, out, summary, evaluate(paths["truth"], out))


@pytest.fixture(scope="session")
def checked_jsonl(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    """3000 JSONL records, English field names, CSV registry, one worker."""
    cfg = SynthConfig(records=3000, seed=42, error_rate=0.25, malformed_rows=12, keep_originals=True)
    return make_checked(tmp_path_factory.mktemp("jsonl"), cfg, workers=1)


@pytest.fixture(scope="session")
def checked_csv(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    """3000 CSV records with Vietnamese headers, SQLite registry, two worker processes."""
    cfg = SynthConfig(records=3000, seed=7, error_rate=0.25, malformed_rows=12, fmt="csv", headers="vi", registry_fmt="sqlite")
    return make_checked(tmp_path_factory.mktemp("csv"), cfg, workers=2)


@pytest.fixture(scope="session")
def checked_dose_rows(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    """3000 people as one CSV row per dose (English headers, no residence columns), two worker processes."""
    cfg = SynthConfig(records=3000, seed=9, error_rate=0.25, malformed_rows=12, shape="dose_rows", headers="en")
    return make_checked(tmp_path_factory.mktemp("dose_rows"), cfg, workers=2)
