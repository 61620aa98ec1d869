"""signer.run.SeenIds, the run's memory of record ids (about 8 bytes each):
it answers exactly as a set of the ids would, across its merges."""

from __future__ import annotations

import random

import pytest

from signer.run import SeenIds


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_seen_ids_answers_as_a_set(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SeenIds, "MIN_RECENT", 64)  # many merges in a small test
    rng = random.Random(seed)
    pool = [f"R{rng.randrange(10**9):09d}" for _ in range(3000)] + ["", "Đ", "a" * 100, "\udcff"]
    seen, reference = SeenIds(), set()
    for _ in range(20000):
        rid = rng.choice(pool)
        assert seen.add(rid) == (rid not in reference), rid
        reference.add(rid)
    assert len(seen) == len(reference)
    assert all(not seen.add(rid) for rid in reference)


def test_two_runs_use_two_keys() -> None:
    """A hash collision (about 3e-8 per million records) would refuse one
    record as a duplicate; the next run hashes with another key."""
    a, b = SeenIds(), SeenIds()
    assert a._key != b._key
