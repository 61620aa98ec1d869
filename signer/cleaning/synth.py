"""Seeded synthetic registry and vaccination export with known injected errors.

    >>> from signer.cleaning.synth import SynthConfig, generate
    >>> paths = generate("synth-out", SynthConfig(records=1000, seed=7))   # doctest: +SKIP
    >>> sorted(paths)                                                      # doctest: +SKIP
    ['records', 'registry', 'truth']

Writes, into the output directory:

- ``registry.csv`` (or ``registry.sqlite``, table ``registry``): the population
  registry, Vietnamese headers, one row per person (citizens only);
- ``records.jsonl`` or ``records.csv`` (Vietnamese or English headers): the
  immunization platform's export, one record per vaccinated person;
- ``truth.jsonl``: the ground truth, one line per injected error:
  ``{"record_id", "kind", "expected": [codes], "suggestion": id|null}`` for a
  record, ``{"line", "kind", "expected": [code]}`` for a malformed row.
  Records not listed are clean and must come out verified.

People: Vietnamese family, middle and given names with diacritics (family
names weighted as in the population: Nguyễn ~38%, Trần, Lê, Phạm, ...), the
63 provinces with synthetic communes, a 12-digit CCCD consistent with sex,
century and birth year (older people may hold a 9-digit CMND), vaccine
histories with the real products, series and minimum intervals, boosters
after 3 months. Clean records carry harmless noise (upper case, extra
spaces, decomposed Unicode, the registry spelling its provinces differently)
that the checks must normalise, not flag. All dates are before 2024 except
injected future ones (2099), so a check run at any later date agrees.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import random
import sqlite3
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from signer.records import DOSE_FIELDS, Dose, Record

from .tables import load_tables
from .text import name_fold

FAMILY = [
    ("Nguyễn", 380), ("Trần", 110), ("Lê", 95), ("Phạm", 71), ("Hoàng", 51), ("Huỳnh", 30),
    ("Phan", 45), ("Vũ", 39), ("Võ", 25), ("Đặng", 21), ("Bùi", 20), ("Đỗ", 14), ("Hồ", 13),
    ("Ngô", 13), ("Dương", 10), ("Lý", 5), ("Đinh", 6), ("Trương", 6), ("Lâm", 4), ("Mai", 4),
    ("Trịnh", 4), ("Đoàn", 4), ("Lương", 3), ("Tạ", 2), ("Quách", 1), ("Thái", 2),
]  # fmt: skip
MIDDLE = {
    "M": ["Văn", "Văn", "Văn", "Hữu", "Đức", "Minh", "Quốc", "Công", "Thành", "Hoàng", "Ngọc", "Xuân", "Anh", "Duy", "Quang"],
    "F": ["Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Kim", "Thùy", "Mỹ", "Phương", "Bảo", "Hồng", "Diệu", "Minh"],
}  # fmt: skip
GIVEN = {
    "M": ["Dũng", "Hùng", "Tuấn", "Nam", "Long", "Hải", "Minh", "Sơn", "Thắng", "Cường", "Quang", "Huy",
          "Phúc", "Khánh", "Bảo", "Đạt", "Trung", "Hiếu", "Thành", "Vinh", "Tâm", "Lộc", "Phong", "Kiên",
          "Tùng", "Đức", "Hoàng", "Việt", "Khoa", "Nghĩa", "Thịnh", "Toàn", "Trí", "Quý", "An", "Duy"],
    "F": ["Hương", "Lan", "Linh", "Trang", "Hà", "Thảo", "Huyền", "Ngọc", "Nhung", "Mai", "Hạnh", "Yến",
          "Vy", "Anh", "Hằng", "Phương", "Dung", "Loan", "Thủy", "Oanh", "Quỳnh", "Tuyết", "Hồng", "Nga",
          "Ly", "Giang", "Trinh", "Nhi", "My", "Châu", "Diệp", "Ngân", "Uyên", "Xuân", "Hiền", "Thư"],
}  # fmt: skip
PLACE_WORDS = ["An", "Bình", "Tân", "Phú", "Hòa", "Thạnh", "Long", "Mỹ", "Phước", "Thuận", "Hưng",
               "Lợi", "Đông", "Tây", "Nam", "Bắc", "Trung", "Hiệp", "Lạc", "Sơn", "Thủy", "Vĩnh",
               "Quang", "Minh", "Đức", "Hải", "Thành", "Xuân", "Khánh", "Hội", "Lộc", "Định"]  # fmt: skip
FOREIGN = [("US", "John Smith"), ("KR", "Kim Min Jun"), ("JP", "Sato Haruto"), ("FR", "Marie Dubois"),
           ("GB", "Oliver Brown"), ("AU", "Emily Wilson"), ("DE", "Lukas Müller"), ("CN", "Wang Fang")]  # fmt: skip
ALPHA3 = {"US": "USA", "KR": "KOR", "JP": "JPN", "FR": "FRA", "GB": "GBR", "AU": "AUS", "DE": "DEU", "CN": "CHN"}
PRODUCTS = [("AstraZeneca", 35, 2), ("Pfizer", 20, 2), ("Sinopharm", 20, 2), ("Moderna", 10, 2),
            ("Sputnik V", 3, 2), ("Hayat-Vax", 3, 2), ("Abdala", 4, 3), ("Janssen", 5, 1)]  # fmt: skip
BOOSTERS = ["Pfizer", "Moderna", "AstraZeneca"]
LOT_PREFIX = {"AstraZeneca": "ABV", "Pfizer": "FK", "Moderna": "MD", "Sinopharm": "2021",
              "Sputnik V": "SP", "Hayat-Vax": "HV", "Abdala": "AB", "Janssen": "XD"}  # fmt: skip
UNUSED_PROVINCE_CODES = ["003", "005", "007", "009", "013", "016", "018", "097", "099"]

#: Injected record error -> reason codes that must be found (see module doc).
RECORD_KINDS = (
    "id_missing", "id_placeholder", "id_wrong_length", "id_invalid_characters", "id_separators",
    "cccd_province_unknown", "cccd_sex_mismatch", "cccd_birth_year_mismatch", "passport_format", "name_missing", "name_invalid",
    "sex_missing", "dob_missing", "dob_format", "dob_invalid_date", "dob_implausible",
    "dob_future", "registry_not_found", "registry_name_mismatch", "registry_name_diacritics",
    "registry_dob_mismatch", "registry_sex_mismatch", "dose_missing", "dose_date_invalid",
    "dose_future", "dose_before_birth", "dose_order", "dose_number_exceeds_series",
    "vaccine_unknown", "dose_interval_short", "record_id_duplicate",
)  # fmt: skip
#: Kinds after which the true registry entry is expected as the suggestion.
SUGGESTING_KINDS = frozenset(
    {"id_missing", "id_placeholder", "id_wrong_length", "id_invalid_characters", "cccd_province_unknown", "cccd_sex_mismatch",
     "cccd_birth_year_mismatch", "registry_not_found"}
)  # fmt: skip
ROW_KINDS_JSONL = ("row_bad_json", "row_bad_encoding")
ROW_KINDS_CSV = ("row_column_count", "row_bad_encoding")


@dataclass(frozen=True)
class SynthConfig:
    records: int = 1000
    seed: int = 1
    error_rate: float = 0.2  # share of records with one injected error
    noise_rate: float = 0.15  # share of clean records with harmless spelling noise
    foreigner_rate: float = 0.01
    registry_extra: float = 0.05  # registry people without a record, as a share of records
    moved_rate: float = 0.2  # vaccinated (and so exported) in another commune than the registry's, anywhere
    malformed_rows: int = 0  # malformed lines added to the export (default: records // 500)
    communes_per_province: int = 12
    fmt: str = "jsonl"  # or "csv"
    shape: str = "person_rows"  # or "dose_rows" (CSV only): one row per dose, as vaccination platforms export
    headers: str = "vi"  # CSV headers: "vi" or "en"
    registry_fmt: str = "csv"  # or "sqlite"
    kinds: tuple[str, ...] = field(default=RECORD_KINDS)
    keep_originals: bool = False  # truth.jsonl also holds each record before its error ("original")
    #: a phone column (contact data for the citizen portal, in the usual spellings; some people without
    #: one, some unusable): drawn from a generator of its own, so the rest of the files is the same either way
    phones: bool = True


@dataclass(frozen=True)
class Person:
    id_number: str
    full_name: str
    dob: str
    sex: str
    province: str  # official name
    province_short: str
    commune: str


def _phone_text(rng: random.Random, foreign: bool) -> str:
    """A fake phone number as an export writes it: mostly +84 900 xxx xxx spelt in the usual ways, about 8%
    missing and 3% unusable (a digit short, a landline, two numbers in one field)."""
    roll = rng.random()
    if roll < 0.08:
        return ""
    n = rng.randrange(10**6)
    if roll < 0.11:
        return rng.choice([f"0900 {n // 1000:03d} {n % 1000 // 10:02d}", f"024 3{n:06d}",
                           f"0900{n:06d} / 0900{(n + 1) % 10**6:06d}", "không có"])  # fmt: skip
    if foreign:
        return f"+44 7700 9{n % 100000:05d}"  # the UK's range for drama: no real subscriber
    a, b = divmod(n, 1000)
    return rng.choice([f"0900 {a:03d} {b:03d}", f"0900.{a:03d}.{b:03d}", f"+84900{n:06d}", f"84900{n:06d}",
                       f"0900{n:06d}", f"+84 900 {a:03d} {b:03d}"])  # fmt: skip


def _communes(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        kind = rng.random()
        if kind < 0.15:
            name = f"Phường {len(names) + 1}"
        else:
            prefix = "Phường" if kind < 0.45 else ("Thị trấn" if kind < 0.5 else "Xã")
            name = f"{prefix} {rng.choice(PLACE_WORDS)} {rng.choice(PLACE_WORDS)}"
        if name not in names:
            names.append(name)
    return names


class _People:
    """Deterministic person factory with unique IDs (bijective serials)."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.tables = load_tables()
        prov = json.loads((Path(__file__).parents[2] / "templates" / "provinces.json").read_text("utf-8"))
        self.provinces = [(p["code"], p["name"], p["official_name"]) for p in prov["provinces"]]
        self.family = [f for f, _ in FAMILY]
        self.family_w = [w for _, w in FAMILY]
        self.n = 0

    def name(self, sex: str) -> str:
        rng = self.rng
        parts = [rng.choices(self.family, self.family_w)[0], rng.choice(MIDDLE[sex])]
        if rng.random() < 0.25:
            parts.append(rng.choice(MIDDLE[sex]))
        parts.append(rng.choice(GIVEN[sex]))
        return " ".join(dict.fromkeys(parts)) if len(set(parts)) > 1 else " ".join(parts)

    def person(self, place: tuple[str, str, str, str]) -> Person:
        rng = self.rng
        code, short, official, commune = place
        sex = "M" if rng.random() < 0.5 else "F"
        year = rng.randint(1935, 2012)
        dob = dt.date(year, 1, 1) + dt.timedelta(days=rng.randrange(365))
        serial = (self.n * 7919 + 12345) % 1_000_000
        self.n += 1
        if year < 1975 and rng.random() < 0.15:
            ident = str((self.n * 104729) % 900_000_000 + 100_000_000)
        else:
            birth_code = code if rng.random() < 0.8 else rng.choice(self.provinces)[0]
            g = (year - 1900) // 100 * 2 + (1 if sex == "F" else 0)
            ident = f"{birth_code}{g}{year % 100:02d}{serial:06d}"
        return Person(ident, self.name(sex), dob.isoformat(), sex, official, short, commune)


def _doses(rng: random.Random, dob: str, commune: str) -> tuple[Dose, ...]:
    product, _, series = rng.choices(PRODUCTS, [w for _, w, _ in PRODUCTS])[0]
    birth = dt.date.fromisoformat(dob)
    start = max(dt.date(2021, 3, 8), birth + dt.timedelta(days=365 * 5 + 2))
    day = start + dt.timedelta(days=rng.randrange(300))
    tables = load_tables()
    count = series if rng.random() < 0.9 else max(1, series - 1)
    site = f"Trạm Y tế {commune}"
    out = []
    for n in range(1, count + 1):
        if n > 1:
            day += dt.timedelta(days=tables.min_days(product) + rng.randrange(60))
        out.append(Dose(day.isoformat(), _spelling(rng, product), _lot(rng, product), n, series, site))
    if count == series and rng.random() < 0.5:
        for n in range(series + 1, series + 1 + rng.choice((1, 1, 2))):
            day += dt.timedelta(days=tables.booster_min_days + rng.randrange(120))
            booster = rng.choice(BOOSTERS)
            out.append(Dose(day.isoformat(), _spelling(rng, booster), _lot(rng, booster), n, n, site))
    return tuple(out)


_VACCINES = json.loads((Path(__file__).parents[2] / "templates" / "vaccines.json").read_text("utf-8"))["vaccines"]


def _spelling(rng: random.Random, product: str) -> str:
    """How an export names the product: mostly its name, often the EU product code or an alias (issue 9)."""
    r = rng.random()
    if r < 0.7:
        return product
    entry = _VACCINES[product]
    if r < 0.9:
        return str(entry["mp"])
    return str(rng.choice(entry["aliases"]))


def _lot(rng: random.Random, product: str) -> str:
    return f"{LOT_PREFIX[product]}{rng.randrange(1000, 99999)}"


def _noise(rng: random.Random, rec: Record) -> Record:
    r = rng.random()
    if r < 0.4:
        return replace(rec, full_name=rec.full_name.upper())
    if r < 0.7:
        return replace(rec, full_name="  " + rec.full_name.replace(" ", "   ") + " ")
    return replace(rec, full_name=unicodedata.normalize("NFD", rec.full_name).lower())


def _strip_marks(text: str) -> str:
    out = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return out.replace("đ", "d").replace("Đ", "D")


class _Injector:
    def __init__(self, rng: random.Random, people: _People):
        self.rng = rng
        self.people = people

    def apply(self, kind: str, rec: Record) -> tuple[Record, list[str]] | None:
        """The record with the error, and the codes that must be found (None: not applicable)."""
        rng = self.rng
        ident, dob = rec.id_number, rec.date_of_birth
        cccd = len(ident) == 12
        full_dob = len(dob) == 10
        if kind == "id_missing":
            return replace(rec, id_number=""), [kind]
        if kind == "id_placeholder":
            return replace(rec, id_number=rng.choice(["-", "N/A", "Không có", "NULL", "không có", "n/a"])), ["id_missing"]
        if kind == "id_wrong_length":  # a spreadsheet's lost leading zero, a digit dropped or doubled
            lost_zero = [ident[1:]] * 2 if ident.startswith("0") else []
            bad = rng.choice([*lost_zero, ident[:-1], ident[:5] + ident[4] + ident[5:]])
            return replace(rec, id_number=bad), [kind]
        if kind == "id_invalid_characters":
            i = rng.randrange(len(ident))
            bad = ident[:i] + {"0": "O", "1": "l"}.get(ident[i], rng.choice("OlBx")) + ident[i + 1 :]
            return replace(rec, id_number=bad), [kind]
        if kind == "id_separators":
            sep = rng.choice([" ", " ", ".", "-"])
            parts = [ident[:3], ident[3:6], ident[6:]]
            return replace(rec, id_number=sep.join(parts)), [kind]
        if kind == "cccd_province_unknown" and cccd:
            return replace(rec, id_number=rng.choice(UNUSED_PROVINCE_CODES) + ident[3:]), [kind]
        if kind == "cccd_sex_mismatch" and cccd:
            g = int(ident[3]) ^ 1
            return replace(rec, id_number=ident[:3] + str(g) + ident[4:]), [kind]
        if kind == "cccd_birth_year_mismatch" and cccd:
            yy = (int(ident[4:6]) + rng.choice((1, 9, 10))) % 100
            return replace(rec, id_number=ident[:4] + f"{yy:02d}" + ident[6:]), [kind]
        if kind == "name_missing":
            return replace(rec, full_name=""), [kind]
        if kind == "name_invalid":
            words = rec.full_name.split()
            words[-1] = words[-1] + rng.choice("0123456789@#")
            return replace(rec, full_name=" ".join(words)), [kind]
        if kind == "sex_missing":
            return replace(rec, sex=""), [kind]
        if kind == "dob_missing":
            return replace(rec, date_of_birth=""), [kind]
        if kind == "dob_format" and full_dob:
            y, m, d = dob.split("-")
            return replace(rec, date_of_birth=rng.choice([f"{d}/{m}/{y}", f"{y}{m}{d}", f"{d}-{m}-{y}"])), [kind]
        if kind == "dob_invalid_date":
            return replace(rec, date_of_birth=f"{dob[:4]}-02-30"), [kind]
        rest = "-02-28" if dob[4:] == "-02-29" else dob[4:]  # 1890 and 2099 are no leap years
        if kind == "dob_implausible":
            return replace(rec, date_of_birth="1890" + rest), [kind]
        if kind == "dob_future":
            return replace(rec, date_of_birth="2099" + rest), [kind]
        if kind == "registry_not_found" and cccd:
            serial = (int(ident[6:]) + 500_000 + rng.randrange(1, 1000)) % 1_000_000
            return replace(rec, id_number=ident[:6] + f"{serial:06d}"), [kind]
        if kind == "registry_name_mismatch":
            words = rec.full_name.split()
            sex = rec.sex or "M"
            new = rng.choice([g for g in GIVEN[sex] if g != words[-1]])
            return replace(rec, full_name=" ".join([*words[:-1], new])), [kind]
        if kind == "registry_name_diacritics":
            plain = _strip_marks(rec.full_name)
            if plain == rec.full_name:
                return None
            return replace(rec, full_name=plain), [kind]
        if kind == "registry_dob_mismatch" and full_dob:
            day = dt.date.fromisoformat(dob)
            other = dt.date(day.year, 1, 1) + dt.timedelta(days=rng.randrange(365))
            if other == day:
                return None
            return replace(rec, date_of_birth=other.isoformat()), [kind]
        if kind == "registry_sex_mismatch" and rec.sex:
            flipped = "F" if rec.sex == "M" else "M"
            return replace(rec, sex=flipped), [kind]  # the ID is right: one cause, one reason
        if kind == "dose_missing":
            return replace(rec, doses=()), [kind]
        doses = list(rec.doses)
        if kind == "dose_date_invalid" and doses:
            i = rng.randrange(len(doses))
            y, m, d = doses[i].date.split("-")
            doses[i] = replace(doses[i], date=rng.choice([f"{d}/{m}/{y}", f"{y}-13-{d}", f"{y}-02-31"]))
            return replace(rec, doses=tuple(doses)), [kind]
        if kind == "dose_future" and doses:
            doses[-1] = replace(doses[-1], date="2099-01-15")
            return replace(rec, doses=tuple(doses)), [kind]
        if kind == "dose_before_birth" and doses and full_dob:
            before = dt.date.fromisoformat(dob) - dt.timedelta(days=rng.randrange(1, 400))
            doses[0] = replace(doses[0], date=before.isoformat())
            return replace(rec, doses=tuple(doses)), [kind]
        if kind == "dose_order" and len(doses) >= 2 and doses[1].dose_number <= doses[0].series_doses:
            a, b = doses[0], doses[1]
            doses[0], doses[1] = replace(a, dose_number=b.dose_number), replace(b, dose_number=a.dose_number)
            return replace(rec, doses=tuple(doses)), [kind]
        if kind == "dose_number_exceeds_series" and doses:
            last = doses[-1]
            if last.dose_number >= 2:
                doses[-1] = replace(last, series_doses=last.dose_number - 1)
            else:
                doses[-1] = replace(last, dose_number=last.series_doses + 1)
            return replace(rec, doses=tuple(doses)), [kind]
        if kind == "vaccine_unknown" and doses:
            i = rng.randrange(len(doses))
            doses[i] = replace(doses[i], vaccine=rng.choice(["Covaxin", "Sinovac X", "Novavax-VN", "Nanocovax"]))
            return replace(rec, doses=tuple(doses)), [kind]
        if kind == "dose_interval_short" and len(doses) >= 2 and doses[1].dose_number <= doses[1].series_doses:
            first = dt.date.fromisoformat(doses[0].date)
            doses[1] = replace(doses[1], date=(first + dt.timedelta(days=rng.randrange(1, 10))).isoformat())
            return replace(rec, doses=tuple(doses)), [kind]
        return None


def generate(out_dir: str | Path, cfg: SynthConfig) -> dict[str, Path]:
    """Write registry, records and ground truth; returns their paths."""
    if cfg.shape == "dose_rows":
        cfg = replace(cfg, fmt="csv")  # one row per dose is a CSV shape
    rng = random.Random(cfg.seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    people = _People(rng)
    places = [
        (code, short, official, commune)
        for code, short, official in people.provinces
        for commune in _communes(rng, cfg.communes_per_province)
    ]
    weights = [rng.paretovariate(1.5) for _ in places]  # big cities and small communes

    total = cfg.records + int(cfg.records * cfg.registry_extra)
    registry_path = out / ("registry.sqlite" if cfg.registry_fmt == "sqlite" else "registry.csv")
    records_path = out / f"records.{cfg.fmt}"
    truth_path = out / "truth.jsonl"
    # Same (folded name, date of birth or year, sex) anywhere in the registry: a suggestion must be unique.
    seen_full: dict[int, int] = {}
    seen_year: dict[int, int] = {}

    def people_stream() -> Iterator[Person]:
        for chosen in rng.choices(places, weights, k=total):
            yield people.person(chosen)

    persons: list[Person] = []
    with _RegistryWriter(registry_path) as reg:
        for p in people_stream():
            reg.write(p)
            k = (name_fold(p.full_name), p.sex)
            seen_full[hash((*k, p.dob))] = seen_full.get(hash((*k, p.dob)), 0) + 1
            seen_year[hash((*k, p.dob[:4]))] = seen_year.get(hash((*k, p.dob[:4])), 0) + 1
            persons.append(p)
    vaccinated = persons[: cfg.records]
    rng.shuffle(vaccinated)
    del persons

    malformed = cfg.malformed_rows if cfg.malformed_rows else cfg.records // 500
    bad_at = set(rng.sample(range(cfg.records), min(malformed, cfg.records)))
    injector = _Injector(rng, people)
    phone_rng = random.Random(f"phones-{cfg.seed}")
    writer = _RecordsWriter(records_path, cfg)
    with writer, truth_path.open("w", encoding="utf-8") as truth:
        last_id = ""
        recent_ids: list[str] = []
        bad_done: list[str] = []
        for i, p in enumerate(vaccinated):
            if i in bad_at:
                kinds = ROW_KINDS_CSV if cfg.fmt == "csv" else ROW_KINDS_JSONL
                kind = kinds[len(bad_done) % len(kinds)]
                bad_done.append(kind)
                line = writer.write_malformed(kind)
                truth.write(json.dumps({"line": line, "kind": kind, "expected": [kind]}) + "\n")
            foreign = rng.random() < cfg.foreigner_rate
            phone = _phone_text(phone_rng, foreign) if cfg.phones else None
            if foreign:
                nat, name = rng.choice(FOREIGN)
                nat = ALPHA3[nat] if rng.random() < 0.5 else nat  # exports use both ISO 3166-1 forms
                rec = Record(
                    record_id=f"R{i:08d}", full_name=name, date_of_birth=p.dob, sex=p.sex,
                    nationality=nat, id_number=f"{rng.choice('BCEKMN')}{rng.randrange(10**6, 10**7)}",
                    doses=_doses(rng, p.dob, p.commune), province=p.province, commune=p.commune,
                )  # fmt: skip
            else:
                dob = p.dob[:4] if p.dob < "1950" and rng.random() < 0.2 else p.dob
                rec = Record(
                    record_id=f"R{i:08d}", full_name=p.full_name, date_of_birth=dob, sex=p.sex,
                    nationality="VNM" if rng.random() < 0.2 else "VN", id_number=p.id_number,
                    doses=_doses(rng, p.dob, p.commune),
                    province=p.province, commune=p.commune,
                )  # fmt: skip
            if rng.random() < cfg.moved_rate:  # the export gives where the vaccination was
                _, _, official, commune = rng.choices(places, weights)[0]
                rec = replace(rec, province=official, commune=commune,
                              doses=tuple(replace(d, site=f"Trạm Y tế {commune}") for d in rec.doses))  # fmt: skip
            entry: dict[str, Any] | None = None
            if rng.random() < cfg.error_rate:
                kind = rng.choice(cfg.kinds)
                if kind == "passport_format":
                    nat, name = rng.choice(FOREIGN)
                    nat = ALPHA3[nat] if rng.random() < 0.5 else nat
                    bad = rng.choice(["AB-12", "12345", "C 12/345"])
                    applied: tuple[Record, list[str]] | None = (
                        replace(rec, nationality=nat, full_name=name, id_number=bad), ["passport_format"]
                    )
                elif kind == "record_id_duplicate" and cfg.shape == "dose_rows" and len(recent_ids) >= 2:
                    # not the previous person's ID: adjacent dose rows with one ID are one person
                    applied = (replace(rec, record_id=recent_ids[-2]), ["record_id_duplicate"])
                elif kind == "record_id_duplicate" and last_id and cfg.shape != "dose_rows":
                    applied = (replace(rec, record_id=last_id), ["record_id_duplicate"])
                elif foreign or kind == "record_id_duplicate":
                    applied = None
                else:
                    applied = injector.apply(kind, rec)
                if applied is not None:
                    original = rec
                    rec, expected = applied
                    suggestion = None
                    if kind == "id_separators":
                        suggestion = p.id_number  # the repaired ID, always
                    elif kind in SUGGESTING_KINDS:
                        k = (name_fold(p.full_name), p.sex)
                        counts = seen_full if len(rec.date_of_birth) == 10 else seen_year
                        if counts.get(hash((*k, rec.date_of_birth))) == 1:
                            suggestion = p.id_number
                    entry = {"record_id": rec.record_id, "kind": kind, "expected": expected,
                             "suggestion": suggestion, "line": 0}  # fmt: skip
                    if kind in SUGGESTING_KINDS or kind == "id_separators":
                        entry["true_id"] = p.id_number  # whether or not a unique suggestion can find it
                    if cfg.keep_originals:
                        entry["original"] = original.to_json()
                        if phone:
                            entry["original"]["phone"] = phone  # as written
            elif rng.random() < cfg.noise_rate:
                rec = _noise(rng, rec)
            line = writer.write(rec, phone)
            if entry is not None:
                entry["line"] = line
                truth.write(json.dumps(entry, ensure_ascii=False) + "\n")
            last_id = rec.record_id
            recent_ids = [*recent_ids[-1:], rec.record_id]
    return {"registry": registry_path, "records": records_path, "truth": truth_path}


class _RegistryWriter:
    HEADER = ("Số định danh", "Họ và tên", "Ngày sinh", "Giới tính", "Tỉnh/Thành phố", "Xã/Phường")

    def __init__(self, path: Path):
        self.path = path
        self.tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
        self.rows: list[tuple[str, ...]] = []

    def __enter__(self) -> _RegistryWriter:
        self.tmp.unlink(missing_ok=True)
        if self.path.suffix == ".sqlite":
            self.conn: sqlite3.Connection | None = sqlite3.connect(self.tmp)
            self.conn.execute(
                "CREATE TABLE registry (citizen_id TEXT, full_name TEXT, date_of_birth TEXT, "
                "sex TEXT, province TEXT, commune TEXT)"
            )
            self.fh = None
        else:
            self.conn = None
            self.fh = self.tmp.open("w", encoding="utf-8", newline="")
            self.csv = csv.writer(self.fh)
            self.csv.writerow(self.HEADER)
        return self

    def write(self, p: Person) -> None:
        row = (p.id_number, p.full_name, p.dob, "Nam" if p.sex == "M" else "Nữ", p.province_short, p.commune)
        if self.conn is not None:
            self.rows.append(row)
            if len(self.rows) >= 50_000:
                self.conn.executemany("INSERT INTO registry VALUES (?,?,?,?,?,?)", self.rows)
                self.rows.clear()
        else:
            self.csv.writerow(row)

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.executemany("INSERT INTO registry VALUES (?,?,?,?,?,?)", self.rows)
            self.conn.commit()
            self.conn.close()
        elif self.fh is not None:
            self.fh.close()
        if exc[0] is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


class _RecordsWriter:
    MAX_DOSES = 5
    EN = ("record_id", "full_name", "date_of_birth", "sex", "nationality", "id_number", "province", "commune")
    VI = ("Mã hồ sơ", "Họ và tên", "Ngày sinh", "Giới tính", "Quốc tịch", "Số CCCD/CMND/Hộ chiếu",
          "Tỉnh/Thành phố", "Xã/Phường")  # fmt: skip
    DOSE_EN = ("dose{i}_date", "dose{i}_vaccine", "dose{i}_lot", "dose{i}_number", "dose{i}_series", "dose{i}_site")
    DOSE_VI = ("Mũi {i} - Ngày tiêm", "Mũi {i} - Vắc xin", "Mũi {i} - Số lô", "Mũi {i} - Mũi số",
               "Mũi {i} - Số mũi phác đồ", "Mũi {i} - Nơi tiêm")  # fmt: skip
    #: One row per dose, as vaccination platforms export (issue 9): no residence, the site's place instead.
    ROWS_EN = ("record_id", "citizen_id", "full_name", "dob", "sex", "nationality", "dose_date", "vaccine_product",
               "lot", "dose_number", "series_total", "site_commune", "site_province")  # fmt: skip
    PHONE_EN, PHONE_VI = "phone", "Số điện thoại"
    ROWS_VI = ("Mã hồ sơ", "Số CCCD/CMND/Hộ chiếu", "Họ và tên", "Ngày sinh", "Giới tính", "Quốc tịch", "Ngày tiêm",
               "Vắc xin", "Số lô", "Mũi số", "Số mũi phác đồ", "Xã/Phường nơi tiêm", "Tỉnh/Thành phố nơi tiêm")  # fmt: skip

    def __init__(self, path: Path, cfg: SynthConfig):
        self.path = path
        self.cfg = cfg
        self.line = 0
        self.vi = cfg.headers == "vi"
        self.width = len(self.ROWS_EN) if cfg.shape == "dose_rows" else len(self.EN) + self.MAX_DOSES * len(self.DOSE_EN)
        self.width += cfg.phones
    def __enter__(self) -> _RecordsWriter:
        self.fh = self.path.open("wb")
        phone = [self.PHONE_VI if self.vi else self.PHONE_EN] if self.cfg.phones else []
        if self.cfg.shape == "dose_rows":
            self._csv_line([*(self.ROWS_VI if self.vi else self.ROWS_EN), *phone])
        elif self.cfg.fmt == "csv":
            head = [*(self.VI if self.vi else self.EN), *phone]
            for i in range(1, self.MAX_DOSES + 1):
                head += [h.format(i=i) for h in (self.DOSE_VI if self.vi else self.DOSE_EN)]
            self._csv_line(head)
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()

    def _csv_line(self, values: list[str]) -> int:
        import io

        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(values)
        self.fh.write(buf.getvalue().encode("utf-8"))
        self.line += 1
        return self.line

    def write(self, rec: Record, phone: str | None = None) -> int:
        """Write one record (``phone``: as written in the export; None: no phone column)."""
        if self.cfg.fmt != "csv":
            obj = rec.to_json()
            if phone:
                obj["phone"] = phone
            self.fh.write((json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8"))
            self.line += 1
            return self.line
        tail = [] if phone is None else [phone]
        sex = rec.sex
        if self.vi:
            sex = {"M": "Nam", "F": "Nữ", "X": "Khác"}.get(sex, sex)
        if self.cfg.shape == "dose_rows":
            person = [rec.record_id, rec.id_number, rec.full_name, rec.date_of_birth, sex, rec.nationality]
            first = 0
            for d in rec.doses or (None,):
                dose = [d.date, d.vaccine, d.lot, str(d.dose_number), str(d.series_doses)] if d else [""] * 5
                line = self._csv_line([*person, *dose, rec.commune, rec.province, *tail])
                first = first or line
            return first
        row = [rec.record_id, rec.full_name, rec.date_of_birth, sex, rec.nationality, rec.id_number,
               rec.province, rec.commune, *tail]  # fmt: skip
        for i in range(self.MAX_DOSES):
            if i < len(rec.doses):
                row += [str(getattr(rec.doses[i], f)) for f in DOSE_FIELDS]
            else:
                row += [""] * len(DOSE_FIELDS)
        return self._csv_line(row)

    def write_malformed(self, kind: str) -> int:
        if kind == "row_bad_json":
            self.fh.write(b'{"record_id": "BROKEN", "full_name": \n')
        elif kind == "row_bad_encoding":
            if self.cfg.fmt == "csv":
                self.fh.write(b"BADENC," + "Nguyễn Văn A".encode("cp1258", "replace") + b"\xff\xfe" + b",1980"
                              + b"," * (self.width - 3) + b"\n")  # fmt: skip
            else:
                self.fh.write(b'{"record_id": "BADENC", "full_name": "Nguy\xe1\xbb\x85n \xff\xfe"}\n')
        elif kind == "row_column_count":
            self.fh.write("SHORT,Nguyễn Văn A,1980\n".encode())
        self.line += 1
        return self.line
