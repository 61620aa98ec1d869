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
ROUNDS = 15


@pytest.fixture()
def roomy(demo_batch: DemoBatch, tmp_path: Path) -> Iterator[PortalClient]:
    yield from make_portal(demo_batch, tmp_path, limits={"network_lookups": 10_000, "lock_sends": 10_000,
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
    """Median of 15 look-ups each, interleaved: within 25% (or 5 ms) of each other."""
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
    shown = ", ".join(f"{n}: {m * 1000:.1f} ms" for n, m in medians.items())
    print(f"look-up medians: {shown}")
    low, high = min(medians.values()), max(medians.values())
    assert high - low < 0.005 or high / low < 1.25, shown
    assert low > 0.01, f"the code hash should take real time (scrypt n=2**14): {shown}"
