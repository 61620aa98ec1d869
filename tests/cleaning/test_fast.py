"""The checks' fast path (signer.cleaning.fast) produces exactly what the full path does.

Three levels: the fast path's pieces against the functions they stand in for
(fingerprint, stamped line, checks) on generated people full of edge cases;
the reader's items with and without the fast path; whole runs with and
without it (every output file byte for byte, the results store row for row).
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signer.cleaning.checks import check_record
from signer.cleaning.fast import Checked, Fast, fast_reader, fingerprint_values
from signer.cleaning.run import CheckOptions, run_checks, verified_line
from signer.cleaning.synth import SynthConfig, generate
from signer.cleaning.tables import load_tables
from signer.records import (
    Record,
    fingerprint_form,
    read_records_range,
    record_fingerprint,
    record_of,
)
from tests.cleaning.conftest import NOW

HEAD = ["record_id", "citizen_id", "full_name", "dob", "sex", "nationality", "dose_date", "vaccine_product", "lot",
        "dose_number", "series_total", "site_commune", "site_province"]  # fmt: skip
REGISTRY = (
    "Số định danh,Họ và tên,Ngày sinh,Giới tính,Tỉnh/Thành phố,Xã/Phường\n"
    "079185001234,Nguyễn Thị Thanh Hương,1985-03-14,Nữ,TP. Hồ Chí Minh,P. Bến Nghé\n"
    "001062004567,Trần Văn Đức,1962-02-01,Nam,Hà Nội,Phường Hàng Bạc\n"
    "001062004568,Trần Văn Đức,1962,Nam,Hà Nội,Phường Hàng Bạc\n"
    "010200280776,Lê Thị Nga,2000-05-06,Nữ,Hà Nội,Phường Hàng Bạc\n"
    "123456789,Phạm Văn Bình,1970-01-01,Nam,Hà Nội,Phường Hàng Bạc\n"
)
IDS = ["079185001234", "001062004567", "001062004568", "010200280776", "123456789", "010 200 280776", "010.200.280776",
       "-", "N/A", "Không có", "NULL", "000000000000", "79185001234", "0791850012345", "07918500123A", "０７９185001234",
       "", "B1234567", "999185001234", "079085001234", "079185001235", " 079185001234 "]  # fmt: skip
NAMES = ["Nguyễn Thị Thanh Hương", "NGUYEN THI THANH HUONG", "nguyễn  thị thanh  hương", "Nguye\u0302\u0303n Thị Thanh Hương",
         "Trần Văn Đức", "TRẦN VĂN ĐỨC", "Lê Thị Nga", "Le Thi Nga", "Phạm Văn Bình", "Lan_1", "", "O'Neil-Smith Jr.",
         "Nguyễn Thị Thanh Hương\x00", "Nguyễn \\u0000 Hương", 'Nguyễn "Hương"', "=1+2"]  # fmt: skip
DOBS = ["1985-03-14", "1985", "1985-03", "1962-02-01", "1962", "2000-05-06", "1970-01-01", "1985-02-30", "85-03-14",
        "", "2030-01-01", "1800-01-01", "1985-00", "2026-06-01"]  # fmt: skip
SEXES = ["F", "M", "Nữ", "Nam", "X", "", "Q", "f"]
NATIONS = ["VN", "VNM", "vn", "USA", "KOR", "Việt Nam", "", "VIETNAM"]
DATES = ["2021-08-02", "2021-10-25", "2021-09-10", "2022-03-01", "2021-08-10", "2021-13-01", "2027-01-01", "02/08/2021", "",
         "1980-01-01"]  # fmt: skip
VACCINES = ["AstraZeneca", "EU/1/21/1529", "EU/1/20/1528", "Pfizer", "Moderna", "Sinopharm", "Vero Cell", "Unknown", ""]
NUMBERS = ["1", "2", "3", "", "0", "x", " 2 ", "300", "-1"]
PLACES = [("Phường Bến Nghé", "Thành phố Hồ Chí Minh"), ("Phường Hàng Bạc", "Hà Nội"), ("", "")]

person = st.tuples(
    st.sampled_from(["R1", "R2", "R3", "R4", ""]), st.sampled_from(IDS), st.sampled_from(NAMES), st.sampled_from(DOBS),
    st.sampled_from(SEXES), st.sampled_from(NATIONS),
    st.lists(st.tuples(st.sampled_from(DATES), st.sampled_from(VACCINES), st.sampled_from(["L1", "", "x" * 300]),
                       st.sampled_from(NUMBERS), st.sampled_from(NUMBERS), st.sampled_from(PLACES)),
             min_size=1, max_size=4),
)  # fmt: skip


def _csv(people: list[tuple[Any, ...]], extra: list[str] | None = None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEAD)
    for rid, ident, name, dob, sex, nat, doses in people:
        for date, vaccine, lot, number, series, (commune, province) in doses:
            w.writerow([rid, ident, name, dob, sex, nat, date, vaccine, lot, number, series, commune, province])
    return buf.getvalue() + "".join(extra or [])


MALFORMED = ['R9,079185001234,"unclosed\n', "R8,1,2\n", "R7,079185001234,Nguyễn Thị Thanh Hương,1985-03-14,F,VN,\xff\n"]


def _items(path: Path, fast: bool) -> list[Any]:
    tables = load_tables()
    person = fast_reader(NOW.date(), tables) if fast else None
    return list(read_records_range(path, 0, None, 1, warn=False, person=person))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(person, min_size=1, max_size=6), st.booleans())
def test_reader_items_equal_the_full_path(tmp_path: Path, people: list[tuple[Any, ...]], malformed: bool) -> None:
    path = tmp_path / "r.csv"
    path.write_text(_csv(people, MALFORMED if malformed else None), "utf-8", errors="surrogateescape")
    full, fast = _items(path, False), _items(path, True)
    assert len(full) == len(fast)
    tables = load_tables()
    for a, b in zip(full, fast, strict=True):
        if type(b) is Fast:
            rec = b.record()
            assert isinstance(a, Record) and rec == a and rec.rows == a.rows and rec.phone == a.phone
            assert check_record(a, today=NOW.date(), tables=tables) == ()
            assert b.fingerprint == record_fingerprint(a)
            assert b.text == verified_line(a, record_fingerprint(a))
            assert json.loads(b.text)["verified"] == b.fingerprint
            assert (b.record_id, b.line, b.rows) == (a.record_id, a.line, a.rows)
        elif type(b) is Checked:  # not cleared: the Record and the codes the full path's checks find
            assert isinstance(a, Record) and b.record == a and b.record.rows == a.rows and b.record.phone == a.phone
            assert b.codes == check_record(a, today=NOW.date(), tables=tables)
            # the fingerprint from the values, when the checks found codes (and the record has the "B" form)
            assert b.fingerprint == (record_fingerprint(a) if b.codes and fingerprint_form(a)[:1] == b"B" else None)
        else:
            assert b == a


@given(person)
@settings(max_examples=300, deadline=None)
def test_fingerprint_of_values_is_the_records(one: tuple[Any, ...]) -> None:
    rid, ident, name, dob, sex, nat, doses = one
    values = (rid, name, dob, sex, nat, ident, "Hà Nội", "Phường Hàng Bạc",
              [(d, v, lot, len(n), len(s) * 100, c) for d, v, lot, n, s, (c, _p) in doses], 5, len(doses), "", False)  # fmt: skip
    found = fingerprint_values(values)
    rec = record_of(values)
    if found is None:  # only when the record needs the "J" form
        assert fingerprint_form(rec).startswith(b"J")
    else:
        assert fingerprint_form(rec).startswith(b"B")
        assert found == record_fingerprint(rec)


def _outputs(out: Path) -> dict[str, bytes]:
    got: dict[str, bytes] = {}
    for f in sorted(out.rglob("*")):
        rel = f.relative_to(out)
        if f.is_dir() or rel.parts[0] == "state":
            continue
        if f.suffix == ".xlsx":
            with zipfile.ZipFile(f) as z:  # the members; the zip's own timestamps differ
                got.update({f"{rel}!{n}": z.read(n) for n in z.namelist()})
        elif f.name == "summary.json":
            summary = json.loads(f.read_text("utf-8"))
            for key in ("seconds", "peak_rss_mb"):
                summary.pop(key)
            summary["registry"].pop("index_seconds")
            got[str(rel)] = json.dumps(summary).encode()
        else:
            got[str(rel)] = f.read_bytes()
    with sqlite3.connect(out / "state" / "results.sqlite") as conn:
        got["results"] = repr(conn.execute("SELECT * FROM result ORDER BY record_id").fetchall()).encode()
    return got


def _both(tmp_path: Path, records: Path, registry: str, workers: int) -> tuple[dict[str, bytes], dict[str, bytes]]:
    found = []
    for fast in (False, True):
        out = tmp_path / f"out-{fast}-{workers}"
        run_checks(CheckOptions(records=records, registry=registry, out_dir=out, now=NOW, workers=workers,
                                fast_path=fast))  # fmt: skip
        found.append(_outputs(out))
    return found[0], found[1]


def test_runs_with_and_without_the_fast_path_are_byte_identical(tmp_path: Path) -> None:
    paths = generate(tmp_path / "data", SynthConfig(records=1500, seed=5, error_rate=0.3, malformed_rows=10,
                                                    shape="dose_rows", headers="en"))  # fmt: skip
    for workers in (1, 2):
        full, fast = _both(tmp_path, paths["records"], str(paths["registry"]), workers)
        assert full.keys() == fast.keys() and len(full) > 10
        assert [k for k in full if full[k] != fast[k]] == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(person, min_size=1, max_size=8))
def test_edge_case_runs_with_and_without_the_fast_path_are_identical(tmp_path: Path, people: list[tuple[Any, ...]]) -> None:
    reg = tmp_path / "registry.csv"
    reg.write_text(REGISTRY, "utf-8")
    path = tmp_path / "r.csv"
    # the people twice: later copies are duplicates, and a person's rows may come apart (the export is then sorted)
    path.write_text(_csv(people + people[:2]) + "".join(MALFORMED[1:2]), "utf-8")
    full, fast = _both(tmp_path, path, str(reg), 1)
    assert [k for k in full if full[k] != fast[k]] == []


CLEAN = [("R1", "079185001234", "Nguyễn Thị Thanh Hương", "1985-03-14", "F", "VN",
          [("2021-08-02", "AstraZeneca", "L1", "1", "2", PLACES[0]), ("2021-10-25", "EU/1/21/1529", "L2", "2", "2", PLACES[0])]),
         ("R2", "001062004567", "TRẦN  VĂN ĐỨC", "1962-02-01", "Nam", "VNM",
          [("2022-03-01", "Pfizer", "", "3", "3", PLACES[1]), ("2021-09-10", "Sinopharm", "L", "1", "2", PLACES[1]),
           ("2021-10-10", "Sinopharm", "L", "2", "2", PLACES[1])]),
         ("R3", "123456789", "Phạm Văn Bình", "1970", "M", "Việt Nam", [("2021-09-10", "Moderna", "", "", "", PLACES[2])])]  # fmt: skip


def test_clean_people_take_the_fast_path_and_others_do_not(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    foreigner = ("R4", "B1234567", "John Smith", "1980-01-01", "M", "USA", CLEAN[0][6])
    spaced = ("R5", "010 200 280776", "Lê Thị Nga", "2000-05-06", "F", "VN", CLEAN[0][6])
    path.write_text(_csv([*CLEAN, foreigner, spaced, ("", *CLEAN[0][1:])]), "utf-8")
    kinds = [type(x).__name__ for x in _items(path, True)]
    # R2's rows out of date order, R3's 9-digit ID and partial date of birth are clean; a foreigner, an ID written
    # with spaces (its own reason) and a person without record ID go the full way
    assert kinds == ["Fast", "Fast", "Fast", "Record", "Checked", "Record"]
    spaced_item = _items(path, True)[4]
    assert spaced_item.codes[0] == "id_separators"
    assert spaced_item.codes == check_record(spaced_item.record, today=NOW.date(), tables=load_tables())
    reg = tmp_path / "registry.csv"
    reg.write_text(REGISTRY, "utf-8")
    full, fast = _both(tmp_path, path, str(reg), 1)
    assert [k for k in full if full[k] != fast[k]] == []
    lines = fast["verified.jsonl"].decode().splitlines()
    assert [json.loads(x)["record_id"] for x in lines] == ["R1", "R2", "R3", "R4"]
