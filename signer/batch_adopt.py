"""Files a killed batch run had finished, adopted by the next run instead of signed again.

With ``--jobs N`` the signing processes write each batch's files
into a staging folder ``DIR/.partial/w<pid>-<n>/`` (signer.run.stage_files);
the run's process later renames them into ``DIR`` and marks them in the
ledger. A run killed in between leaves finished files for UVCIs the ledger
holds as ``reserved`` (or ``signed``). After the files are written, the
signing process appends to the folder's ``.journal`` one line per
certificate: the run's settings tag, UVCI, record id, the ledger's hash of
the record, kid, iat, exp, the signed payload's SHA-256 and each file's
name, SHA-256 and size.

The next run (signer.batch.BatchOutput moves the left-over ``.partial`` to
``.partial-old/``) adopts such files for a reservation only when all of this
holds, and otherwise signs again with the same UVCI as before:

- the journal line is whole (ends with a newline, parses) and has this run's
  settings tag (same command arguments: signer.run.settings_tag);
- its UVCI, record id and record hash are the reservation's, and the record
  in this run's input still has that hash (checked by the caller);
- its file names are exactly the ones this run makes for the record;
- every file is there with the line's size and SHA-256;
- the HC1 text decodes, its signature verifies with this run's key, its kid
  is the line's, its payload has the line's SHA-256, iat and exp, and the
  UVCI in the payload is the reservation's;
- for a ``signed`` reservation: the payload hash and files are the ones the
  ledger holds.

No fsync is needed for the journal: a line is written after its files were
wholly written; the adopting run checks each file's SHA-256, then flushes
the files (signer.batch.BatchOutput.place_staged) before it renames them.
A line lost or torn, or naming a file that is not whole, only means the
record is signed again.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from signer.ledger.store import Certificate, FileEntry

if TYPE_CHECKING:
    from signer.issue import Issued
    from signer.run import Outputs

#: The journal of a staging folder (a dot name: never a certificate's file).
JOURNAL = ".journal"


def journal_bytes(tag: str, issued: Issued, result: Outputs, record_hash: str) -> bytes:
    """One record's journal line, a JSON object (``issued``: the certificate
    as signed; ``result``: its staged files). Formatted by hand (a third of
    ``json.dumps``' time, on every record of a ``--jobs`` run): no field
    needs escaping (hex digests, base64, the UVCI alphabet, record ids and
    file names of signer.run.SAFE_ID); a line that still did not parse would
    only not be adopted."""
    kid = base64.b64encode(issued.kid).decode("ascii")
    files = ",".join(f'["{name}","{result.digests[name]}",{size}]' for name, (_, size) in result.staged.items())
    return (
        f'{{"tag":"{tag}","uvci":"{issued.uvci}","record_id":"{issued.record_id}","record_hash":"{record_hash}",'
        f'"kid":"{kid}","iat":{int(issued.iat)},"exp":{int(issued.exp)},'
        f'"exp_clamped":{"true" if issued.exp_clamped else "false"},"payload_hash":"{result.payload_sha256}",'
        f'"files":[{files}]}}\n'
    ).encode()


@dataclass(frozen=True)
class Candidate:
    """One journal line, with the staging folder it describes."""

    folder: Path
    line: dict[str, Any]


def scan(roots: Iterable[Path], tag: str) -> dict[str, list[Candidate]]:
    """The journal lines with this ``tag`` found in the staging folders under
    ``roots`` (the left-over ``.partial`` folders), by UVCI. Lines that are
    torn or not JSON objects are ignored."""
    found: dict[str, list[Candidate]] = {}
    for root in roots:
        try:
            folders = list(os.scandir(root))
        except OSError:
            continue
        for entry in folders:
            try:
                data = Path(entry.path, JOURNAL).read_bytes()
            except OSError:
                continue
            for raw in data.split(b"\n")[:-1]:  # the last piece has no newline: torn or empty
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(line, dict) and line.get("tag") == tag and isinstance(line.get("uvci"), str):
                    found.setdefault(line["uvci"], []).append(Candidate(Path(entry.path), line))
    return found


@dataclass(frozen=True)
class Adopted:
    """Finished files of a reservation, proven complete: what the ledger's
    ``signed`` change gets, and the staged paths to rename into place."""

    values: dict[str, Any]
    staged: tuple[tuple[str, str], ...]  # (file name, staged path)
    already_signed: bool  # the ledger holds these values already (state signed)


def adopt(
    candidates: Sequence[Candidate],
    *,
    pending: Certificate,
    record_hash: str,
    names: Sequence[str],
    public_key: Any,
) -> Adopted | None:
    """The first candidate that proves to be the finished issue of the
    reservation ``pending`` (module docstring), or None: sign again."""
    for candidate in candidates:
        with contextlib.suppress(Exception):  # anything unexpected in a left-over file: not proven
            adopted = _check(candidate, pending, record_hash, names, public_key)
            if adopted is not None:
                return adopted
    return None


def _check(
    candidate: Candidate, pending: Certificate, record_hash: str, names: Sequence[str], public_key: Any
) -> Adopted | None:
    line = candidate.line
    if (
        line["uvci"] != pending.uvci
        or line["record_id"] != pending.record_id
        or line["record_hash"] != pending.record_hash
        or line["record_hash"] != record_hash
    ):
        return None
    files = tuple(FileEntry(str(name), str(sha), int(size)) for name, sha, size in line["files"])
    if sorted(f.name for f in files) != sorted(names) or len(files) != len(names):
        return None
    if pending.state == "signed" and (
        line["payload_hash"] != pending.payload_hash
        or set(files) != set(pending.files)
    ):
        return None
    hc1_text = b""
    for entry in files:
        path = candidate.folder / entry.name
        with path.open("rb") as fh:
            if os.fstat(fh.fileno()).st_size != entry.size:
                return None
            data = fh.read()
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            return None
        if entry.name.endswith(".hc1.txt"):
            hc1_text = data
    if not _hc1_matches(hc1_text, line, public_key):
        return None
    values = {
        "kid": line["kid"],
        "iat": int(line["iat"]),
        "exp": int(line["exp"]),
        "exp_clamped": bool(line["exp_clamped"]),
        "payload_hash": line["payload_hash"],
        "files": files,
    }
    staged = tuple((entry.name, str(candidate.folder / entry.name)) for entry in files)
    return Adopted(values, staged, already_signed=pending.state == "signed")


def _hc1_matches(hc1_text: bytes, line: dict[str, Any], public_key: Any) -> bool:
    """The HC1 is signed by this run's key and holds what the line says."""
    from verifier import codec
    from verifier.crypto import verify_signature

    sign1 = codec.decode_sign1(codec.from_qr_text(hc1_text.decode("ascii")))
    data = codec.sig_structure(sign1.protected_bytes, sign1.payload)
    if not verify_signature(public_key, sign1.alg, data, sign1.signature):
        return False
    kid = sign1.kid
    if kid is None or base64.b64encode(kid).decode("ascii") != line["kid"]:
        return False
    payload = bytes(sign1.payload)
    if hashlib.sha256(payload).hexdigest() != line["payload_hash"]:
        return False
    claims = codec.decode_cwt(payload)
    if claims.iat != line["iat"] or claims.exp != line["exp"]:
        return False
    return bool(claims.dcc["v"][0]["ci"] == line["uvci"])
