"""No enumeration: an unknown ID, a wrong date of birth and the right details
get the same status, the same body (but for the random tokens) and about the
same time; a wrong code on a decoy answers like a wrong code on a real one."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.portal.citizen_helpers import (
    HUONG,
    UNKNOWN,
    WRONG_DOB,
    csrf_tokens,
    enter_code,
    lookup,
    strip_tokens,
)
from tests.portal.conftest import DemoBatch, PortalClient, make_portal

CASES = {"unknown ID": UNKNOWN, "wrong date of birth": WRONG_DOB, "right details": HUONG}
ROUNDS = 21


@pytest.fixture()
def roomy(demo_batch: DemoBatch, tmp_path: Path) -> Iterator[PortalClient]:
    yield from make_portal(demo_batch, tmp_path, limits={"network_lookups": 10_000, "lock_sends": 10_000, "resend_seconds": 0,
                                                         "phone_sends": 10_000, "network_codes": 10_000})


def test_same_status_and_body(roomy: PortalClient) -> None:
    pc = roomy
    seen: dict[str, tuple[int, str, list[str], str, int, str]] = {}
    for name, person in CASES.items():
        pc.client.cookies.clear()
        r = lookup(pc, person)
        names = sorted(h.split("=", 1)[0] for h in r.headers.get_list("set-cookie"))
        page = pc.client.get("/code")
        wrong = enter_code(pc, "000000")
        seen[name] = (r.status_code, r.headers.get("location", ""), names, strip_tokens(page.text),
                      wrong.status_code, strip_tokens(wrong.text))
    first, *_rest = seen.values()
    for name, value in seen.items():
        assert value == first, name
    assert first[0] == 303 and first[4] == 400


def test_same_time(roomy: PortalClient) -> None:
    """21 rounds of the three look-ups, interleaved. Within a round the three run
    back to back, so a busy machine slows them alike: the median of the per-round
    differences to the right details must stay within 25% of its time (or 5 ms);
    a decoy that skipped the code hash (scrypt, tens of ms) would be far outside."""
    pc = roomy
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(ROUNDS):
        for name, person in CASES.items():
            pc.client.cookies.clear()
            page = pc.client.get("/")
            data = {"csrf": csrf_tokens(page.text)["/lookup"], **{k: person[k] for k in ("id_number", "birth_date")}}
            start = time.perf_counter()
            r = pc.client.post("/lookup", data=data, follow_redirects=False)
            times[name].append(time.perf_counter() - start)
            assert r.status_code == 303
    medians = {name: statistics.median(values) for name, values in times.items()}
    right = times["right details"]
    gaps = {name: statistics.median(t - r for t, r in zip(values, right, strict=True))
            for name, values in times.items() if name != "right details"}  # fmt: skip
    shown = ", ".join(f"{n}: {m * 1000:.1f} ms" for n, m in medians.items())
    shown += "; median gaps to the right details: " + ", ".join(f"{n}: {g * 1000:+.1f} ms" for n, g in gaps.items())
    print(f"look-up medians: {shown}")
    for gap in gaps.values():
        assert abs(gap) < max(0.005, 0.25 * medians["right details"]), shown
    assert min(medians.values()) > 0.01, f"the code hash should take real time (scrypt n=2**14): {shown}"
