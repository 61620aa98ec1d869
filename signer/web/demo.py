"""``python -m signer serve --demo``: the portal on demo data, in DATA.

    settings = prepare_demo(PortalSettings(ledger="portal-data/ledger.sqlite", data_dir=Path("portal-data")))

1. a demo PKI in DATA/pki (national CSCA, the demo health centre's DSC, CRL,
   trust-list signer and a signed trust list), as ``python -m signer demo`` makes;
2. the registry extract DATA/registry.csv (examples/registry.csv) and the
   centres config DATA/centres.json;
3. an API key for the demo centre in DATA/centre-api-key (0600);
4. examples/records.jsonl submitted as an API job and run through the same
   job path as any upload (``signer check`` then ``signer batch`` in child
   processes), so the citizens' holder rows and passports exist.

Idempotent: a second run on the same DATA reuses all of it (a CRL about to
expire is renewed). The demo keys' passphrases are random, kept in
DATA/.demo-secrets.json (0600; demo only: a real deployment passes them in
the server's environment) and put into this process's environment under the
names the centres config gives, so API jobs can sign. Nothing secret is
printed: only where the key file is.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from signer.demo import environment
from signer.web.settings import PortalSettings
from verifier.errors import ConfigError

CENTRE = "Trung tâm Y tế Quận 1"
#: The environment variable the demo centres config names for the DSC key's passphrase.
DEMO_KEY_ENV = "VNDCC_DEMO_KEY_PASSPHRASE"
DEMO_IDEMPOTENCY_KEY = "demo-examples-records-jsonl"
SECRETS_FILE = ".demo-secrets.json"


def _examples() -> Path:
    from signer.demo import _examples as examples

    return examples()


def _keys(argv: list[str]) -> None:
    import io

    from keys.cli import main as keys_main

    with contextlib.redirect_stdout(io.StringIO()):
        code = keys_main(argv)
    if code != 0:
        raise ConfigError(f"demo set-up failed: python -m keys {argv[0]} exited {code}")


def build_pki(pki: Path, centres: Sequence[str], *, csca_passphrase: str, key_passphrase: str,
              now: dt.datetime) -> None:  # fmt: skip
    """A demo PKI with one DSC per centre (skipped when ``pki`` exists), and a
    current CRL (renewed when the last one expires within two days)."""
    from keys.pki import load_index

    at = now.replace(microsecond=0).isoformat()
    with environment({"VNDCC_CSCA_PASSPHRASE": csca_passphrase, "VNDCC_KEY_PASSPHRASE": key_passphrase}):
        if not (pki / "index.json").exists():
            _keys(["init-csca", "--pki", str(pki), "--now", at, "--name", "Vietnam DCC CSCA (demo)"])
            for name in centres:
                _keys(["issue-dsc", "--pki", str(pki), "--now", at, "--name", name])
            _keys(["init-tl-signer", "--pki", str(pki), "--now", at])
        index = load_index(pki)
        stale = not index.crls or dt.datetime.fromisoformat(index.crls[-1].next_update) < now + dt.timedelta(days=2)
        if stale:
            _keys(["issue-crl", "--pki", str(pki), "--now", at])
        if stale or not (pki / "trustlist.cbor").exists():
            _keys(["export-trust-list", "--pki", str(pki), "--now", at, "--out", str(pki / "trustlist.cbor")])


def write_centres_config(path: Path, pki: Path, centres: Sequence[str], *, passphrase_env: str) -> None:
    """The centres config for ``centres`` of a demo PKI (paths relative to ``path``)."""
    from keys.pki import load_index

    index = load_index(pki)
    entries = {}
    for name in centres:
        dsc = next(d for d in reversed(index.dscs) if d.name == name)
        entries[name] = {
            "key": os.path.relpath(pki / str(dsc.key_file), path.parent),
            "cert": os.path.relpath(pki / dsc.cert, path.parent),
            "chain": [os.path.relpath(pki / "csca.pem", path.parent)],
            "passphrase_env": passphrase_env,
            "crl": [os.path.relpath(pki / index.crls[-1].der, path.parent)],
        }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"centres": entries}, ensure_ascii=False, indent=1) + "\n", "utf-8")
    os.replace(tmp, path)


def _demo_secrets(data: Path) -> dict[str, str]:
    path = data / SECRETS_FILE
    if path.exists():
        loaded = json.loads(path.read_text("utf-8"))
        return {"csca": str(loaded["csca"]), "key": str(loaded["key"])}
    values = {"csca": secrets.token_urlsafe(24), "key": secrets.token_urlsafe(24)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(values, fh)
    return values


def submit_file(settings: PortalSettings, centre: str, idempotency_key: str, records: Path) -> str:
    """Queue ``records`` as a job of ``centre`` exactly as the API's upload does; the job id."""
    from signer.ledger import Ledger
    from signer.web import jobs

    fmt = "csv" if records.suffix.lower() == ".csv" else "jsonl"
    incoming = settings.data_dir / "jobs" / ".incoming"
    incoming.parent.mkdir(exist_ok=True, mode=0o700)
    incoming.mkdir(exist_ok=True, mode=0o700)
    upload = incoming / f"{secrets.token_hex(8)}.part"
    shutil.copyfile(records, upload)
    upload.chmod(0o600)
    digest = hashlib.sha256(upload.read_bytes()).hexdigest()
    ledger = Ledger.open(settings.ledger, actor="portal-demo")
    try:
        job, _ = jobs.queue_job(
            ledger.db, settings.data_dir / "jobs", centre=centre, idempotency_key=idempotency_key, fmt=fmt,
            upload=upload, body_sha256=digest, at=jobs.iso(dt.datetime.now(dt.UTC).timestamp()),
        )  # fmt: skip
    finally:
        upload.unlink(missing_ok=True)
        ledger.close()
    return job.id


def prepare_demo(settings: PortalSettings, *, out: TextIO | None = None,
                 url: str = "http://127.0.0.1:8000") -> PortalSettings:
    from signer.ledger import Ledger
    from signer.web import apikeys, jobs

    out = out or sys.stdout
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = dt.datetime.now(dt.UTC)
    secret = _demo_secrets(data)
    pki = data / "pki"
    build_pki(pki, [CENTRE], csca_passphrase=secret["csca"], key_passphrase=secret["key"], now=now)
    os.environ[DEMO_KEY_ENV] = secret["key"]  # for the API jobs' children (never on argv)
    registry = data / "registry.csv"
    if not registry.exists():
        shutil.copyfile(_examples() / "registry.csv", registry)
    centres = data / "centres.json"
    write_centres_config(centres, pki, [CENTRE], passphrase_env=DEMO_KEY_ENV)
    settings = replace(settings, centres_config=centres, registry=registry)

    key_file = data / "centre-api-key"
    if not key_file.exists():
        ledger = Ledger.open(settings.ledger, actor="portal-demo")
        try:
            apikeys.create_key_file(ledger, CENTRE, "demo", key_file)
        finally:
            ledger.close()

    job_id = submit_file(settings, CENTRE, DEMO_IDEMPOTENCY_KEY, _examples() / "records.jsonl")
    jobs.JobRunner(settings).run_until_idle()
    ledger = Ledger.open(settings.ledger, actor="portal-demo")
    try:
        job = jobs.get_job(ledger.db, CENTRE, job_id)
    finally:
        ledger.close()
    if job is None or job.state != "done":
        error = job.error if job is not None else "not found"
        raise ConfigError(f"the demo job {job_id} did not finish: {error}")
    slips = data / "claim-codes.csv"
    if not slips.exists():  # the fallback for the example records without a usable phone
        from signer.web.portal_cli import run_claim_codes

        run_claim_codes(argparse.Namespace(ledger=settings.ledger, centre=CENTRE, missing_phone=True,
                                           record_id=None, days=60, out=slips))  # fmt: skip
    c = job.counts
    print(f"demo data in {data}/ (PKI {pki}/, ledger {settings.ledger})", file=out)
    print(f"demo job {job_id}: {c.get('records')} records checked, {c.get('verified')} verified, "
          f"{c.get('issued')} issued, {c.get('skipped')} already issued", file=out)  # fmt: skip
    print(f"open {url}/ (citizen pages)", file=out)
    if settings.sender == "file":
        print(f"one-time codes of the development sender go to {data / 'outbox.jsonl'}", file=out)
    else:
        from signer.web.senders import shown_url

        print(f"one-time codes go to the SMS gateway at {shown_url(settings.sms_gateway_url or '')}", file=out)
    print(f"claim codes for the records without a usable phone (the /claim page): {slips} (mode 0600)", file=out)
    print(f"the demo centre's API key is in {key_file} (mode 0600); try:", file=out)
    print(f'  curl -H "Authorization: Bearer $(cat {key_file})" {url}/api/v1/jobs/{job_id}',
          file=out)  # fmt: skip
    print("  API: docs/centre-api.md; citizen pages: docs/portal.md", file=out)
    return settings
