"""The checks' cheaper forms give what the plain forms give (session 7 speed work).

- :func:`signer.cleaning.checks._check_doses` compares day ordinals and reads the
  vaccine/date caches directly: equal to the date-object version it replaced
  (kept here as the reference) on generated dose lists, with and without a birth date;
- the ID's "ASCII digits" test without a regex equals the regex's answer;
- :func:`signer.cleaning.fast.values_line` (one ``str.format`` per person) equals
  :func:`signer.cleaning.fast.line_of` and the encoder's line; the line written without escapes
  (:func:`signer.cleaning.fast.plain_line`, for texts free of :data:`signer.cleaning.fast.ESCAPED`) too, and
  ESCAPED is exactly the set of characters the encoder escapes;
- names cached as valid/invalid give the same codes as the first time, also past the cache's bound.
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import json
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from signer.cleaning import checks
from signer.cleaning.checks import DoseValues, check_values, parse_date
from signer.cleaning.fast import (
    ESCAPED,
    fingerprint_and_line,
    line_of,
    needs_no_escape,
    plain_line,
    values_line,
)
from signer.cleaning.tables import Tables, load_tables
from signer.records import record_fingerprint, record_of

TODAY = dt.date(2026, 6, 1)
DATES = ["2021-08-02", "2021-08-30", "2021-08-31", "2021-10-25", "2021-09-10", "2022-03-01", "2021-08-10", "2021-13-01",
         "2021-02-29", "2024-02-29", "2026-06-01", "2026-06-02", "2027-01-01", "02/08/2021", "", "1980-01-01",
         "1961-12-31", "1962-01-01", "０２０２-01-01"]  # fmt: skip
VACCINES = ["AstraZeneca", "EU/1/21/1529", "EU/1/20/1528", "Pfizer", "Moderna", "Sinopharm", "Vero Cell", "Janssen",
            "Unknown", "", "vắc xin Vero Cell", "COMIRNATY"]  # fmt: skip
BIRTHS = [None, dt.date(1962, 1, 1), dt.date(2021, 9, 1), dt.date(1900, 1, 1)]


def _reference(doses: list[DoseValues], birth: dt.date | None, today: dt.date, tables: Tables) -> list[str]:
    """_check_doses as it was before day ordinals (dates and timedeltas, Tables.min_days)."""
    if not doses:
        return ["dose_missing"]
    found: set[str] = set()
    dated = []
    for date, vaccine, _lot, number, series, _site in doses:
        product = tables.canonical_vaccine(vaccine)
        if product is None:
            found.add("vaccine_unknown")
        if number and series and number > series:
            found.add("dose_number_exceeds_series")
        day = parse_date(date)
        if day is None:
            found.add("dose_date_invalid")
            continue
        if day > today:
            found.add("dose_future")
        if birth is not None and day < birth:
            found.add("dose_before_birth")
        dated.append((day, number, series, product))
    if len(dated) > 1:
        dated.sort(key=lambda d: d[0])
        for (d1, n1, s1, p1), (d2, n2, _s2, p2) in itertools.pairwise(dated):
            if n1 and n2 and n2 <= n1:
                found.add("dose_order")
            booster = bool(s1 and n2 and n2 > s1)
            minimum = tables.booster_min_days if booster else tables.min_days(p1 or p2)
            if (d2 - d1).days < minimum:
                found.add("dose_interval_short")
    return [c for c in checks._DOSE_ORDER if c in found] if found else []


dose = st.tuples(st.sampled_from(DATES), st.sampled_from(VACCINES), st.just("L1"), st.integers(0, 4),
                 st.integers(0, 3), st.just("site"))  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(st.lists(dose, max_size=5), st.sampled_from(BIRTHS), st.sampled_from([TODAY, dt.date(2021, 9, 1)]))
def test_dose_checks_equal_the_date_object_version(doses: list[DoseValues], birth: dt.date | None,
                                                   today: dt.date) -> None:  # fmt: skip
    tables = load_tables()
    assert checks._check_doses(doses, birth, today, tables) == _reference(doses, birth, today, tables)
    assert checks._check_doses(doses, birth, today, tables) == _reference(doses, birth, today, tables)  # cached


def test_dose_checks_past_the_date_cache_bound() -> None:
    tables = load_tables()
    start = dt.date(2000, 1, 1)
    for k in range(0, 21_000, 7):
        day = (start + dt.timedelta(days=k)).isoformat()
        doses: list[DoseValues] = [("2000-01-01", "Pfizer", "", 1, 2, ""), (day, "Pfizer", "", 2, 2, "")]
        assert checks._check_doses(doses, None, TODAY, tables) == _reference(doses, None, TODAY, tables)


_DIGITS = re.compile(r"\d+", re.ASCII)


@given(st.text(alphabet="0123456789０١٣²³ -.aZ\u0660\u06f1", max_size=14))
def test_ascii_digits_test_equals_the_regex(ident: str) -> None:
    assert (ident.isascii() and ident.isdigit()) == (_DIGITS.fullmatch(ident) is not None)
    tables = load_tables()
    assert checks._check_id(ident, "M", True, None, tables) == checks._check_id(ident, "M", True, None, tables)


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(text, min_size=8, max_size=8),
       st.lists(st.tuples(text, text, text, st.integers(0, 300), st.integers(0, 300), text), max_size=4),
       st.sampled_from(["", "+84912345678", 'a"b\\c\n']), st.text(alphabet="0123456789abcdef", max_size=64))  # fmt: skip
def test_values_line_equals_line_of_and_the_encoder(values: list[str], doses: list[tuple[str, str, str, int, int, str]],
                                                   phone: str, fingerprint: str) -> None:  # fmt: skip
    got = values_line(tuple(values), doses, phone, fingerprint)
    assert got == line_of(tuple(values), doses, phone, fingerprint)
    names = ("record_id", "full_name", "date_of_birth", "sex", "nationality", "id_number", "province", "commune")
    obj: dict[str, object] = dict(zip(names, values, strict=True))
    if phone:
        obj["phone"] = phone
    obj["doses"] = [dict(zip(("date", "vaccine", "lot", "dose_number", "series_doses", "site"), d, strict=True))
                    for d in doses]  # fmt: skip
    obj["verified"] = fingerprint
    assert got == json.dumps(obj, ensure_ascii=False) + "\n"


def test_escaped_is_what_the_encoder_escapes() -> None:
    """Every code point (lone surrogates included): ESCAPED finds it exactly when json.dumps(ensure_ascii=False)
    does not write it as it is."""
    for code in range(0x110000):
        ch = chr(code)
        as_is = json.dumps(ch, ensure_ascii=False) == f'"{ch}"'
        assert (ESCAPED.search(ch) is None) == as_is, hex(code)
        assert as_is or not needs_no_escape(ch), hex(code)  # the plain line's test: never a character escaped
    assert needs_no_escape("Nguyễn Thị Hương, Thành phố Hà Nội 0123 '/{}%s%d") and not needs_no_escape("a\u00adb")


#: Hostile text: what the encoder escapes, what it does not (DEL, U+2028/9, NEL, a lone surrogate), and plain text.
hostile = st.text(alphabet=st.sampled_from(['"', "\\", "\x00", "\x1f", "\n", "\t", "\x7f", "\u2028", "\u2029", "\x85",
                                            "\ud800", "a", "ễ", "/", "'", "{", "}", " ", "0"]), max_size=6)  # fmt: skip
plain = st.text(alphabet="abcỄễ 0123456789-/.:'{}%sd", max_size=8)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.one_of(hostile, plain), min_size=8, max_size=8),
       st.lists(st.tuples(st.one_of(hostile, plain), plain, st.one_of(hostile, plain), st.integers(0, 255),
                          st.integers(0, 255), st.one_of(hostile, plain)), max_size=4),
       st.one_of(st.just(""), hostile, plain))  # fmt: skip
def test_fingerprint_and_line_equal_the_encoder_on_hostile_text(values: list[str], doses: list[DoseValues],
                                                                 phone: str) -> None:  # fmt: skip
    person = (*values, doses, 7, max(1, len(doses)), phone, False)
    found = fingerprint_and_line(person)  # type: ignore[arg-type]
    assert found is not None
    fingerprint, line = found
    rec = record_of(person)  # type: ignore[arg-type]
    assert fingerprint == record_fingerprint(rec)
    obj = rec.to_json()
    obj["verified"] = fingerprint
    assert line == json.dumps(obj, ensure_ascii=False) + "\n"
    assert line == values_line(tuple(values), doses, phone, fingerprint)
    texts = [*values, phone, *(t for d in doses for t in (d[0], d[1], d[2], d[5]))]
    if not any(ESCAPED.search(t) for t in texts):
        assert line == plain_line(tuple(values), doses, phone, fingerprint)
    if all(needs_no_escape(t) for t in texts):
        assert line == plain_line(tuple(values), doses, phone, fingerprint) and "\\" not in line


def test_name_codes_are_the_same_from_the_cache_and_past_its_bound() -> None:
    tables = load_tables()
    doses: list[DoseValues] = [("2021-08-02", "Pfizer", "", 1, 2, "")]

    def name_codes(name: str) -> tuple[str, ...]:
        codes = check_values("079185001234", name, "1985-03-14", "F", True, doses, TODAY, tables)
        return tuple(c for c in codes if c.startswith("name_"))

    for name, want in (("Nguyễn Thị Hương", ()), ("Lan_1", ("name_invalid",)), ("=1+2", ("name_invalid",)),
                       ("O'Neil-Smith Jr.", ()), ("", ("name_missing",))):  # fmt: skip
        assert name_codes(name) == want
        assert name_codes(name) == want  # now from the cache
    for k in range(50_010):  # more distinct names than the cache holds: it starts again, same answers
        checks._valid_name(f"Tên {k}")
    assert name_codes("Lan_1") == ("name_invalid",) and name_codes("Nguyễn Thị Hương") == ()


def test_workers_collect_garbage_rarely_and_restore_the_collector() -> None:
    import gc

    from signer.cleaning import run

    before = gc.get_threshold()
    with run._rare_gc():
        assert gc.get_threshold()[0] == run.GC_THRESHOLD
    assert gc.get_threshold() == before
    try:
        with run._rare_gc():
            raise KeyError("x")
    except KeyError:
        pass
    assert gc.get_threshold() == before


def test_seen_as_a_view_of_the_staged_results_equals_the_seen_table(tmp_path: Path) -> None:
    """A worker of a run with several parts keeps no second row per person: its scratch file's ``seen`` is a
    view of the staged results (first lines put) and of the reused verdicts; it holds what the table holds."""
    from signer.cleaning.scratch import Scratch
    from signer.cleaning.store import ResultStore

    # (record ID, line, reused): first lines of IDs, in the order a worker meets them; C's verdict reused
    firsts = [("A", 2, False), ("B", 3, False), ("C", 5, True), ("D", 9, False)]
    table = Scratch(tmp_path / "table.sqlite", 2)
    table.remember([*firsts, ("A", 11, False)])  # a later line of A: the first wins
    path = tmp_path / "view.sqlite"
    view = Scratch(path, 2, seen_in_results=True)
    store = ResultStore(tmp_path / "results.sqlite", context="c", staging=path, fresh_staging=False)
    for rid, line, reused in firsts:
        if not reused:
            store.put(rid, "fp-" + rid, (), (), "", line)
    view.remember([*(r for r in firsts if r[2]), ("C", 12, True)])
    store.flush()
    assert view.seen_before(["A", "C", "D", "E"]) == table.seen_before(["A", "C", "D", "E"]) == {"A", "C", "D"}
    rows = "SELECT record_id, line, reused FROM seen ORDER BY record_id"
    assert list(view.conn.execute(rows)) == list(table.conn.execute(rows)) == [
        ("A", 2, 0), ("B", 3, 0), ("C", 5, 1), ("D", 9, 0)]  # fmt: skip
    view.close()
    store.close()
    table.close()


def test_seen_before_looks_up_only_ids_up_to_the_greatest_met(tmp_path: Path) -> None:
    from signer.cleaning.scratch import Scratch

    scratch = Scratch(tmp_path / "s.sqlite", 1)
    scratch.remember([("R05", 2, False), ("R10", 3, False), ("R07", 4, False)])
    assert scratch.seen_before(["R05", "R06", "R10", "R11"]) == {"R05", "R10"}  # not known: all looked up
    scratch.met_up_to = "R10"
    assert scratch.seen_before(["R07", "R08", "R10", "R11", "R99"]) == {"R07", "R10"}
    scratch.met_up_to = "R09"  # (a wrong bound: R10 is not looked up, which shows the bound is used)
    assert scratch.seen_before(["R07", "R10"]) == {"R07"}
    scratch.close()


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789", min_size=12, max_size=12), st.sampled_from(["M", "F", "X", ""]),
       st.integers(1890, 2030))  # fmt: skip
def test_cccd_digits_read_without_int_give_the_same_codes(ident: str, sex: str, year: int) -> None:
    tables = load_tables()
    dob = checks.PartialDate(year)
    want = []
    if not ident.strip("0") or ident in tables.id_placeholders:
        assert checks._check_id(ident, sex, True, dob, tables) == ["id_missing"]
        return
    if ident[:3] not in tables.provinces:
        want.append("cccd_province_unknown")
    g = int(ident[3])
    if sex in ("M", "F") and sex != ("M" if g % 2 == 0 else "F"):
        want.append("cccd_sex_mismatch")
    if 1900 + (g // 2) * 100 + int(ident[4:6]) != year:
        want.append("cccd_birth_year_mismatch")
    assert checks._check_id(ident, sex, True, dob, tables) == want


def test_summary_add_verified_counts_as_add_does() -> None:
    from signer.cleaning.outputs import Summary

    tables = load_tables()
    one, many = Summary(tables), Summary(tables)
    people = [("Tỉnh A", "Xã 1", 2), ("Tỉnh A", "Xã 1", 2), ("Tỉnh A", "Xã 2", 3), ("Tỉnh B", "Xã 1", 1)] * 3
    for province, commune, doses in people:
        one.add(province, commune, (), doses)
    one.add("Tỉnh A", "Xã 1", ("dose_future",), 2)
    many.add_verified(collections.Counter(people))
    many.add("Tỉnh A", "Xã 1", ("dose_future",), 2)
    for s in (one, many):
        s.settle()
    assert many.places == one.places and many.total == one.total and many.reasons == one.reasons
    assert (many.rechecked, many.reused, many.foreign_verified) == (one.rechecked, one.reused, 0) == (13, 0, 0)
    assert one.total["subjects"]["verified"] == 12 and one.total["doses"]["verified"] == 24


def test_summary_reasons_in_the_same_order_whatever_order_they_were_met() -> None:
    """summary.json's "reasons": most frequent first, ties by code, so that 2 workers
    (each meeting the reasons in its own order, merged) write what 1 worker writes."""
    import datetime as dt

    from signer.cleaning.outputs import Summary

    tables = load_tables()
    met = [("dose_future",), ("name_missing",), ("dob_missing",), ("dose_future",)]
    orders = []
    for codes in (met, met[::-1], met[1:] + met[:1]):
        summary = Summary(tables)
        for c in codes:
            summary.add("Tỉnh A", "Xã 1", c, 1)
        result = summary.to_json(now=dt.datetime(2026, 6, 1, tzinfo=dt.UTC), records="r.csv", registry={}, files={})
        orders.append(list(result["reasons"].items()))
    assert orders[0] == orders[1] == orders[2] == [("dose_future", 2), ("dob_missing", 1), ("name_missing", 1)]
