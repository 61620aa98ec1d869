"""Files a killed batch run had finished, adopted by the next run instead of signed again.

With ``--jobs N`` the signing processes write each batch's files
into a staging folder ``DIR/.partial/w<pid>-<n>/`` (signer.run.stage_files);
the run's process later renames them into ``DIR`` and marks them in the
ledger. A run killed in between leaves finished files for UVCIs the ledger
holds as ``reserved`` (or ``signed``). After the files are written, the
signing process appends to the folder's ``.journal`` one line per
certificate: the run's settings tag, UVCI, record id, the ledger's hash of
the record, kid, iat, exp, the signed payload's SHA-256 and each file's
name, SHA-256 and size, and an HMAC-SHA256 of all of that under a key
derived from the ledger's secret and the tag (:func:`journal_key`; the
workers are the run's own forked processes).

The settings tag (:func:`settings_tag`) is a digest of what the signer is
built with, not of argument strings alone: the command's arguments, the
issuer's kid, the SHA-256 of the DSC's DER and of the key's chain, the
contents of the ``--chain``, ``--crl`` and ``--columns`` files (or the
default column mapping), the issuer name, country, validity, deflate level,
the PNG/SVG/PDF switches, and a code stamp (a hash of the sources and
templates that make outputs: :func:`code_stamp`).

The next run (signer.batch.BatchOutput moves the left-over ``.partial`` to
``.partial-old/``) reads the journals at its start (:func:`scan`). Its step 1
gives a record reserved by the killed run, whose data has not changed, an
:class:`Attempt` with the record's journal lines and its ledger row as the
transaction read it; step 2, in whichever signing process gets the batch,
adopts the files (:meth:`Attempt.adopted`) only when all of this holds, and
otherwise signs again with the same UVCI as before:

- the journal is a regular file (not followed through a symlink) of at most
  :data:`MAX_JOURNAL` bytes in a real directory; the line is whole (ends
  with a newline), at most :data:`MAX_LINE` bytes, its HMAC verifies under
  this run's key for this run's tag, and it parses as a JSON object
  (anything that fails, whatever the exception, is skipped);
- its UVCI, record id and record hash are the reservation's, and the record
  in this run's input still has that hash (checked by the caller);
- its file names are exactly the ones this run makes for the record;
- every file is a regular file (opened with ``O_NOFOLLOW | O_NONBLOCK``) of
  the line's size, at most :data:`MAX_FILE` bytes, with the line's SHA-256;
- the kid is this run's issuer's; iat is within the DSC's validity; exp is
  what this run's issuer gives for that iat (iat + validity, cut to the
  DSC's notAfter); ``exp_clamped`` is derived from that, never read from the line;
- the HC1 text decodes, its signature verifies with this run's key, its kid
  is this run's, its payload has the line's SHA-256, iat and exp, and the
  UVCI in the payload is the reservation's;
- for a ``signed`` reservation: the payload hash and files are the ones the
  ledger holds.

With ``--jobs``, a worker checks the HC1 of every line first, while the
run's process still sets up (:func:`prove_ahead`); when that worker adopts,
an HC1 whose file has the SHA-256 it proved, for the same line claims and
issuer, is not decoded and verified again (every other check is done).

No fsync is needed for the journal: a line is written after its files were
wholly written; the adopting run checks each file's SHA-256, then flushes
the files (signer.batch.BatchOutput.place_staged) before it renames them.
A line lost or torn, or naming a file that is not whole, only means the
record is signed again.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from signer.ledger.store import Certificate, FileEntry

if TYPE_CHECKING:
    from signer.issue import Hc1Issuer, Issued
    from signer.run import Outputs, Signer

#: The journal of a staging folder (a dot name: never a certificate's file).
JOURNAL = ".journal"
#: A journal line longer than this is not read (a line is about 600 bytes).
MAX_LINE = 4096
#: A journal larger than this is not read at all (a folder holds one task: 256 records).
MAX_JOURNAL = 1 << 21
#: A staged file larger than this is not adopted (a signed PDF is about 100 KB).
MAX_FILE = 64 << 20
_CHUNK = 1 << 20
#: A line ends with ``,"mac":"<64 hex>"}`` and a newline: the HMAC of the bytes before it.
_MAC_HEAD = b',"mac":"'
_MAC_TAIL = len(_MAC_HEAD) + 64 + 2
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def journal_key(adopt_key: bytes, tag: str) -> bytes:
    """The key of a run's journal lines: ``adopt_key`` is the ledger's
    (signer.ledger.secret.LedgerKey.adopt), ``tag`` the run's settings tag."""
    return hmac.digest(adopt_key, b"vn-dcc staging journal v1\n" + tag.encode("ascii"), "sha256")


def seal(key: bytes, body: bytes) -> bytes:
    """A journal line from ``body`` (a JSON object without its closing brace): the HMAC appended."""
    mac = hmac.digest(key, body, "sha256").hex()
    return body + _MAC_HEAD + mac.encode("ascii") + b'"}\n'


def journal_bytes(tag: str, issued: Issued, result: Outputs, record_hash: str, key: bytes) -> bytes:
    """One record's journal line, a JSON object (``issued``: the certificate
    as signed; ``result``: its staged files), sealed with ``key``
    (:func:`journal_key`). Formatted by hand (a third of ``json.dumps``'
    time, on every record of a ``--jobs`` run): no field needs escaping (hex
    digests, base64, the UVCI alphabet, record ids and file names of
    signer.run.SAFE_ID); a line that still did not parse would only not be adopted."""
    kid = base64.b64encode(issued.kid).decode("ascii")
    files = ",".join(f'["{name}","{result.digests[name]}",{size}]' for name, (_, size) in result.staged.items())
    body = (
        f'{{"tag":"{tag}","uvci":"{issued.uvci}","record_id":"{issued.record_id}","record_hash":"{record_hash}",'
        f'"kid":"{kid}","iat":{int(issued.iat)},"exp":{int(issued.exp)},'
        f'"exp_clamped":{"true" if issued.exp_clamped else "false"},"payload_hash":"{result.payload_sha256}",'
        f'"files":[{files}]'
    ).encode()
    return seal(key, body)


def _opened(raw: bytes, key: bytes) -> bytes | None:
    """The line's body if its HMAC verifies, else None."""
    if len(raw) > MAX_LINE or len(raw) <= _MAC_TAIL or not raw.endswith(b'"}'):
        return None
    head = len(raw) - _MAC_TAIL
    if raw[head : head + len(_MAC_HEAD)] != _MAC_HEAD:
        return None
    body = raw[:head]
    mac = raw[head + len(_MAC_HEAD) : -2]
    if not hmac.compare_digest(hmac.digest(key, body, "sha256").hex().encode("ascii"), mac):
        return None
    return body


# -- the settings tag ----------------------------------------------------------


def _sha256_of(path: str | Path, limit: int = MAX_FILE) -> str:
    """SHA-256 (hex) of a regular file's contents (symlinks followed: a --crl or a
    source file may be one); "" when it is not a regular file, larger than
    ``limit`` or cannot be read."""
    data = _read_regular(path, limit, follow=True)
    return "" if data is None else hashlib.sha256(data).hexdigest()


_code_stamp: dict[bool, str] = {}


def code_stamp(pdf: bool) -> str:
    """A SHA-256 over the sources that make a batch's outputs (signer/*.py,
    verifier/*.py (the HC1 codec), keys/*.py, with ``pdf`` signer/pdf/*.py)
    and the templates (column mapping, countries, passport layout, fonts):
    once per process. (Not the package's version: the sources say more, and
    reading it from the installed metadata took ~10 ms of a resume's start.)"""
    if pdf in _code_stamp:
        return _code_stamp[pdf]
    import importlib.util

    digest = hashlib.sha256()
    roots: list[tuple[str, bool]] = [("signer", False), ("verifier", False), ("keys", False), ("templates", True)]
    if pdf:
        roots.append(("signer.pdf", False))
    for package, deep in roots:
        spec = importlib.util.find_spec(package)
        folders = list(spec.submodule_search_locations or []) if spec is not None else []
        for folder in folders:
            paths = []
            for base, dirs, names in os.walk(folder):
                dirs[:] = sorted(d for d in dirs if deep and d != "__pycache__")
                paths += [os.path.join(base, n) for n in names if deep or n.endswith(".py")]
            for path in sorted(paths):
                digest.update(f"{os.path.relpath(path, folder)}\0{_sha256_of(path)}\n".encode())
    _code_stamp[pdf] = stamp = digest.hexdigest()
    return stamp


def settings_tag(signer: Signer, ns: argparse.Namespace) -> str:
    """A digest of what the run's :class:`signer.run.Signer` is built with
    (module docstring): the journal of a staging folder is only trusted by a
    run with the same tag."""
    from cryptography.hazmat.primitives.serialization import Encoding

    issuer, options = signer.issuer, signer.options
    key = issuer.key
    ignored = {"jobs", "progress", "func"}
    args = {k: repr(v) for k, v in sorted(vars(ns).items()) if k not in ignored and not callable(v)}
    columns = getattr(ns, "columns", None)
    if columns:
        columns_hash = _sha256_of(columns)
    else:
        from importlib import resources

        columns_hash = hashlib.sha256(resources.files("templates").joinpath("columns.json").read_bytes()).hexdigest()
    items = {
        "args": args,
        "kid": base64.b64encode(issuer.kid).decode("ascii"),
        "dsc": hashlib.sha256(key.certificate.public_bytes(Encoding.DER)).hexdigest(),
        "chain": [hashlib.sha256(c.public_bytes(Encoding.DER)).hexdigest() for c in key.chain],
        "chain_files": [_sha256_of(p) for p in getattr(ns, "chain", None) or ()],
        "crl_files": [_sha256_of(p) for p in getattr(ns, "crl", None) or ()],
        "columns": columns_hash,
        "issuer": [issuer.issuer_name, issuer.country, issuer.validity_seconds, issuer.deflate_level,
                   issuer.not_before, issuer.not_after],
        "outputs": [options.png, options.svg, signer.pdf is not None, options.allow_unverified],
        "code": code_stamp(signer.pdf is not None),
    }  # fmt: skip
    return hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()


# -- reading the journals ------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One journal line, with the staging folder it describes."""

    folder: Path
    line: dict[str, Any]


def _read_regular(path: str | Path, limit: int, *, follow: bool = False) -> bytes | None:
    """A regular file's bytes of at most ``limit`` (never blocking on a FIFO; not
    through a symlink unless ``follow``), or None."""
    try:
        fd = os.open(path, _OPEN_FLAGS & ~os.O_NOFOLLOW if follow else _OPEN_FLAGS)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        chunks = []
        left = info.st_size
        while left > 0 and (chunk := os.read(fd, min(left, _CHUNK))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def scan(roots: Iterable[Path], tag: str, key: bytes) -> dict[str, list[Candidate]]:
    """The journal lines with this ``tag`` and a valid HMAC under ``key`` found
    in the staging folders under ``roots`` (the left-over ``.partial``
    folders), by record id. Anything else (torn, too long, not JSON objects,
    symlinks, special files, any exception) is ignored."""
    found: dict[str, list[Candidate]] = {}
    for root in roots:
        try:
            folders = [e for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for entry in folders:
            data = _read_regular(os.path.join(entry.path, JOURNAL), MAX_JOURNAL)
            if data is None:
                continue
            for raw in data.split(b"\n")[:-1]:  # the last piece has no newline: torn or empty
                try:
                    body = _opened(raw, key)
                    if body is None:
                        continue
                    line = json.loads(raw)
                    if (
                        isinstance(line, dict)
                        and line.get("tag") == tag
                        and isinstance(line.get("uvci"), str)
                        and isinstance(line.get("record_id"), str)
                    ):
                        found.setdefault(line["record_id"], []).append(Candidate(Path(entry.path), line))
                except Exception:  # RecursionError from hostile nesting, anything else: not proven
                    continue
    return found


# -- proving one reservation's files -------------------------------------------


@dataclass(frozen=True)
class Adopted:
    """Finished files of a reservation, proven complete: what the ledger's
    ``signed`` change gets, and the staged paths to rename into place."""

    values: dict[str, Any]
    staged: tuple[tuple[str, str], ...]  # (file name, staged path)
    already_signed: bool  # the ledger holds these values already (state signed)


@dataclass(frozen=True)
class Proven:
    """A candidate whose files and HC1 proved to be this run's issue of the
    record (all but the ledger's state, checked by :func:`confirm`)."""

    line: dict[str, Any]
    files: tuple[FileEntry, ...]
    values: dict[str, Any]
    staged: tuple[tuple[str, str], ...]


def prove(
    candidates: Sequence[Candidate],
    *,
    record_id: str,
    record_hash: str,
    names: Sequence[str],
    issuer: Hc1Issuer,
) -> list[Proven]:
    """The candidates (journal lines of ``record_id``) whose files prove to be
    this run's ``issuer``'s issue of the record with ``record_hash`` (module
    docstring, but the ledger's state: :func:`confirm`). Reads and hashes the
    files and checks the signature."""
    proven = []
    for candidate in candidates:
        with contextlib.suppress(Exception):  # anything unexpected in a left-over file: not proven
            result = _prove(candidate, record_id, record_hash, names, issuer)
            if result is not None:
                proven.append(result)
    return proven


@dataclass(frozen=True)
class Attempt:
    """Step 1's hand-over to step 2 for one reservation of a killed run: its
    journal lines, and its ledger row as read in the transaction that
    admitted it (the folder's lock keeps any other run from changing it).
    Picklable: step 2 may run in a ``--jobs`` worker, which then reads and
    checks the files (the run's process only admits and places)."""

    candidates: tuple[Candidate, ...]
    record_hash: str
    names: tuple[str, ...]  # the files this run makes for the record
    pending: Certificate

    def adopted(self, issuer: Hc1Issuer) -> Adopted | None:
        """The killed run's files of this reservation, proven (:func:`prove`
        and :func:`confirm`), or None: sign again."""
        pending = self.pending
        proven = prove(
            self.candidates, record_id=pending.record_id, record_hash=self.record_hash, names=self.names, issuer=issuer
        )
        return confirm(proven, pending)


def confirm(proven: Sequence[Proven], pending: Certificate) -> Adopted | None:
    """The first proven candidate that is the issue of the reservation ``pending``, or None: sign again."""
    for item in proven:
        line = item.line
        if line["uvci"] != pending.uvci or line["record_id"] != pending.record_id:
            continue
        if line["record_hash"] != pending.record_hash:
            continue
        if pending.state == "signed" and (
            line["payload_hash"] != pending.payload_hash or set(item.files) != set(pending.files)
        ):
            continue
        return Adopted(item.values, item.staged, already_signed=pending.state == "signed")
    return None


def _times(line: dict[str, Any], issuer: Hc1Issuer) -> tuple[int, int, bool] | None:
    """(iat, exp, exp_clamped) of the line if this run's issuer gives that exp for that iat."""
    iat, exp = line["iat"], line["exp"]
    if type(iat) is not int or type(exp) is not int:
        return None
    if iat < issuer.not_before or iat >= issuer.not_after:
        return None
    full = iat + issuer.validity_seconds
    clamped = full > issuer.not_after
    if exp != (issuer.not_after if clamped else full):
        return None
    return iat, exp, clamped


def _prove(
    candidate: Candidate, record_id: str, record_hash: str, names: Sequence[str], issuer: Hc1Issuer
) -> Proven | None:
    line = candidate.line
    if line["record_id"] != record_id or line["record_hash"] != record_hash or not isinstance(line["uvci"], str):
        return None
    kid = base64.b64encode(issuer.kid).decode("ascii")
    if line["kid"] != kid:
        return None
    times = _times(line, issuer)
    if times is None:
        return None
    files = _line_files(line)
    if sorted(f.name for f in files) != sorted(names):
        return None
    if not isinstance(line["payload_hash"], str):
        return None
    hc1_text = _proven_files(candidate.folder, files)
    if hc1_text is None or not _hc1_proven(hc1_text, files, line, issuer):
        return None
    iat, exp, clamped = times
    values = {
        "kid": kid,
        "iat": iat,
        "exp": exp,
        "exp_clamped": clamped,
        "payload_hash": line["payload_hash"],
        "files": files,
    }
    staged = tuple((entry.name, str(candidate.folder / entry.name)) for entry in files)
    return Proven(line, files, values, staged)


# -- proving HC1s ahead ------------------------------------------------------

#: The HC1s this process proved ahead (:func:`prove_ahead`), with the issuer
#: they were proven for, by what :func:`_hc1_matches` reads besides it: the HC1
#: file's SHA-256 and the line's UVCI, payload hash, iat and exp. :func:`_prove`
#: still reads and hashes every file; an HC1 with a SHA-256 proven here for the
#: same issuer is not decoded and verified again.
_ahead: tuple[Hc1Issuer, set[tuple[str, str, str, int, int]]] | None = None


def _ahead_key(hc1: FileEntry, line: dict[str, Any]) -> tuple[str, str, str, int, int]:
    return (hc1.sha256, line["uvci"], line["payload_hash"], line["iat"], line["exp"])


def _line_files(line: dict[str, Any]) -> tuple[FileEntry, ...]:
    """The files a journal line names (raises on a malformed line: the callers skip it)."""
    return tuple(FileEntry(str(name), str(sha), int(size)) for name, sha, size in line["files"])


def _hc1_entries(files: Iterable[FileEntry]) -> list[FileEntry]:
    return [entry for entry in files if entry.name.endswith(".hc1.txt")]


def prove_ahead(candidates: Iterable[Candidate], issuer: Hc1Issuer) -> int:
    """Check the HC1 of each candidate (its file's size and SHA-256, its
    signature under ``issuer``'s key and its claims against the line) and
    remember those that hold, for :func:`_prove` in this process with the same
    ``issuer``; returns how many. A ``--jobs`` worker does this first in a run
    that adopts (signer.run.SigningRun.start_workers), while the run's process
    still sets up: the HC1 check, most of an adoption's cost, is done by the
    time the batches come."""
    global _ahead
    proven: set[tuple[str, str, str, int, int]] = set()
    _ahead = (issuer, proven)
    for candidate in candidates:
        with contextlib.suppress(Exception):  # anything unexpected: proven when adopted, or not at all
            line = candidate.line
            hc1 = _hc1_entries(_line_files(line))
            if len(hc1) != 1:
                continue
            key = _ahead_key(hc1[0], line)
            hc1_text = _proven_files(candidate.folder, hc1)
            if hc1_text is not None and _hc1_matches(hc1_text, line, issuer):
                proven.add(key)
    return len(proven)


def _hc1_proven(hc1_text: bytes, files: Sequence[FileEntry], line: dict[str, Any], issuer: Hc1Issuer) -> bool:
    """:func:`_hc1_matches`, unless this process proved the same HC1 ahead for
    ``issuer`` (``hc1_text`` has the SHA-256 of the line's HC1 entry: :func:`_proven_files`)."""
    if _ahead is not None and _ahead[0] is issuer:
        hc1 = _hc1_entries(files)
        if len(hc1) == 1 and _ahead_key(hc1[0], line) in _ahead[1]:
            return True
    return _hc1_matches(hc1_text, line, issuer)


def _proven_files(folder: Path, files: Sequence[FileEntry]) -> bytes | None:
    """The HC1 text, when every file is a regular file in the real directory
    ``folder`` with the entry's size and SHA-256; else None."""
    folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        hc1_text = None
        for entry in files:
            if "/" in entry.name or entry.size < 0 or entry.size > MAX_FILE:
                return None
            fd = os.open(entry.name, _OPEN_FLAGS, dir_fd=folder_fd)
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode) or info.st_size != entry.size:
                    return None
                digest = hashlib.sha256()
                keep = entry.name.endswith(".hc1.txt")
                kept: list[bytes] = []
                total = 0
                while chunk := os.read(fd, _CHUNK):
                    total += len(chunk)
                    if total > entry.size:
                        return None
                    digest.update(chunk)
                    if keep:
                        kept.append(chunk)
            finally:
                os.close(fd)
            if total != entry.size or digest.hexdigest() != entry.sha256:
                return None
            if keep:
                hc1_text = b"".join(kept)
        return hc1_text
    finally:
        os.close(folder_fd)


def _hc1_matches(hc1_text: bytes, line: dict[str, Any], issuer: Hc1Issuer) -> bool:
    """The HC1 is signed by this run's key, has this run's kid and holds what the line says."""
    from signer.run import verified_sign1
    from verifier import codec

    sign1 = verified_sign1(hc1_text.decode("ascii"), issuer.key)
    if sign1 is None or sign1.kid != issuer.kid:
        return False
    payload = bytes(sign1.payload)
    if hashlib.sha256(payload).hexdigest() != line["payload_hash"]:
        return False
    claims = codec.decode_cwt(payload)
    if claims.iat != line["iat"] or claims.exp != line["exp"]:
        return False
    return bool(claims.dcc["v"][0]["ci"] == line["uvci"])
