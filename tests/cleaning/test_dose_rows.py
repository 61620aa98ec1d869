"""One row per dose (issue 9, point 1): rows grouped into people, column mappings checked, unused columns warned."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from signer.cleaning.run import CheckOptions, run_checks
from signer.records import (
    Record,
    load_column_map,
    read_records,
    read_records_range,
    split_for_parallel,
)
from tests.cleaning.conftest import NOW
from tests.cleaning.test_bad_input import REGISTRY
from verifier.errors import ConfigError

HEAD = ("record_id,citizen_id,full_name,dob,sex,nationality,dose_date,vaccine_product,lot,dose_number,series_total,"
        "site_commune,site_province")  # fmt: skip
HUONG = "A1,079185001234,Nguyễn Thị Thanh Hương,1985-03-14,F,VN,{},{},L{},{},2,Phường Bến Nghé,Thành phố Hồ Chí Minh"
DUC = "B1,001062004567,Trần Văn Đức,1962-02-01,M,VN,{},{},L{},{},2,Phường Hàng Bạc,Hà Nội"


def _rows(*lines: str) -> str:
    return "\n".join([HEAD, *lines]) + "\n"


def test_dose_rows_are_grouped_into_people(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(_rows(HUONG.format("2021-08-02", "AstraZeneca", 1, 1), HUONG.format("2021-10-25", "AstraZeneca", 2, 2),
                          DUC.format("2021-09-10", "Sinopharm", 3, 1), DUC.format("2021-10-10", "Sinopharm", 4, 2),
                          DUC.format("2022-03-01", "Pfizer", 5, 3).replace(",2,Phường", ",3,Phường")), "utf-8")  # fmt: skip
    out = list(read_records(path))
    assert all(isinstance(r, Record) for r in out)
    a, b = out
    assert isinstance(a, Record) and isinstance(b, Record)
    assert (a.record_id, a.line, a.rows, len(a.doses)) == ("A1", 2, 2, 2)
    assert (b.record_id, b.line, b.rows, [d.dose_number for d in b.doses]) == ("B1", 4, 3, [1, 2, 3])
    assert (a.province, a.commune, a.doses[0].site) == ("Thành phố Hồ Chí Minh", "Phường Bến Nghé", "Phường Bến Nghé")
    assert b.doses[2].vaccine == "Pfizer" and b.doses[2].series_doses == 3


def test_rows_of_another_person_under_the_same_record_id(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(_rows(HUONG.format("2021-08-02", "AstraZeneca", 1, 1),
                          HUONG.format("2021-10-25", "AstraZeneca", 2, 2).replace("1985-03-14", "1985-03-15"),
                          DUC.format("2021-09-10", "Sinopharm", 3, 1),
                          DUC.format("2021-10-10", "Sinopharm", 4, 2).replace("Trần Văn Đức", " TRẦN  văn đức")),
                    "utf-8")  # fmt: skip
    first, other, good = list(read_records(path))
    # another date of birth: another person under record ID A1 (the checks flag the second as a duplicate)
    assert isinstance(first, Record) and isinstance(other, Record)
    assert (first.record_id, first.line, other.record_id, other.line) == ("A1", 2, "A1", 3)
    assert isinstance(good, Record) and good.rows == 2  # case and spacing of the name are the same person


def test_a_person_row_without_dose_and_without_record_id(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(_rows("A1,079185001234,Nguyễn Thị Thanh Hương,1985-03-14,F,VN,,,,,,Phường Bến Nghé,Hà Nội",
                          DUC.replace("B1,", ",").format("2021-09-10", "Sinopharm", 3, 1),
                          DUC.replace("B1,", ",").format("2021-10-10", "Sinopharm", 4, 2)), "utf-8")  # fmt: skip
    a, b = list(read_records(path))
    assert isinstance(a, Record) and a.doses == () and a.rows == 1
    assert isinstance(b, Record) and b.record_id == "" and b.rows == 2  # grouped by citizen ID, name and birth date


def test_cuts_never_separate_a_persons_rows(tmp_path: Path) -> None:
    lines = []
    for k in range(300):
        for n in range(1, 4):
            lines.append(DUC.replace("B1,", f"P{k},").format(f"2021-0{n}-1{n}", "Sinopharm", n, n).replace(",2,P", ",3,P"))
    path = tmp_path / "r.csv"
    path.write_text(_rows(*lines), "utf-8")
    whole = list(read_records(path))
    assert len(whole) == 300 and all(isinstance(r, Record) and r.rows == 3 for r in whole)
    for parts in (2, 3, 7):
        ranges = split_for_parallel(path, parts)
        got = list(itertools.chain.from_iterable(read_records_range(path, *r) for r in ranges))
        assert got == whole


def test_check_summary_counts_rows_and_people(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "r.csv"
    path.write_text(_rows(HUONG.format("2021-08-02", "AstraZeneca", 1, 1), HUONG.format("2021-10-25", "AstraZeneca", 2, 2),
                          DUC.format("2021-09-10", "Sinopharm", 3, 1), DUC.format("2021-10-10", "Sinopharm", 4, 2)),
                    "utf-8")  # fmt: skip
    reg = tmp_path / "registry.csv"
    reg.write_text(REGISTRY, encoding="utf-8")
    result = run_checks(CheckOptions(records=path, registry=str(reg), out_dir=tmp_path / "out", now=NOW, workers=1))
    assert result["input"] == {"shape": "dose_rows", "rows": 4, "people": 2, "unused_columns": [],
                               "rows_of_a_person_consecutive": True, "phones": {"usable": 0, "unusable": 0}}  # fmt: skip
    assert result["totals"]["subjects"]["verified"] == 2 and result["totals"]["doses"]["checked"] == 4


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "signer", *args], capture_output=True, text=True, check=False)


def test_unused_columns_are_warned_once(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    rows = [HUONG.format("2021-08-02", "AstraZeneca", 1, 1), HUONG.format("2021-10-25", "AstraZeneca", 2, 2)] * 1
    text = _rows(*rows).replace(HEAD, HEAD + ",phone,ghi_chu").replace("Minh\n", "Minh,0901234567,x\n")
    path.write_text(text, "utf-8")
    reg = tmp_path / "registry.csv"
    reg.write_text(REGISTRY, encoding="utf-8")
    proc = _cli("check", str(path), "--registry", str(reg), "--out", str(tmp_path / "out"), "--workers", "2",
                "--formats", "csv")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    warnings = [x for x in proc.stderr.splitlines() if "not used" in x]
    # the phone column is read (contact data, tests/cleaning/test_phone.py): only the note is unused
    assert len(warnings) == 1 and "'phone'" not in warnings[0] and "'ghi_chu'" in warnings[0], proc.stderr
    assert "0901234567" not in proc.stderr + proc.stdout
    assert "2 rows grouped into 1 people" in proc.stdout.replace(",", "")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text("utf-8"))
    assert summary["input"]["unused_columns"] == ["ghi_chu"]


MAPPINGS = {
    "index twice": {"date": ["d{i}_{i}"]},
    "index in a person field": "full_name",
    "not a list": {"lot": "lot"},
}


@pytest.mark.parametrize("broken", sorted(MAPPINGS))
def test_a_column_mapping_that_cannot_work_is_a_clear_error(tmp_path: Path, broken: str) -> None:
    base = json.loads((Path(__file__).parents[2] / "templates" / "columns.json").read_text("utf-8"))
    change = MAPPINGS[broken]
    if isinstance(change, str):
        base[change] = [*base[change], "name {i}"]
    else:
        base["dose"].update(change)
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps(base), "utf-8")
    with pytest.raises(ConfigError):
        load_column_map(str(mapping))


def test_cli_mapping_errors_are_one_line(tmp_path: Path) -> None:
    reg = tmp_path / "registry.csv"
    reg.write_text(REGISTRY, encoding="utf-8")
    path = tmp_path / "r.csv"
    path.write_text(_rows(HUONG.format("2021-08-02", "AstraZeneca", 1, 1)), "utf-8")
    base = json.loads((Path(__file__).parents[2] / "templates" / "columns.json").read_text("utf-8"))
    cases = {}
    # a dose column without {i} in a person-rows mapping used to crash with IndexError: it now means one row per dose
    custom = json.loads(json.dumps(base))
    custom["dose"]["date"] = ["Ngày tiêm mũi"]
    custom["dose"]["vaccine"] = ["vaccine_product"]
    cases["works"] = custom
    twice = json.loads(json.dumps(base))
    twice["sex"] = ["dob"]  # one column, two fields
    cases["twice"] = twice
    mixed = json.loads(json.dumps(base))
    mixed["dose"]["lot"] = ["dose{i}_lot", "lot"]
    cases["mixed"] = mixed
    results = {}
    for name, mapping in cases.items():
        m = tmp_path / f"{name}.json"
        m.write_text(json.dumps(mapping), "utf-8")
        text = path.read_text("utf-8")
        if name == "works":
            text = text.replace("dose_date", "Ngày tiêm mũi")
        if name == "mixed":
            text = text.replace("lot,", "lot,dose1_lot,", 1).replace(",L1,", ",L1,L1,")
        target = tmp_path / f"{name}.csv"
        target.write_text(text, "utf-8")
        results[name] = _cli("check", str(target), "--registry", str(reg), "--out", str(tmp_path / name),
                             "--columns", str(m), "--formats", "csv")  # fmt: skip
    assert results["works"].returncode == 0, results["works"].stderr
    for name in ("twice", "mixed"):
        proc = results[name]
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**base, "dose": {**base["dose"], "date": "x"}}), "utf-8")
    proc = _cli("check", str(path), "--registry", str(reg), "--out", str(tmp_path / "b"), "--columns", str(broken))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.startswith("error: "), proc.stderr


def test_synth_writes_one_row_per_dose(tmp_path: Path) -> None:

    proc = _cli("synth", "--out", str(tmp_path), "--records", "200", "--seed", "4", "--shape", "dose-rows")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "records.csv").read_text("utf-8")
    assert text.startswith("Mã hồ sơ,Số CCCD/CMND/Hộ chiếu,Họ và tên,Ngày sinh,Giới tính,Quốc tịch,Ngày tiêm,")
    people = [r for r in read_records(tmp_path / "records.csv") if isinstance(r, Record)]
    assert 190 <= len(people) <= 200 and sum(r.rows for r in people) > 1.5 * len(people)


def test_rows_of_a_person_need_not_be_consecutive(tmp_path: Path) -> None:
    """An export sorted by dose date scatters each person's rows: grouped all the same, same outputs."""
    from signer.cleaning.synth import SynthConfig, generate
    from signer.records import dose_rows_are_grouped

    paths = generate(tmp_path / "data", SynthConfig(records=600, seed=3, shape="dose_rows", headers="en",
                                                    malformed_rows=4))  # fmt: skip
    head, *rows = paths["records"].read_bytes().rstrip(b"\n").split(b"\n")  # (holds a line that is not UTF-8)
    assert dose_rows_are_grouped(paths["records"])
    order = sorted(range(len(rows)), key=lambda i: (rows[i].split(b",")[6:7], i))  # by dose date
    shuffled = tmp_path / "by-date.csv"
    shuffled.write_bytes(b"\n".join([head, *(rows[i] for i in order)]) + b"\n")
    assert not dose_rows_are_grouped(shuffled)
    reg = str(paths["registry"])
    one = run_checks(CheckOptions(records=paths["records"], registry=reg, out_dir=tmp_path / "a", now=NOW,
                                  formats=("csv",)))  # fmt: skip
    two = run_checks(CheckOptions(records=shuffled, registry=reg, out_dir=tmp_path / "b", now=NOW, workers=2,
                                  formats=("csv",)))  # fmt: skip
    assert two["input"]["rows_of_a_person_consecutive"] is False and two["workers"] == 1
    assert two["input"]["people"] == one["input"]["people"] and two["input"]["rows"] == one["input"]["rows"]
    assert two["reasons"] == one["reasons"] and two["totals"] == one["totals"]
    assert not list((tmp_path / "b").glob(".regroup-*"))


def test_row_values_read_as_each_value_alone() -> None:
    """The one-test-per-row reading of a dose row gives what _text gives value by value."""
    import random

    from signer.records import _cells, _has_bad_encoding, _text

    pool = ["e", "E", " ", "\u00a0", "\u0301", "\u0323", "\u0958", "\u1ec7", "\u1ec6", "a\u0306", "\x00", "\udc80",
            "\u3000", "1", "-", "\u1100\u1161", "\u11a8"]  # fmt: skip
    rng = random.Random(9)
    for _ in range(20_000):
        row = ["".join(rng.choices(pool, k=rng.randrange(4))) for _ in range(rng.randrange(1, 4))]
        want = None if _has_bad_encoding("".join(row)) else [*(_text(v) for v in row), ""]
        assert _cells(row) == want, row


def _consecutive(keys: list[int]) -> bool:
    runs = [k for k, _ in itertools.groupby(keys)]
    return len(runs) == len(set(runs))


@pytest.mark.parametrize("sent", [False, True])
def test_person_runs_of_ranges_join_like_one_stream(sent: bool) -> None:
    """The workers' PersonRuns, joined in range order, answer as one pass over the whole file would, or say they
    cannot tell (None: the caller makes that pass). ``sent``: as the main process gets them, pickled (a range
    whose record IDs rise comes without its key set)."""
    import pickle
    import random

    from signer.records import PersonRuns, runs_are_consecutive

    rng = random.Random(5)
    told = 0
    for n in range(9000):
        keys = [rng.randrange(4) for _ in range(rng.randrange(9))]
        # each key a person with a record ID ("" for some), in rising order half of the time; two keys may share one
        rids = {k: rng.choice(["", "A", "B", "C", "D"]) for k in range(4)}
        if n % 3:  # in record ID order as first met; some people without one, some sharing the one before
            order = sorted(set(keys), key=keys.index)
            rids, at = {}, 0
            for i, k in enumerate(order):
                at += rng.random() > 0.3
                rids[k] = "" if rng.random() < 0.2 else f"R{at}"
                if n % 3 == 2 and i >= 2 and rng.random() < 0.3:  # the ID of the person two before (odd)
                    rids[k] = rids[order[i - 2]]
        cuts = sorted(rng.sample(range(len(keys) + 1), min(len(keys) + 1, rng.randrange(4))))
        parts = []
        for a, b in itertools.pairwise([0, *cuts, len(keys)]):
            runs = PersonRuns()
            for k in keys[a:b]:
                runs.see(hash((rids[k], k)), rids[k])
            parts.append(pickle.loads(pickle.dumps(runs)) if sent else runs)
        answer = runs_are_consecutive(parts)
        assert answer in (None, _consecutive(keys)), (keys, rids, cuts)
        runs_cut = any(0 < c < len(keys) and keys[c - 1] == keys[c] for c in cuts)
        if n % 3 == 1 and _consecutive(keys) and not runs_cut:  # an export in record ID order, cut between people
            assert answer is True, (keys, rids, cuts)
            told += 1
    assert told > 1000


def test_a_range_in_record_id_order_is_sent_back_without_its_keys() -> None:
    """500,000 people in record ID order: the range is pickled with its record ID range, not its 500,000 keys;
    two such ranges (and a third without record IDs) still answer."""
    import pickle

    from signer.records import PersonRuns, runs_are_consecutive

    parts = []
    for k in range(2):
        runs = PersonRuns()
        for i in range(500_000):
            rid = f"R{k}{i:07d}"
            runs.see(hash((rid, "x")), rid)
        parts.append(runs)
    blank = PersonRuns()
    for i in range(3):
        blank.see(hash(("", i)), "")
    sent = [pickle.loads(pickle.dumps(p)) for p in parts]
    assert len(pickle.dumps(parts[0])) < 1000 and sent[0].closed is None and len(parts[0].closed or ()) == 499_999
    assert runs_are_consecutive(sent) is True
    assert runs_are_consecutive([*sent, pickle.loads(pickle.dumps(blank))]) is True
    assert runs_are_consecutive(sent[::-1]) is None  # the ranges' record IDs meet: the caller's pass decides
    again = PersonRuns()
    again.see(hash(("R00000007", "x")), "R00000007")  # a person of range 0 met again: reopened at once
    again.see(hash(("R1", "y")), "R1")
    again.see(hash(("R00000007", "x")), "R00000007")
    assert again.reopened and runs_are_consecutive([sent[0], again]) is False


@pytest.mark.parametrize("order", ["sorted", "half_reversed", "copied_id"])
def test_ranges_that_cannot_tell_are_settled_by_a_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       order: str) -> None:  # fmt: skip
    """Grouped dose rows, two workers, whose ranges come back without their key sets (PersonRuns): in record ID
    order, or with the second half in reverse (every run "odd"), they tell, with no pass of their own. With a
    person of the second half given the record ID of one in the middle of the first half, they cannot (that run
    may be one of the first range's, whose keys did not come back): the run makes the pass, finds the rows
    consecutive, and sorts nothing. Always the outputs of one worker."""
    from signer.cleaning.synth import SynthConfig, generate

    paths = generate(tmp_path / "data", SynthConfig(records=600, seed=6, shape="dose_rows", headers="en"))
    head, *rows = paths["records"].read_bytes().rstrip(b"\n").split(b"\n")
    people: dict[bytes, list[bytes]] = {}
    for r in rows:
        people.setdefault(r.split(b",")[0], []).append(r)
    ids = sorted(people)
    if order == "half_reversed":
        ids = ids[: len(ids) // 2] + ids[len(ids) // 2 :][::-1]
    if order == "copied_id":
        late, early = ids[len(ids) * 3 // 5], ids[len(ids) // 4]
        people[late] = [early + r[len(late) :] for r in people[late]]
    path = tmp_path / "export.csv"
    path.write_bytes(b"\n".join([head, *(r for k in ids for r in people[k])]) + b"\n")
    reg = str(paths["registry"])
    one = run_checks(CheckOptions(records=path, registry=reg, out_dir=tmp_path / "a", now=NOW, workers=1,
                                  formats=("csv",)))  # fmt: skip
    import signer.cleaning.run as run_mod

    passes: list[bool] = []
    real = run_mod.dose_rows_are_grouped
    monkeypatch.setattr(run_mod, "dose_rows_are_grouped", lambda *a, **k: passes.append(real(*a, **k)) or passes[-1])
    two = run_checks(CheckOptions(records=path, registry=reg, out_dir=tmp_path / "b", now=NOW, workers=2,
                                  formats=("csv",)))  # fmt: skip
    assert passes == ([True] if order == "copied_id" else [])  # the pass found the rows consecutive
    assert one["input"]["rows_of_a_person_consecutive"] is True
    assert two["input"] == one["input"] and two["workers"] == 2  # not started again with one worker
    assert two["reasons"] == one["reasons"] and two["totals"] == one["totals"]
    for name in ("verified.jsonl", "verified-new.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_person_in_both_ranges_is_regrouped(tmp_path: Path) -> None:
    """Each range consecutive, but one person's rows in both: two workers find out and match one worker."""
    from signer.cleaning.synth import SynthConfig, generate

    paths = generate(tmp_path / "data", SynthConfig(records=400, seed=4, shape="dose_rows", headers="en"))
    head, *rows = paths["records"].read_bytes().rstrip(b"\n").split(b"\n")
    first = rows[0].split(b",")[0]
    mine = [r for r in rows if r.split(b",")[0] == first]
    moved = tmp_path / "moved.csv"  # the first person's rows: one at the start, the others at the end
    moved.write_bytes(b"\n".join([head, mine[0], *(r for r in rows if r not in mine), *mine[1:]]) + b"\n")
    reg = str(paths["registry"])
    one = run_checks(CheckOptions(records=moved, registry=reg, out_dir=tmp_path / "a", now=NOW, workers=1,
                                  formats=("csv",)))  # fmt: skip
    two = run_checks(CheckOptions(records=moved, registry=reg, out_dir=tmp_path / "b", now=NOW, workers=2,
                                  formats=("csv",)))  # fmt: skip
    assert len(mine) > 1 and one["input"]["rows_of_a_person_consecutive"] is False
    assert two["input"] == one["input"] and two["workers"] == 1
    assert two["reasons"] == one["reasons"] and two["totals"] == one["totals"]
    for name in ("verified.jsonl", "verified-new.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert not list((tmp_path / "b").glob(".part*"))


def test_a_header_without_dose_columns_is_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # the platform's dose columns under names no mapping knows: every person would get dose_missing, silently
    path = tmp_path / "r.csv"
    path.write_text("record_id,full_name,dob,sex,citizen_id,ngay_tiem_mui,loai_vac_xin\n"
                    "A1,Lê Thị Hoa,1990,F,001190000001,2021-08-02,Pfizer\n", "utf-8")  # fmt: skip
    with caplog.at_level("WARNING", logger="signer.records"):
        [rec] = list(read_records(path))
    assert isinstance(rec, Record) and rec.doses == ()
    text = caplog.text
    assert "'ngay_tiem_mui'" in text and "'loai_vac_xin'" in text and "no dose columns found" in text
    assert "Lê Thị Hoa" not in text and "001190000001" not in text


@pytest.mark.parametrize("case", ["moved_in_capitals", "in_group_and_moved_in_capitals", "moved_in_nfd"])
def test_one_and_two_workers_agree_on_a_record_id_met_again_in_another_spelling(tmp_path: Path, case: str) -> None:
    """A person's last dose row comes back at the end of the export, the name in capitals (the same record ID):
    one worker (dose_rows_are_grouped) and two (PersonRuns) take the same key of every row (the values stripped
    and NFC) and agree on every output. Also with a row inside the person's group in capitals (two workers used
    to hash only a group's first row) and with the moved row's name in NFD (one worker used to take raw text)."""
    import unicodedata

    from signer.cleaning.synth import SynthConfig, generate

    paths = generate(tmp_path / "data", SynthConfig(records=400, seed=4, shape="dose_rows", headers="en",
                                                    error_rate=0.0))  # fmt: skip
    head, *rows = paths["records"].read_text("utf-8").rstrip("\n").split("\n")
    names = head.split(",")
    rid_col, name_col = names.index("record_id"), names.index("full_name")
    firsts = [r.split(",")[rid_col] for r in rows]
    least = 2 if case == "moved_in_capitals" else 3
    person = next(k for k in firsts if firsts.count(k) >= least and '"' not in "".join(r for r in rows if r.startswith(k))
                  and unicodedata.normalize("NFD", rows[firsts.index(k)]) != rows[firsts.index(k)])  # fmt: skip
    at = max(i for i, k in enumerate(firsts) if k == person)
    moved = rows.pop(at).split(",")
    if case == "moved_in_nfd":
        moved[name_col] = unicodedata.normalize("NFD", moved[name_col])
    else:
        moved[name_col] = moved[name_col].upper()
    assert moved[name_col] != rows[firsts.index(person)].split(",")[name_col]
    if case == "in_group_and_moved_in_capitals":
        second = rows[firsts.index(person) + 1].split(",")
        assert second[rid_col] == person
        second[name_col] = second[name_col].upper()
        rows[firsts.index(person) + 1] = ",".join(second)
    path = tmp_path / "moved.csv"
    path.write_text("\n".join([head, *rows, ",".join(moved)]) + "\n", "utf-8")
    reg = str(paths["registry"])
    one = run_checks(CheckOptions(records=path, registry=reg, out_dir=tmp_path / "a", now=NOW, workers=1,
                                  formats=("csv",)))  # fmt: skip
    two = run_checks(CheckOptions(records=path, registry=reg, out_dir=tmp_path / "b", now=NOW, workers=2,
                                  formats=("csv",)))  # fmt: skip
    if case == "moved_in_capitals":
        assert one["input"]["rows_of_a_person_consecutive"] is True and one["reasons"].get("record_id_duplicate") == 1
    else:  # the name as the reader takes it (NFC), or a spelling met inside the group: the rows are sorted
        assert one["input"]["rows_of_a_person_consecutive"] is False and "record_id_duplicate" not in one["reasons"]
    assert two["input"] == one["input"] and two["totals"] == one["totals"] and two["reasons"] == one["reasons"]
    for name in ("verified.jsonl", "verified-new.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    lists = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a" / "reconciliation").rglob("*.csv"))
    assert lists == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b" / "reconciliation").rglob("*.csv"))
    for rel in lists:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
