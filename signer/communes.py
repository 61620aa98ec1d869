"""One ZIP per commune of a finished batch folder, for distribution (issue 10).

    >>> # from signer.communes import write_commune_zips
    >>> # write_commune_zips(Path("out"), Path("out/communes"))
    >>> # [PosixPath('out/communes/phuong-ben-nghe--thanh-pho-ho-chi-minh--3f2a9c1b0d.zip'), ...]

Works from the batch folder alone, through its ``manifest.jsonl`` (made from
the ledger by ``signer batch``: one line per *current* certificate, so
superseded, revoked and released ones are not in it) with each
certificate's ``province``, ``commune`` (ledger schema version 3), files and
their SHA-256. Each ZIP holds, for the records of one commune:

- ``index.csv``: ``record_id, uvci, files`` (no citizen ID, no name), by record id;
- the PDF passports and QR PNGs, by name; each file's SHA-256 is checked
  against the manifest first (a damaged or missing file stops with an
  error: run the batch again, it writes it again).

**Deterministic**: the same certificates give the same bytes (entries
stored, not deflated, so no zlib version can change them; fixed 1980-01-01
timestamps and permissions; sorted names). A ZIP whose bytes did not change
is left as it is (same mtime). Each ZIP's comment is the SHA-256 of what it
is made of (its index, each file's name and SHA-256 from the manifest): a
ZIP that already carries the comment a run would write is left without
reading a file, so a correction run over a large folder reads only the
files of the communes that changed (a ZIP cut short, or one without that
comment, is written again; damage inside a whole ZIP is not looked for).
**Atomic**: written as ``.NAME.partial``, fsynced, renamed, then the
folder fsynced; what a run killed meanwhile leaves (its ``.NAME.partial``
files, its ``.zips-*`` scratch folder, the ``.batch`` mark's temporary
file) is removed by the next run into DEST. ZIPs of this folder that no
longer have a current certificate (all revoked or moved) are removed;
``DEST/.batch`` records which batch folder DEST belongs to, and another
batch's DEST is refused.

**Names**: ``<commune>--<province>--<hash>.zip``: a readable ASCII slug of
each (diacritics folded, "đ" -> "d", anything else -> "-", cut to 40 and
30 characters) and 10 hex digits of SHA-256 of the commune's key, so two
communes whose slugs collide (same letters, other diacritics; non-Latin
scripts) still get two ZIPs. The key is the NFC text with spaces collapsed,
case folded and the tone mark placed the new way ("Hoà" = "Hòa",
:func:`signer.cleaning.text.tone_key`): spellings of one commune go to one
ZIP, communes that differ in a diacritic do not. Records without a commune
go to ``no-commune--...zip``.

Memory stays flat: the manifest is grouped through a temporary SQLite file.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signer.cleaning.text import fold, tone_key
from verifier.errors import ConfigError

MANIFEST_NAME = "manifest.jsonl"  # = signer.manifest.MANIFEST_NAME (not imported: no signing code needed here)
INDEX_NAME = "index.csv"
INDEX_COLUMNS = ("record_id", "uvci", "files")
#: What a commune's ZIP carries of each certificate's files.
DISTRIBUTED = (".pdf", ".png")
#: ``DEST/.batch``: the batch folder DEST's ZIPs were made from.
SOURCE_MARK = ".batch"
#: ``DEST/.zips-XXXXXXXX/``: a run's scratch folder (the manifest grouped by commune).
WORK_PREFIX = ".zips-"
#: Every entry's timestamp: the earliest a ZIP can hold (deterministic output).
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
#: Each ZIP's comment: this tag, then the SHA-256 of what it is made of (:func:`_content_comment`).
CONTENT_TAG = b"vn-dcc commune zip sha256:"
CONTENT_VERSION = b"vn-dcc commune zip 1"
#: The names this module gives its ZIPs (stale ones are removed only if they match).
ZIP_NAME = re.compile(r"[a-z0-9-]{1,80}--[0-9a-f]{10}\.zip")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,150}")
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class CommuneZip:
    path: Path
    province: str  # as written in the records (the alphabetically first spelling)
    commune: str
    certificates: int
    changed: bool  # written now (False: the same bytes were already there)


@dataclass(frozen=True)
class ZipRun:
    """What one run of :func:`commune_zips` did."""

    dest: Path
    zips: list[CommuneZip]  # every current commune's ZIP, by name
    removed: list[str]  # names of ZIPs of communes without a current certificate any more


def commune_key(province: str, commune: str) -> str:
    """What makes two records' places the same commune."""
    return f"{tone_key(province)}\x1f{tone_key(commune)}"


def slug(text: str, limit: int) -> str:
    """ASCII letters, digits and single hyphens, at most ``limit`` characters ("" if none)."""
    return _SLUG_JUNK.sub("-", fold(text)).strip("-")[:limit].strip("-")


def zip_name(province: str, commune: str) -> str:
    """The file name of a commune's ZIP: readable slugs and a hash of the commune's key."""
    digest = hashlib.sha256(commune_key(province, commune).encode("utf-8", "surrogatepass")).hexdigest()[:10]
    if not tone_key(commune) and not tone_key(province):
        return f"no-commune--{digest}.zip"
    head = slug(commune, 40) or "commune"
    province_slug = slug(province, 30)
    return f"{head}--{province_slug}--{digest}.zip" if province_slug else f"{head}--{digest}.zip"


def write_commune_zips(batch_dir: Path, dest_dir: Path) -> list[Path]:
    """Write one ZIP per commune of the current certificates of ``batch_dir``
    into ``dest_dir`` (created if needed); returns their paths, by name.

    Raises :class:`ConfigError` when a batch is running in ``batch_dir``
    (its manifest is not final), when the folder has no manifest, when a
    file is missing or does not match the manifest, or when ``dest_dir``
    holds the ZIPs of another batch folder.
    """
    return [z.path for z in commune_zips(batch_dir, dest_dir).zips]


def commune_zips(batch_dir: Path, dest_dir: Path) -> ZipRun:
    """:func:`write_commune_zips` with what each ZIP holds."""
    try:
        fd = os.open(batch_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as err:
        raise ConfigError(f"cannot open the batch folder {batch_dir}: {err.strerror}") from None
    try:
        try:  # shared: several ZIP runs may read one folder; a batch (exclusive) may not write meanwhile
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"a batch is running in {batch_dir}; make the ZIPs when it has ended") from None
        return write_zips(batch_dir, dest_dir)
    finally:
        os.close(fd)


def write_zips(batch_dir: Path, dest_dir: Path) -> ZipRun:
    """The work of :func:`commune_zips`, for a caller that holds the batch
    folder's lock itself (``signer batch --zip-per-commune``)."""
    manifest = batch_dir / MANIFEST_NAME
    if not manifest.is_file():
        raise ConfigError(f"{batch_dir} has no {MANIFEST_NAME}: not a finished batch folder")
    source = str(batch_dir.resolve())
    try:
        dest_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        dest_fd = os.open(dest_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as err:
        raise ConfigError(f"cannot use {dest_dir}: {err.strerror}") from None
    try:
        try:
            fcntl.flock(dest_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"commune ZIPs are being written into {dest_dir} by another run") from None
        _claim(dest_dir, source)
        _remove_leftovers(dest_dir)
        with tempfile.TemporaryDirectory(prefix=WORK_PREFIX, dir=dest_dir) as tmp:
            groups = _Groups(Path(tmp) / "groups.sqlite")
            try:
                groups.load(manifest)
                made = [_write_zip(batch_dir, dest_dir, *group) for group in groups.each()]
            finally:
                groups.close()
        keep = {z.path.name for z in made}
        removed = sorted(p.name for p in dest_dir.iterdir() if ZIP_NAME.fullmatch(p.name) and p.name not in keep)
        for name in removed:
            (dest_dir / name).unlink()  # no current certificate of that commune any more
        os.fsync(dest_fd)
    finally:
        os.close(dest_fd)
    return ZipRun(dest_dir, sorted(made, key=lambda z: z.path.name), removed)


def _remove_leftovers(dest_dir: Path) -> None:
    """What a run killed in DEST left (this run holds DEST's lock, so no
    other run is using them): its unfinished ZIPs and ``.batch`` mark, and
    its scratch folder."""
    for leftover in dest_dir.iterdir():
        name = leftover.name
        with contextlib.suppress(OSError):
            if (name.startswith(".") and name.endswith(".zip.partial")) or name == _tmp_name(SOURCE_MARK):
                leftover.unlink()
            elif name.startswith(WORK_PREFIX) and stat.S_ISDIR(leftover.lstat().st_mode):
                shutil.rmtree(leftover)


def _claim(dest_dir: Path, source: str) -> None:
    mark = dest_dir / SOURCE_MARK
    try:
        owner = mark.read_text("utf-8").rstrip("\n")
    except FileNotFoundError:
        owner = None
    except OSError as err:
        raise ConfigError(f"cannot read {mark}: {err.strerror}") from None
    if owner is None:
        if any(ZIP_NAME.fullmatch(p.name) for p in dest_dir.iterdir()):
            raise ConfigError(f"{dest_dir} holds ZIPs of unknown origin; give the commune ZIPs a folder of their own")
        _write_file(mark, (source + "\n").encode("utf-8"), mode=0o644)
    elif owner != source:
        raise ConfigError(
            f"{dest_dir} holds the commune ZIPs of another batch folder ({owner}); give each batch its own"
        )


class _Groups:
    """The manifest's certificates grouped by commune, in a temporary SQLite file."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute(
            "CREATE TABLE certs (gkey TEXT NOT NULL, province TEXT NOT NULL, commune TEXT NOT NULL, "
            "record_id TEXT NOT NULL UNIQUE, uvci TEXT NOT NULL, files TEXT NOT NULL)"
        )

    def close(self) -> None:
        self.db.close()

    def load(self, manifest: Path) -> None:
        self.db.execute("BEGIN")
        rows: list[tuple[str, ...]] = []
        try:
            with manifest.open(encoding="utf-8") as fh:
                for number, line in enumerate(fh, 1):
                    if line.strip():
                        rows.append(_row(manifest, number, line))
                    if len(rows) >= 5000:
                        self._insert(rows)
                        rows = []
            self._insert(rows)
        except UnicodeDecodeError:
            raise ConfigError(f"{manifest} is not UTF-8 text") from None
        self.db.execute("COMMIT")

    def _insert(self, rows: list[tuple[str, ...]]) -> None:
        try:
            self.db.executemany("INSERT INTO certs VALUES (?, ?, ?, ?, ?, ?)", rows)
        except sqlite3.IntegrityError:
            raise ConfigError("the manifest lists a record twice; make it again (signer ledger manifest)") from None

    def each(self) -> Iterator[tuple[str, str, list[tuple[str, str, list[list[str]]]]]]:
        """(province, commune, [(record_id, uvci, [[file, sha256], ...]), ...]) per commune."""
        keys = [k for (k,) in self.db.execute("SELECT DISTINCT gkey FROM certs ORDER BY gkey")]
        for key in keys:
            province, commune = self.db.execute(
                "SELECT MIN(province), MIN(commune) FROM certs WHERE gkey = ?", (key,)
            ).fetchone()
            certs = [
                (rid, uvci, json.loads(files))
                for rid, uvci, files in self.db.execute(
                    "SELECT record_id, uvci, files FROM certs WHERE gkey = ? ORDER BY record_id", (key,)
                )
            ]
            yield province, commune, certs


def _row(manifest: Path, number: int, line: str) -> tuple[str, ...]:
    where = f"{manifest}, line {number}"
    try:
        entry: Any = json.loads(line)
    except ValueError:
        raise ConfigError(f"{where}: not JSON") from None
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: not a JSON object")
    rid, uvci, files, digests = (entry.get(k) for k in ("record_id", "uvci", "files", "sha256"))
    province, commune = entry.get("province") or "", entry.get("commune") or ""
    if not (isinstance(rid, str) and _FILE_NAME.fullmatch(rid) and isinstance(uvci, str) and uvci.isprintable()):
        raise ConfigError(f"{where}: no usable record_id and uvci")
    if not (isinstance(province, str) and isinstance(commune, str)):
        raise ConfigError(f"{where}: province and commune must be text")
    try:
        f"{province}{commune}".encode()
    except UnicodeEncodeError:
        raise ConfigError(f"{where}: province or commune is not valid Unicode text") from None
    if not (isinstance(files, list) and isinstance(digests, list) and len(files) == len(digests)):
        raise ConfigError(f"{where}: 'files' and 'sha256' do not match (not a manifest made by signer batch?)")
    pairs = []
    for name, digest in zip(files, digests, strict=True):
        if not (isinstance(name, str) and _FILE_NAME.fullmatch(name) and isinstance(digest, str)):
            raise ConfigError(f"{where}: a file name that is not a plain name in the folder")
        if name.endswith(DISTRIBUTED):
            pairs.append([name, digest])
    pairs.sort()
    return (commune_key(province, commune), province, commune, rid, uvci, json.dumps(pairs))


def _index(certs: list[tuple[str, str, list[list[str]]]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(INDEX_COLUMNS)
    for rid, uvci, files in certs:
        writer.writerow((rid, uvci, " ".join(name for name, _ in files)))
    return buf.getvalue().encode("utf-8")


def _entry(name: str, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_STORED  # PNG and PDF are compressed already; no zlib version in the bytes
    info.create_system = 3  # Unix, whatever the platform
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    info.file_size = size
    return info


def _read_checked(batch_dir: Path, name: str, digest: str) -> bytes:
    try:
        fd = os.open(batch_dir / name, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as err:
        raise ConfigError(
            f"{batch_dir / name}: {err.strerror}; run the batch again (it writes missing files again)"
        ) from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise ConfigError(f"{batch_dir / name} is not a regular file")
        data = fh.read()
    if hashlib.sha256(data).hexdigest() != digest:
        raise ConfigError(
            f"{batch_dir / name} does not match the manifest's SHA-256 (damaged?); run the batch again "
            "with --check-files hash to write it again"
        )
    return data


def _write_zip(
    batch_dir: Path, dest_dir: Path, province: str, commune: str, certs: list[tuple[str, str, list[list[str]]]]
) -> CommuneZip:
    name = zip_name(province, commune)
    final = dest_dir / name
    tmp = dest_dir / f".{name}.partial"
    index = _index(certs)
    files = sorted((n, d) for _, _, pairs in certs for n, d in pairs)
    comment = _content_comment(index, files)
    if _comment_of(final) == comment:  # made from these very certificates and files: not read again
        return CommuneZip(final, province, commune, len(certs), changed=False)
    try:  # other bytes than the ZIP there (its comment, part of its bytes, differs): no need to compare them
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w") as archive:
                archive.comment = comment
                archive.writestr(_entry(INDEX_NAME, len(index)), index)
                for file_name, file_digest in files:
                    data = _read_checked(batch_dir, file_name, file_digest)
                    archive.writestr(_entry(file_name, len(data)), data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return CommuneZip(final, province, commune, len(certs), changed=True)


def _content_comment(index: bytes, files: list[tuple[str, str]]) -> bytes:
    """The ZIP's comment: what it is made of (its index and each file's name
    and SHA-256 from the manifest), so that a later run finds a ZIP that is
    already what it would write without reading a file (a correction run
    over a large folder rewrote every commune's ZIP to compare)."""
    content = hashlib.sha256(CONTENT_VERSION)
    content.update(hashlib.sha256(index).digest())
    for file_name, file_digest in files:
        content.update(f"\n{file_name} {file_digest}".encode())
    return CONTENT_TAG + content.hexdigest().encode("ascii")


def _comment_of(path: Path) -> bytes | None:
    """The comment of the ZIP at ``path`` (None: none there, a symbolic link,
    or not a whole ZIP)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as fh, zipfile.ZipFile(fh) as archive:
            return archive.comment
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return None


def _tmp_name(name: str) -> str:
    """The temporary name :func:`_write_file` writes ``name`` under."""
    return f".{name}.tmp"


def _write_file(path: Path, data: bytes, *, mode: int) -> None:
    tmp = path.with_name(_tmp_name(path.name))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
