"""Registry sources (CSV, SQLite, PostgreSQL), the SQLite index and its reuse."""

from __future__ import annotations

import csv
import os
import random
import sqlite3
from pathlib import Path

import psycopg
import pytest

from signer.cleaning.registry import BATCH, index_path_for, open_registry
from signer.cleaning.run import CheckOptions, run_checks
from tests.cleaning.conftest import NOW, Checked
from verifier.errors import ConfigError


def _registry_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def test_csv_index_is_built_once_and_reused(checked_jsonl: Checked, tmp_path: Path) -> None:
    src = tmp_path / "registry.csv"
    src.write_bytes(checked_jsonl.paths["registry"].read_bytes())
    first = open_registry(str(src), state_dir=tmp_path)
    assert not first.info.reused and first.info.rows == len(_registry_rows(src)) - 1
    first.close()
    index = index_path_for(str(src), None, tmp_path)
    mtime = index.stat().st_mtime_ns
    again = open_registry(str(src), state_dir=tmp_path)
    assert again.info.reused and index.stat().st_mtime_ns == mtime
    again.close()
    with src.open("a", encoding="utf-8") as fh:
        fh.write("001099000001,Người Mới,1999-01-01,Nam,Hà Nội,Phường Hàng Bạc\n")
    changed = open_registry(str(src), state_dir=tmp_path)
    assert not changed.info.reused and changed.info.rows == first.info.rows + 1
    assert changed.lookup(["001099000001"])["001099000001"].full_name == "Người Mới"
    changed.close()
    assert not list(tmp_path.glob("*.tmp-*"))  # no half-built index left behind


def test_batched_lookup_and_candidates(checked_jsonl: Checked, tmp_path: Path) -> None:
    rows = _registry_rows(checked_jsonl.paths["registry"])[1:]
    with open_registry(str(checked_jsonl.paths["registry"]), state_dir=tmp_path) as reg:
        ids = [r[0] for r in rows[: BATCH * 2 + 17]] + ["000000000000"]
        found = reg.lookup(ids)
        assert len(found) == BATCH * 2 + 17 and "000000000000" not in found
        one = found[rows[5][0]]
        assert (one.full_name, one.date_of_birth, one.sex) == (rows[5][1], rows[5][2], "M" if rows[5][3] == "Nam" else "F")
        from signer.cleaning.text import name_fold

        cands = reg.candidates("Tỉnh " + rows[5][4], rows[5][5], name_fold(rows[5][1].upper()))
        assert rows[5][0] in {c.id_number for c in cands}


def test_registry_without_required_column(tmp_path: Path) -> None:
    src = tmp_path / "registry.csv"
    src.write_text("so,ten\n1,2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no column for 'id_number'"):
        open_registry(str(src), state_dir=tmp_path / "s")


def test_sqlite_registry_with_table_name(checked_jsonl: Checked, tmp_path: Path) -> None:
    rows = _registry_rows(checked_jsonl.paths["registry"])
    db = tmp_path / "dan_cu.db"
    conn = sqlite3.connect(db)
    conn.execute('CREATE TABLE "công_dân" ("Số định danh" TEXT, "Họ và tên" TEXT, "Ngày sinh" TEXT, '
                 '"Giới tính" TEXT, "Tỉnh/Thành phố" TEXT, "Xã/Phường" TEXT)')  # fmt: skip
    conn.executemany('INSERT INTO "công_dân" VALUES (?,?,?,?,?,?)', rows[1:])
    conn.commit()
    conn.close()
    out = tmp_path / "out"
    summary = run_checks(
        CheckOptions(records=checked_jsonl.paths["records"], registry=str(db), registry_table="công_dân",
                     out_dir=out, now=NOW, workers=1, formats=("csv",))
    )  # fmt: skip
    assert summary["totals"] == checked_jsonl.summary["totals"]
    with pytest.raises(ConfigError):
        open_registry(str(db), state_dir=tmp_path / "s2", table="no_such_table")


def test_postgresql_registry(pg_dsn: str, checked_jsonl: Checked, tmp_path: Path) -> None:
    rows = _registry_rows(checked_jsonl.paths["registry"])
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS dan_cu")
        conn.execute("CREATE TABLE dan_cu (citizen_id text PRIMARY KEY, full_name text, date_of_birth date, "
                     "sex text, province text, commune text)")  # fmt: skip
        with conn.cursor().copy("COPY dan_cu FROM STDIN") as copy:
            for r in rows[1:]:
                copy.write_row(r)
    out = tmp_path / "out"
    opts = CheckOptions(records=checked_jsonl.paths["records"], registry=pg_dsn, registry_table="dan_cu",
                        out_dir=out, now=NOW, workers=2, formats=("csv",))  # fmt: skip
    summary = run_checks(opts)
    assert summary["registry"]["rows"] == len(rows) - 1 and not summary["registry"]["reused_index"]
    assert summary["totals"] == checked_jsonl.summary["totals"]
    assert (out / "verified.jsonl").read_bytes() == (checked_jsonl.out / "verified.jsonl").read_bytes()
    # unchanged table: index reused; a changed row: rebuilt
    assert run_checks(opts)["registry"]["reused_index"] is True
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE dan_cu SET full_name = full_name || 'x' WHERE citizen_id = %s", (rows[1][0],))
    assert run_checks(opts)["registry"]["reused_index"] is False
    # errors are one clear line, without the password
    bad = pg_dsn.replace("postgres@", "postgres:s3cret@").replace("/postgres?", "/no_such_db?")
    with pytest.raises(ConfigError) as err:
        open_registry(bad, state_dir=tmp_path / "s", table="dan_cu")
    assert "s3cret" not in str(err.value) and "\n" not in str(err.value)
    assert os.environ.get("PGPASSWORD") is None


def test_index_rows_are_the_same_with_the_name_cache_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each distinct name is normalised and folded once (a bounded cache): the rows are those of the plain
    computation, also when the cache is cleared between rows."""
    import unicodedata

    from signer.cleaning import registry as reg
    from signer.cleaning.text import name_fold

    names = ["Nguyễn Thị Mai", "Nguyễn  Thị Mai ", unicodedata.normalize("NFD", "Nguyễn Thị Mai"), "Lê Văn A",
             "NGUYEN THI MAI", "Nguyễn Thị Mai", "", "Lê Văn A"]  # fmt: skip
    rows = [[f"0301700{k:05d}", n, "1970-02-18", "Nữ", "Hải Dương", "Xã Bắc Mỹ"] for k, n in enumerate(names)]
    cols: list[int | None] = [0, 1, 2, 3, 4, 5]
    tally = reg._Tally()
    cached = list(reg._rows_to_index(rows, cols, tally))
    monkeypatch.setattr(reg, "_NAME_CACHE", 1)  # cleared at every new name
    assert list(reg._rows_to_index(rows, cols, reg._Tally())) == cached
    places = {n: key for key, n in tally.places.items()}
    for row, (ident, name, _dob, _sex, place, nk) in zip(rows, cached, strict=True):
        plain = " ".join(unicodedata.normalize("NFC", row[1]).split())
        assert (ident, name) == (row[0], plain)
        assert places[place] == reg.place_of(row[4], row[5])
        assert nk == reg.name_year_key(name_fold(plain), "1970")
    assert tally.years == {"1970"} and tally.skipped == 0


def _hostile_csv(rnd: random.Random) -> bytes:
    pieces = [b"\xef\xbb\xbfcitizen_id,full_name,dob,sex,province,commune\n"]
    bits = [b"0", b"9", b" ", b",", b'"', b"\n", b"\r", b"\r\n", b"\xc3\xa9", b"\xc3", b"\xe1\xbb", b"\xff", b"a",
            b"Nguy\xe1\xbb\x85n", b"02/03/1980", b"x" * 50, b"\x00", b"\x1c"]  # fmt: skip
    for k in range(rnd.randint(0, 120)):
        if rnd.random() < 0.7:
            pieces.append(b"%012d,Nguy\xe1\xbb\x85n Th\xe1\xbb\x8b %d,1970-01-0%d,N\xe1\xbb\xaf,H\xe1\xba\xa3i D\xc6\xb0\xc6\xa1ng,"
                          b"X\xc3\xa3 %d\n" % (k, k % 7, k % 9 + 1, k % 3))  # fmt: skip
        else:
            pieces.append(b"".join(rnd.choice(bits) for _ in range(rnd.randint(0, 30))))
    return b"".join(pieces)


def test_range_lines_are_the_lines_of_a_binary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The builder reads a byte range in blocks: the same lines, decoded the same way, as iterating the binary
    file line by line and stopping at the first line that starts at or after the range's end (a line that
    starts before it is read to its end), whatever the block size, for any range."""
    from signer.cleaning import registry as reg

    def plain(path: Path, start: int, end: int) -> list[str]:
        with path.open("rb") as fh:
            fh.seek(start)
            out, pos = [], start
            for raw in fh:
                if pos >= end:
                    break
                pos += len(raw)
                out.append(raw.decode("utf-8", "replace"))
            return out

    rnd = random.Random(7)
    for k in range(40):
        path = tmp_path / f"r{k}.csv"
        path.write_bytes(_hostile_csv(rnd) + (b"1" * rnd.randint(1, 3000) if k % 3 == 0 else b""))
        size = path.stat().st_size
        for block in (1, 3, 64, 1 << 20):
            monkeypatch.setattr(reg, "_BLOCK", block)
            for start, end in [(0, size), (0, 1 << 62)] + [tuple(sorted((rnd.randint(0, size + 3), rnd.randint(0, size + 3))))
                                                             for _ in range(4)]:  # fmt: skip
                with path.open("rb") as fh:
                    fh.seek(start)
                    assert list(reg._range_lines(fh, end)) == plain(path, start, end), (k, block, start, end)


def test_unreadable_registry_rows_are_skipped_and_the_rest_indexed(tmp_path: Path) -> None:
    """A row the CSV reader refuses (here a field over its size limit) and a short row are skipped and counted;
    the rows after them are indexed."""
    src = tmp_path / "registry.csv"
    src.write_text(
        "citizen_id,full_name,dob,sex,province,commune\n"
        "001099000001,Người Một,1990-01-01,Nam,Hà Nội,Phường Hàng Bạc\n"
        f'001099000002,"{"x" * (csv.field_size_limit() + 1)}",1990-01-01,Nam,Hà Nội,Phường Hàng Bạc\n'
        "001099000003,Người Ba\n"
        "001099000004,Người Bốn,04/05/1991,Nữ,Hà Nội,Phường Hàng Bạc\n",
        encoding="utf-8",
    )
    with open_registry(str(src), state_dir=tmp_path / "s") as reg:
        assert (reg.info.rows, reg.info.skipped) == (2, 2)
        found = reg.lookup(["001099000001", "001099000002", "001099000003", "001099000004"])
        assert sorted(found) == ["001099000001", "001099000004"]
        assert found["001099000004"].date_of_birth == "1991-05-04" and found["001099000004"].sex == "F"


@pytest.mark.parametrize("shards", [1, 2])
def test_candidates_are_everyone_of_the_commune_with_the_name(tmp_path: Path, shards: int) -> None:
    """candidates() (found through the name and year index for each birth year of the shard, and the place's
    number) gives what a scan of the registry gives: every row of that commune (province and commune as
    place_of compares them) whose folded name is the one asked, any year (also an odd date), in the
    registry's order, the same ID twice included; nothing for a commune or name it does not have."""
    from signer.cleaning import registry as reg
    from signer.cleaning.text import name_fold

    rnd = random.Random(3)
    names = ["Nguyễn Thị Mai", "NGUYEN THI MAI", "Lê Văn An", "Trần Đức", "Lê  văn an"]
    places = [("Hà Nội", "Phường Hàng Bạc"), ("Thành phố Hà Nội", "P. Hàng Bạc"), ("Hải Dương", "Xã Bắc Mỹ"), ("", "")]
    dobs = ["1970-02-18", "1971", "03/04/1990", "", "abcd", "1970-02-19", "2001-01-01"]
    lines = ["citizen_id,full_name,dob,sex,province,commune"]
    rows = []
    for _ in range(600):
        ident = f"0010{rnd.randint(0, 400):08d}"  # IDs repeat now and then
        name, (prov, comm), dob = rnd.choice(names), rnd.choice(places), rnd.choice(dobs)
        rows.append((ident, name, prov, comm))
        lines.append(f"{ident},{name},{dob},{rnd.choice(['Nam', 'Nữ'])},{prov},{comm}")
    src = tmp_path / "registry.csv"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    target = tmp_path / "index.sqlite"
    assert reg.build_index(reg._Source(str(src), None), target, "sig", shards) == (600, 0)
    with reg.Registry(reg.IndexInfo(target, 600, 0, False, 0.0, "sig", shards)) as registry:
        for prov, comm in [*places, ("Hà Nội", "Phường Khác")]:
            for name in [*names, "Người Khác"]:
                folded = name_fold(name)
                want = [r[0] for r in rows if reg.place_of(r[2], r[3]) == reg.place_of(prov, comm)
                        and name_fold(" ".join(r[1].split())) == folded]  # fmt: skip
                got = registry.candidates(prov, comm, folded)
                assert [c.id_number for c in got] == want, (prov, comm, name)
                assert all(name_fold(c.full_name) == folded for c in got)


def test_name_year_key_shared_by_two_names_gives_each_its_own_people(tmp_path: Path) -> None:
    """The name-year key is a CRC-32: two names can share it. Every look-up confirms name and year, so each
    name still gets exactly its own people (by_name_and_year, by_names_and_years, candidates)."""
    import string

    from signer.cleaning import registry as reg
    from signer.cleaning.text import name_fold

    seen: dict[int, str] = {}
    rnd = random.Random(1)
    for _ in range(2_000_000):  # a birthday search: about 80,000 names
        name = "Lê Văn " + "".join(rnd.choices(string.ascii_lowercase, k=8)).capitalize()
        key = reg.name_year_key(name_fold(name), "1980")
        if key in seen and seen[key] != name:
            first, second = seen[key], name
            break
        seen[key] = name
    else:
        pytest.fail("no shared key found")
    src = tmp_path / "registry.csv"
    src.write_text("citizen_id,full_name,dob,sex,province,commune\n"
                   f"001080000001,{first},1980-01-01,Nam,Hà Nội,Phường Hàng Bạc\n"
                   f"001080000002,{second},1980-02-02,Nam,Hà Nội,Phường Hàng Bạc\n", encoding="utf-8")  # fmt: skip
    with open_registry(str(src), state_dir=tmp_path / "s") as registry:
        for name, ident in ((first, "001080000001"), (second, "001080000002")):
            folded = name_fold(name)
            assert [e.id_number for e in registry.by_name_and_year(folded, "1980")] == [ident]
            assert [e.id_number for e in registry.by_names_and_years([(folded, "1980")])[folded, "1980"]] == [ident]
            assert [e.id_number for e in registry.candidates("Hà Nội", "Phường Hàng Bạc", folded)] == [ident]


@pytest.mark.parametrize(("shards", "mapped"), [(1, True), (2, True), (2, False)])
def test_lookup_gives_the_first_row_of_each_id_in_the_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               shards: int, mapped: bool) -> None:  # fmt: skip
    """lookup_rows/lookup (covering index by ID: a shard's first row of an ID, earlier shards first) give, for
    every ID asked, the registry's first row of that ID, as a plain pass over the rows finds it: IDs repeated within a
    shard and across the two shards, IDs that JSON or SQL would treat specially (quotes, backslashes, spaces,
    non-ASCII, control characters), asked alone or mixed, in batches of more than BATCH, and IDs the registry does not have; the shards read through a memory map or,
    over MMAP_MAX_BYTES, through a page cache."""
    from signer.cleaning import registry as reg

    if not mapped:
        monkeypatch.setattr(reg, "MMAP_MAX_BYTES", 0)
    rnd = random.Random(11)
    odd = ['07 9"1', "079\\1", "0791 2", "０７９", "Đ079", "07\t9", "07\x1f9", "x" * 40, "'079'", "079,1"]
    lines = ["citizen_id,full_name,dob,sex,province,commune"]
    for k in range(3000):
        ident = f"0010{rnd.randint(0, 1800):08d}" if rnd.random() < 0.9 else rnd.choice(odd)  # IDs repeat
        cell = '"' + ident.replace('"', '""') + '"'
        lines.append(f"{cell},Người {k % 97},{1950 + k % 50}-0{1 + k % 9}-1{k % 10},{rnd.choice(['Nam', 'Nữ', ''])},"
                     f"Hà Nội,Phường {k % 5}")  # fmt: skip
    src = tmp_path / "registry.csv"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with src.open(encoding="utf-8", newline="") as fh:
        plain = list(reg._rows_to_index(list(csv.reader(fh))[1:], [0, 1, 2, 3, 4, 5], reg._Tally()))
    first: dict[str, tuple[str, str, str, str]] = {}
    for row in plain:
        first.setdefault(row[0], row[:4])
    target = tmp_path / "index.sqlite"
    assert reg.build_index(reg._Source(str(src), None), target, "sig", shards) == (3000, 0)
    with reg.Registry(reg.IndexInfo(target, 3000, 0, False, 0.0, "sig", shards)) as registry:
        assert registry._conns[0].execute("PRAGMA mmap_size").fetchone()[0] == (target.stat().st_size if mapped else 0)
        distinct, rows = registry._conns[0].execute("SELECT count(DISTINCT id), count(*) FROM person").fetchone()
        assert distinct < rows  # IDs repeated within the shard
        if shards == 2:  # and IDs in both shards, with other values
            ids = [{i for (i,) in c.execute("SELECT id FROM person")} for c in registry._conns]
            assert ids[0] & ids[1]
        digits = [i for i in first if i.isascii() and i.isdigit()]
        unknown = [f"0020{k:08d}" for k in range(50)] + ["", "0" * 12, '"', "\\"]
        plan = registry._conns[-1].execute("EXPLAIN QUERY PLAN " + reg._BY_ID_IN + "?)", ["x"]).fetchall()
        assert "COVERING INDEX person_id" in str(plan)  # the look-up by ID reads no table row
        for ids in (digits, digits + odd + unknown, list(reversed(digits[:BATCH + 5])), odd, unknown, []):
            want = {i: first[i] for i in ids if i in first}
            assert registry.lookup_rows(ids) == want
            assert {k: (e.id_number, e.full_name, e.date_of_birth, e.sex) for k, e in registry.lookup(ids).items()} == want

    def no_json(action: int, arg1: str | None, *_: str | None) -> int:
        return sqlite3.SQLITE_DENY if arg1 == "json_each" else sqlite3.SQLITE_OK

    # an SQLite without JSON functions (before 3.38, built without JSON1), as connections refusing json_each:
    # the look-ups use none, the same answers
    with reg.Registry(reg.IndexInfo(target, 3000, 0, False, 0.0, "sig", shards)) as registry:
        for conn in registry._conns:
            conn.set_authorizer(no_json)
        with pytest.raises(sqlite3.DatabaseError):
            registry._conns[0].execute("SELECT value FROM json_each('[1]')")
        for ids in ([digits[0]], ["0020000000"], digits, digits + odd + unknown, odd):
            assert registry.lookup_rows(ids) == {i: first[i] for i in ids if i in first}
