"""The population-registry extract, indexed once into SQLite and reused.

    >>> from signer.cleaning.registry import open_registry
    >>> reg = open_registry("registry.csv", state_dir=".cleaning-state")  # doctest: +SKIP
    >>> reg.lookup(["079185001234"])["079185001234"].sex                   # doctest: +SKIP
    'F'

Sources: a CSV file (UTF-8, BOM tolerated), a SQLite file (``.sqlite``,
``.sqlite3``, ``.db``) or a PostgreSQL URL (``postgresql://...``), the last
two with a table name (default ``registry``). Columns are found by the same
header spellings as record CSVs (templates/columns.json: ``id_number``,
``full_name``, ``date_of_birth``, ``sex``, ``province``, ``commune``).

The index is a SQLite file in the state directory, one per source. It is
rebuilt only when the source changes: a CSV or SQLite file by size and
modification time, a PostgreSQL table by its row count and a sum of row
hashes computed by the server. The build streams the source into a temp
file (one ``executemany`` over the rows in one transaction, journal and
fsync off, indexes created after the load; a big CSV is read in blocks, in
two byte ranges by two processes into two shard files) and renames it into
place, so a half-built index is
never used. A row of table ``person`` holds ID, name, date of birth, sex,
the number of its place (table ``place``: the :func:`place_of` key) and
:func:`name_year_key`, indexed by that key (the rare look-up of a commune's
people of one name goes through it too, for each birth year in table
``year``), and by ID with the name, date of birth and sex in the index
(``person_id``, covering: a look-up by ID reads no table row; the first
row wins when a shard repeats an ID), :data:`BATCH` IDs per query, the
index read through a memory map.

Registry values are personal data: this module never logs them.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import os
import re
import sqlite3
import unicodedata
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from signer.records import load_column_map, normalize_sex
from verifier.errors import ConfigError

from .checks import RegistryEntry, registry_entry
from .private import connect_private, make_private_dir
from .text import commune_key, name_fold, place_key

SCHEMA_VERSION = "9"
BATCH = 1000
# The look-ups by ID read a shard file up to this size through a memory map: only the pages of index person_id
# are touched (a 1M registry: 2 x 26 MB); a bigger file through a page cache of at most ID_CACHE_KIB, all shards
MMAP_MAX_BYTES = 128 << 20
ID_CACHE_KIB = 64 << 10
NAME_CACHE_KIB = 2 << 10  # page cache of the look-ups by name, per shard (they miss it mostly, whatever its size)
PARALLEL_MIN_BYTES = 8 << 20  # a CSV this big is indexed by two processes
COLUMNS = ("id_number", "full_name", "date_of_birth", "sex", "province", "commune")
_NAME_CACHE = 1 << 17  # distinct names kept by an index builder (about 25 MB at most)
_DMY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


@dataclass(frozen=True)
class IndexInfo:
    path: Path
    rows: int
    skipped: int  # source rows without an ID or unreadable
    reused: bool
    seconds: float
    signature: str
    shards: int = 1


def _norm_header(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split()).casefold()


def _map_columns(header: Sequence[str], where: str) -> list[int | None]:
    fields = load_column_map().fields
    normalized = [_norm_header(h) for h in header]
    out: list[int | None] = []
    for name in COLUMNS:
        col = next(
            (normalized.index(_norm_header(a)) for a in fields[name] if _norm_header(a) in normalized),
            None,
        )
        if col is None and name in ("id_number", "full_name", "date_of_birth"):
            raise ConfigError(
                f"{where}: registry has no column for {name!r} "
                f"(accepted: {', '.join(fields[name])})"
            )
        out.append(col)
    return out


def _norm_dob(value: str) -> str:
    value = value.strip()
    m = _DMY.fullmatch(value)
    if m:
        return f"{m.group(3)}-{int(m.group(2)):02d}-{int(m.group(1)):02d}"
    return value[:10]


@lru_cache(maxsize=65536)
def place_of(province: str, commune: str) -> str:
    """Look-up key of a place: folded province and commune without prefixes."""
    return place_key(province) + "|" + commune_key(commune)


def name_year_key(folded_name: str, year: str) -> int:
    """Key of (folded name, birth year): the registry-wide suggestion look-up's index. CRC-32: every look-up
    confirms the name and year of the rows it finds, so a key shared by two names only costs a row read
    (about one in 10,000 keys of a 1M registry), never a wrong answer."""
    return zlib.crc32(f"{folded_name}\x1f{year}".encode())


@dataclass
class _Tally:
    """What a builder learns besides the rows: rows skipped, the places (key -> number) and birth years."""

    skipped: int = 0
    places: dict[str, int] = field(default_factory=dict)
    years: set[str] = field(default_factory=set)


def _rows_to_index(rows: Iterable[Sequence[Any]], cols: list[int | None], stats: _Tally) -> Iterator[tuple[Any, ...]]:
    """Registry rows -> index rows (id, name, dob, sex, place number, name_year_key).

    The place number is ``stats.places``'s number of :func:`place_of` (numbered as they come); every
    birth year (``dob[:4]``) goes to ``stats.years``. ``rows`` may raise :class:`csv.Error` for a row
    (counted as skipped; the reader goes on)."""
    width = max(c for c in cols if c is not None) + 1
    c_id, c_name, c_dob, c_sex, c_prov, c_comm = cols
    nfc = unicodedata.normalize
    crc32 = zlib.crc32
    sexes: dict[str, str] = {}
    # Names repeat (about 110,000 distinct in 1M people): each distinct spelling is normalised and
    # folded once, in a bounded cache (1M people: 5.6 -> 4.8 us a row in Python, +19 MB per builder),
    # with the CRC-32 of "folded name\x1f": a row's name_year_key continues it with the year's bytes
    names: dict[str, tuple[str, int]] = {}
    places, years = stats.places, stats.years
    place_ids: dict[tuple[str, str], int] = {}  # the source's spellings -> place number (bounded)
    it = iter(rows)
    while True:
        try:
            for row in it:
                if len(row) < width:
                    stats.skipped += 1
                    continue
                ident = row[c_id]  # type: ignore[index]
                ident = (ident if type(ident) is str else str(ident or "")).strip().replace(" ", "")
                if not ident:
                    stats.skipped += 1
                    continue
                raw_name = row[c_name]  # type: ignore[index]
                if type(raw_name) is not str:
                    raw_name = str(raw_name or "")
                known = names.get(raw_name)
                if known is None:
                    clean = " ".join(nfc("NFC", raw_name).split())
                    known = (clean, crc32(f"{name_fold(clean)}\x1f".encode()))
                    if len(names) >= _NAME_CACHE:
                        names.clear()
                    names[raw_name] = known
                name, name_crc = known
                dob = row[c_dob]  # type: ignore[index]
                if type(dob) is str and len(dob) == 10 and dob[4] == dob[7] == "-":
                    pass  # the usual YYYY-MM-DD
                elif isinstance(dob, dt.date):
                    dob = dob.isoformat()
                else:
                    dob = _norm_dob(str(dob or ""))
                sex = ""
                if c_sex is not None:
                    raw = row[c_sex]
                    if type(raw) is not str:
                        raw = str(raw or "")
                    cached = sexes.get(raw)
                    if cached is None:
                        cached = normalize_sex(raw) or ""
                        if len(sexes) < 1000:  # a handful of spellings; bounded anyway
                            sexes[raw] = cached
                    sex = cached
                prov = row[c_prov] if c_prov is not None else ""
                comm = row[c_comm] if c_comm is not None else ""
                if type(prov) is not str:
                    prov = str(prov or "")
                if type(comm) is not str:
                    comm = str(comm or "")
                place = place_ids.get((prov, comm))
                if place is None:
                    place = places.setdefault(place_of(prov, comm), len(places))
                    if len(place_ids) >= 65536:
                        place_ids.clear()
                    place_ids[prov, comm] = place
                year = dob[:4]
                years.add(year)
                yield (ident, name, dob, sex, place, crc32(year.encode(), name_crc))  # name_year_key, inline
            return
        except csv.Error:
            stats.skipped += 1


# the rows of the IDs asked, from the covering index alone (an ID in a JSON array joined with json_each
# measured no faster here than the IN list)
_BY_ID_IN = "SELECT id, name, dob, sex FROM person INDEXED BY person_id WHERE id IN ("

_LINE = re.compile(r"[^\n]*\n")
_BLOCK = 1 << 20


def _range_lines(fh: IO[bytes], end: int) -> Iterator[str]:
    """The lines (each with its ``\\n``) that start before byte ``end``, from ``fh``'s position on,
    decoded as UTF-8 with replacement: the lines a binary file's iteration gives, read 1 MiB at a
    time and decoded once per block instead of a Python step per line."""
    pos = fh.tell()
    tail: list[bytes] = []  # the start of a line that goes on in the next block
    while pos < end:
        block = fh.read(min(_BLOCK, end - pos))
        if not block:
            break
        pos += len(block)
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            tail.append(block)
            continue
        tail.append(block[:cut])
        text = (b"".join(tail) if len(tail) > 1 else tail[0]).decode("utf-8", "replace")
        tail = [block[cut:]]
        yield from _LINE.findall(text)
    if pos >= end and any(tail):  # the last line starts before end: all of it (to its newline or EOF)
        tail.append(fh.readline())
    if any(tail):
        yield b"".join(tail).decode("utf-8", "replace")


class _Source:
    def __init__(self, spec: str, table: str | None):
        self.spec = spec
        self.table = table or "registry"
        self.kind = (
            "postgresql"
            if spec.startswith(("postgresql://", "postgres://"))
            else "sqlite"
            if spec.lower().endswith((".sqlite", ".sqlite3", ".db"))
            else "csv"
        )
        if self.kind != "postgresql" and not Path(spec).is_file():
            raise ConfigError(f"registry not found: {spec}")

    @property
    def identity(self) -> str:
        if self.kind == "postgresql":
            return f"pg:{_redact(self.spec)}:{self.table}"
        return f"{self.kind}:{Path(self.spec).resolve()}:{self.table if self.kind == 'sqlite' else ''}"

    def signature(self) -> str:
        if self.kind == "postgresql":
            return self.identity + ":" + self._pg_signature()
        st = Path(self.spec).stat()
        return f"{self.identity}:{st.st_size}:{st.st_mtime_ns}"

    # -- readers -----------------------------------------------------------
    def rows(self, stats: _Tally, part: tuple[int, int] | None = None) -> Iterator[tuple[str, ...]]:
        """Index rows of the source, or of one byte range of a CSV source."""
        if self.kind == "csv":
            yield from self._csv_rows(stats, part)
        elif self.kind == "sqlite":
            yield from self._sqlite_rows(stats)
        else:
            yield from self._pg_rows(stats)

    def _csv_rows(self, stats: _Tally, part: tuple[int, int] | None) -> Iterator[tuple[str, ...]]:
        try:
            fh = open(self.spec, "rb")  # noqa: SIM115
        except OSError as err:
            raise ConfigError(f"cannot open registry {self.spec}: {err.strerror}") from None
        with fh:
            first = fh.readline().decode("utf-8-sig", "replace")
            try:
                header = next(csv.reader([first]))
            except (StopIteration, csv.Error):
                raise ConfigError(f"{self.spec}: registry CSV has no header") from None
            cols = _map_columns(header, self.spec)
            start, end = part or (fh.tell(), 1 << 62)
            fh.seek(max(start, fh.tell()) if start == 0 else start)

            yield from _rows_to_index(csv.reader(_range_lines(fh, end)), cols, stats)

    def _sqlite_rows(self, stats: _Tally) -> Iterator[tuple[str, ...]]:
        try:
            conn = sqlite3.connect(f"file:{Path(self.spec).resolve()}?mode=ro", uri=True)
            cur = conn.execute(f"SELECT * FROM {_quote_sqlite(self.table)}")
        except sqlite3.Error as err:
            raise ConfigError(f"registry {self.spec} table {self.table!r}: {err}") from None
        try:
            cols = _map_columns([d[0] for d in cur.description], self.spec)
            while True:
                batch = cur.fetchmany(10000)
                if not batch:
                    break
                yield from _rows_to_index(batch, cols, stats)
        finally:
            conn.close()

    def _pg_connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.spec, autocommit=True)
        except psycopg.Error as err:
            raise ConfigError(f"registry database {_redact(self.spec)}: {str(err).strip().splitlines()[0]}") from None

    def _pg_table(self) -> Any:
        from psycopg import sql

        return sql.Identifier(*self.table.split("."))

    def _pg_signature(self) -> str:
        from psycopg import sql

        with self._pg_connect() as conn:
            try:
                row = conn.execute(
                    sql.SQL(
                        "SELECT count(*), coalesce(sum(hashtext(t::text)::bigint), 0) FROM {} AS t"
                    ).format(self._pg_table())
                ).fetchone()
            except Exception as err:
                raise ConfigError(f"registry table {self.table!r}: {str(err).strip().splitlines()[0]}") from None
        return f"{row[0]}:{row[1]}"

    def _pg_rows(self, stats: _Tally) -> Iterator[tuple[str, ...]]:
        from psycopg import sql

        with self._pg_connect() as conn:
            try:
                cur = conn.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(self._pg_table()))
                names = [d.name for d in cur.description or []]
                cols = _map_columns(names, f"{_redact(self.spec)} {self.table}")
                select = sql.SQL(", ").join(
                    sql.SQL("{}::text").format(sql.Identifier(names[c])) for c in cols if c is not None
                )
                compact: list[int | None] = []
                i = 0
                for c in cols:
                    compact.append(None if c is None else i)
                    i += c is not None
                with conn.cursor().copy(
                    sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT").format(select, self._pg_table())
                ) as copy:
                    yield from _rows_to_index(
                        (tuple(v or "" for v in r) for r in copy.rows()),
                        compact,
                        stats,
                    )
            except ConfigError:
                raise
            except Exception as err:
                raise ConfigError(f"registry table {self.table!r}: {str(err).strip().splitlines()[0]}") from None


def _redact(dsn: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", dsn)


def _quote_sqlite(name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


class Registry:
    """Read-only access to a built index (one or more shard files).

    Two connections per shard: one for the look-ups by ID (index ``person_id``, read through a memory map, or
    for a file over :data:`MMAP_MAX_BYTES` a page cache as big as that index within :data:`ID_CACHE_KIB` for
    all shards) and one for the rarer look-ups by name (table ``person``, a small cache of its own), so that
    the name look-ups' pages never push the ID index's out."""

    def __init__(self, info: IndexInfo):
        self.info = info
        self._conns: list[sqlite3.Connection] = []  # ID look-ups
        self._named: list[sqlite3.Connection] = []  # name look-ups
        paths = shard_paths(info.path, info.shards)
        for path in paths:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            size = path.stat().st_size
            if size <= MMAP_MAX_BYTES:  # read in place (no copy, no system call per page; shared by the workers)
                conn.execute(f"PRAGMA mmap_size={size}")
                conn.execute("PRAGMA cache_size=-1024")
            else:  # a very big registry: a page cache as big as the table, within the bound
                row = conn.execute("SELECT value FROM meta WHERE key = 'id_index_kib'").fetchone()
                kib = min(int(row[0]) + 512 if row else ID_CACHE_KIB, ID_CACHE_KIB // len(paths))
                conn.execute(f"PRAGMA cache_size=-{kib}")
            self._conns.append(conn)
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            conn.execute(f"PRAGMA cache_size=-{NAME_CACHE_KIB}")
            self._named.append(conn)
        self._years: list[list[str] | None] = [None] * len(self._conns)  # a shard's birth years, when asked

    @property
    def signature(self) -> str:
        """Changes whenever the source changes (part of the results-store context)."""
        return hashlib.sha256(self.info.signature.encode()).hexdigest()[:16]

    def close(self) -> None:
        for conn in self._conns + self._named:
            conn.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lookup(self, ids: Iterable[str]) -> dict[str, RegistryEntry]:
        """Registry entries by ID (the first one when the extract repeats an ID)."""
        return {key: registry_entry(*row) for key, row in self.lookup_rows(ids).items()}

    def lookup_rows(self, ids: Iterable[str]) -> dict[str, tuple[str, str, str, str]]:
        """:meth:`lookup` as (ID, name, date of birth, sex) rows, without an entry object per person."""
        wanted = list(dict.fromkeys(ids))
        out: dict[str, tuple[str, str, str, str]] = {}
        for conn in self._conns:  # earlier shards win: a later one is asked only for the IDs not found yet
            if out:
                wanted = [i for i in wanted if i not in out]
            if not wanted:
                break
            rows: list[Any] = []
            for i in range(0, len(wanted), BATCH):
                part = wanted[i : i + BATCH]
                rows += conn.execute(_BY_ID_IN + ",".join("?" * len(part)) + ")", part).fetchall()
            found = dict(zip([r[0] for r in rows], rows, strict=True))
            if len(found) < len(rows):  # the shard repeats an ID (rare): its first row, as the index does not sort by rowid
                twice = [k for k, n in Counter(r[0] for r in rows).items() if n > 1]
                for i in range(0, len(twice), BATCH):
                    part = twice[i : i + BATCH]
                    q = _BY_ID_IN + ",".join("?" * len(part)) + ") ORDER BY rowid DESC"
                    found.update((r[0], r) for r in conn.execute(q, part))  # the first row of an ID last
            out.update(found)
        return out

    def by_name_and_year(self, folded_name: str, year: str) -> list[RegistryEntry]:
        """Everyone in the registry with this folded name born in ``year`` (``YYYY``)."""
        key = name_year_key(folded_name, year)
        return [
            registry_entry(*r)
            for conn in self._named
            for r in conn.execute("SELECT id, name, dob, sex FROM person WHERE nk = ?", (key,))
            if name_fold(r[1]) == folded_name and r[2][:4] == year  # the key is a hash: confirm
        ]

    def by_names_and_years(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[RegistryEntry]]:
        """:meth:`by_name_and_year` for many (folded name, year) pairs, :data:`BATCH` keys per query."""
        keys: dict[int, list[tuple[str, str]]] = {}
        out: dict[tuple[str, str], list[RegistryEntry]] = {}
        for pair in dict.fromkeys(wanted):
            keys.setdefault(name_year_key(*pair), []).append(pair)
            out[pair] = []
        hashes = list(keys)
        for conn in self._named if hashes else ():  # shard by shard, each key's rows in index (rowid) order
            for i in range(0, len(hashes), BATCH):
                part = hashes[i : i + BATCH]
                q = "SELECT nk, id, name, dob, sex FROM person WHERE nk IN (" + ",".join("?" * len(part)) + ")"
                for nk, *row in conn.execute(q, part):
                    for folded_name, year in keys[nk]:
                        if name_fold(row[1]) == folded_name and row[2][:4] == year:  # the key is a hash: confirm
                            out[folded_name, year].append(registry_entry(*row))
        return out

    def candidates(self, province: str, commune: str, folded_name: str) -> list[RegistryEntry]:
        """People registered in that commune whose folded name is ``folded_name`` (each shard's in its order).

        Asked only to choose between several people of one name and year (rare): found through the name
        and year index, for every birth year the shard has, and the place's number, not an index of its own.
        """
        key = place_of(province, commune)
        out: list[RegistryEntry] = []
        for k, conn in enumerate(self._named):
            place = conn.execute("SELECT id FROM place WHERE key = ?", (key,)).fetchone()
            if place is None:
                continue
            if self._years[k] is None:
                self._years[k] = [y for (y,) in conn.execute("SELECT y FROM year")]
            keys = list(dict.fromkeys(name_year_key(folded_name, y) for y in self._years[k] or ()))
            found: list[tuple[Any, ...]] = []
            for i in range(0, len(keys), BATCH):
                part = keys[i : i + BATCH]
                q = ("SELECT rowid, id, name, dob, sex FROM person WHERE nk IN (" + ",".join("?" * len(part))
                     + ") AND place = ?")  # fmt: skip
                found += conn.execute(q, [*part, place[0]])
            found.sort()  # rowid order, the order of the shard's rows
            out += [registry_entry(*r[1:]) for r in found if name_fold(r[2]) == folded_name]  # the key is a hash
        return out


def shard_paths(base: Path, shards: int) -> list[Path]:
    """Shard 0 is the index path itself; shard k the same name with ``.k`` before ``.sqlite``."""
    return [base] + [base.with_suffix(f".{k}.sqlite") for k in range(1, shards)]


def index_path_for(source: str, table: str | None, state_dir: Path) -> Path:
    """The index file of one source in the state directory."""
    where = _redact(source) if source.startswith(("postgresql://", "postgres://")) else str(Path(source).resolve())
    key = hashlib.sha256(f"{where}|{table or 'registry'}".encode()).hexdigest()[:12]
    return state_dir / f"registry-{key}.sqlite"


def _read_meta(path: Path) -> dict[str, str]:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return dict(conn.execute("SELECT key, value FROM meta").fetchall())
        finally:
            conn.close()
    except sqlite3.Error:
        return {}


def _build_shard(args: tuple[_Source, Path, str, tuple[int, int] | None, int]) -> tuple[int, int]:
    """Stream the source (or one range of it) into a new shard file; returns (rows, skipped)."""
    source, target, signature, part, shards = args
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    conn = connect_private(tmp, isolation_level=None)
    stats = _Tally()
    rows = 0
    try:
        conn.executescript(
            """
            PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-65536;
            PRAGMA locking_mode=EXCLUSIVE;
            CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE person(id TEXT, name TEXT, dob TEXT, sex TEXT, place INTEGER, nk INTEGER);
            CREATE TABLE place(id INTEGER PRIMARY KEY, key TEXT UNIQUE);
            CREATE TABLE year(y TEXT PRIMARY KEY);
            """
        )
        conn.execute("BEGIN")  # one transaction, the rows streamed into it (no journal: nothing to keep)
        rows = conn.executemany("INSERT INTO person VALUES (?,?,?,?,?,?)", source.rows(stats, part)).rowcount
        conn.execute("CREATE INDEX person_name_year ON person(nk)")  # also the commune look-up's (candidates)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute("CREATE INDEX person_id ON person(id, name, dob, sex)")  # covering: the look-ups by ID
        kib = (conn.execute("PRAGMA page_count").fetchone()[0] - pages) * conn.execute("PRAGMA page_size").fetchone()[0] >> 10
        conn.executemany("INSERT INTO place VALUES (?, ?)", ((n, key) for key, n in stats.places.items()))
        conn.executemany("INSERT INTO year VALUES (?)", ((y,) for y in sorted(stats.years)))
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("signature", signature), ("schema", SCHEMA_VERSION), ("rows", str(rows)),
             ("skipped", str(stats.skipped)), ("shards", str(shards)), ("id_index_kib", str(kib))],
        )  # fmt: skip
        conn.execute("COMMIT")
        conn.close()
        os.replace(tmp, target)
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    return rows, stats.skipped


def build_index(source: _Source, target: Path, signature: str, shards: int = 1) -> tuple[int, int]:
    """Build the index; a big CSV is cut into ``shards`` ranges built by as many processes."""
    ranges: list[tuple[int, int] | None] = [None]
    if shards > 1 and source.kind == "csv":
        from signer.records import split_for_parallel

        ranges = [(s, e) for s, e, _ in split_for_parallel(source.spec, shards, group_rows=False)]
    paths = shard_paths(target, len(ranges))
    for stale in target.parent.glob(target.stem + ".*.sqlite"):
        stale.unlink(missing_ok=True)
    target.unlink(missing_ok=True)
    tasks = [(source, paths[k], signature, ranges[k], len(ranges)) for k in range(len(ranges))]
    if len(tasks) == 1:
        results = [_build_shard(tasks[0])]
    else:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(len(tasks)) as pool:
            results = pool.map(_build_shard, tasks)
    return sum(r[0] for r in results), sum(r[1] for r in results)


def open_registry(
    source: str, *, state_dir: str | Path, table: str | None = None, rebuild: bool = False
) -> Registry:
    """Index the registry unless an up-to-date index exists; open it read-only.

    Raises :class:`ConfigError` when the source is missing or unusable.
    """
    import time

    start = time.perf_counter()
    src = _Source(source, table)
    state = Path(state_dir)
    try:
        make_private_dir(state)
    except OSError as err:
        raise ConfigError(f"cannot create state directory {state}: {err.strerror}") from None
    target = index_path_for(source, table, state)
    signature = src.signature()
    meta = _read_meta(target) if target.exists() and not rebuild else {}
    shards = int(meta.get("shards", "1"))
    if (
        meta.get("signature") == signature
        and meta.get("schema") == SCHEMA_VERSION
        and all(_read_meta(p).get("signature") == signature for p in shard_paths(target, shards)[1:])
    ):
        metas = [meta] + [_read_meta(p) for p in shard_paths(target, shards)[1:]]
        info = IndexInfo(target, sum(int(m["rows"]) for m in metas), sum(int(m["skipped"]) for m in metas),
                         True, time.perf_counter() - start, signature, shards)  # fmt: skip
    else:
        big = src.kind == "csv" and Path(source).stat().st_size >= PARALLEL_MIN_BYTES
        shards = min(2, os.cpu_count() or 1) if big else 1
        try:
            rows, skipped = build_index(src, target, signature, shards)
        except sqlite3.Error as err:
            raise ConfigError(f"cannot build registry index {target}: {err}") from None
        except OSError as err:
            raise ConfigError(f"cannot build registry index {target}: {err.strerror}") from None
        shards = int(_read_meta(target).get("shards", "1"))
        info = IndexInfo(target, rows, skipped, False, time.perf_counter() - start, signature, shards)
    return Registry(info)
