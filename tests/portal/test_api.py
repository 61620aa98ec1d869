"""The health-centre API against the real server (``signer serve`` under
uvicorn), the real ledger and real signing in child processes."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from signer.ledger import Ledger
from tests.portal import api_fixtures
from tests.portal.api_fixtures import CENTRE_A, CENTRE_B, CSV, EXAMPLES, ApiEnv, submit, wait_job

api_pki = api_fixtures.api_pki  # the fixtures (tests/portal/conftest.py is the citizen pages')
api_env = api_fixtures.api_env

RECORDS = (EXAMPLES / "records.jsonl").read_bytes()


def _zip_names(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        return zf.namelist()


def test_upload_idempotency_job_and_downloads(api_env: ApiEnv) -> None:
    server = api_env.server()
    a = server.client("A")
    # no Idempotency-Key -> 422 naming the header; nothing queued
    r = a.post("/api/v1/jobs", content=RECORDS, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 422 and "Idempotency-Key" in r.text
    r = submit(a, RECORDS, key="batch-2026-06-01")
    assert r.status_code == 202, r.text
    job = r.json()
    assert len(job["job_id"]) == 32 and int(job["job_id"], 16) >= 0
    assert r.headers["location"] == f"/api/v1/jobs/{job['job_id']}"
    assert job["state"] in ("queued", "running")
    # a retry with the same key and body: the same job, 200
    again = submit(a, RECORDS, key="batch-2026-06-01")
    assert again.status_code == 200 and again.json()["job_id"] == job["job_id"]
    # the same key with another body: refused, clearly
    other = submit(a, RECORDS.replace(b"HCM-000001", b"HCM-000099"), key="batch-2026-06-01")
    assert other.status_code == 409 and "different records file" in other.json()["detail"]

    view = wait_job(a, job["job_id"])
    assert view["state"] == "done", view
    c = view["counts"]
    assert (c["records"], c["verified"], c["refused_by_checks"]) == (8, 7, 1)
    assert (c["issued"], c["skipped"], c["refused_by_signer"], c["superseded"]) == (7, 0, 0, 0)
    assert view["progress"] == {"step": "done", "done": 7, "total": 7}

    # reconciliation: the flagged record's commune list, as a ZIP and as a listing
    r = a.get(f"/api/v1/jobs/{job['job_id']}/reconciliation")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    names = _zip_names(r.content)
    assert names == ["tinh-dong-thap/phuong-1.csv"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        rows = list(csv.DictReader(io.StringIO(zf.read(names[0]).decode("utf-8-sig"))))
    assert [row["record_id"] for row in rows] == ["HCM-000008"]
    assert rows[0]["reason_codes"] == "registry_dob_mismatch"
    listing = a.get(f"/api/v1/jobs/{job['job_id']}/reconciliation", params={"format": "json"}).json()
    assert [f["name"] for f in listing["files"]] == names

    errors = a.get(f"/api/v1/jobs/{job['job_id']}/errors").json()
    assert errors["check_reasons"] == {"registry_dob_mismatch": 1}
    assert errors["refused_by_signer"] == [] and errors["failure"] is None

    # results: one ZIP per commune, each as listed (size, SHA-256), PDFs and PNGs inside
    results = a.get(f"/api/v1/jobs/{job['job_id']}/results").json()["files"]
    assert len(results) == 7
    in_zips = []
    for entry in results:
        r = a.get(entry["url"])
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        assert len(r.content) == entry["size"] and hashlib.sha256(r.content).hexdigest() == entry["sha256"]
        inside = _zip_names(r.content)
        assert "index.csv" in inside
        in_zips += [n for n in inside if n.endswith(".pdf")]
    assert sorted(in_zips) == [f"HCM-00000{i}.pdf" for i in range(1, 8)]
    # names outside the listing, traversal attempts included: 404, never a file
    for bad in ("..%2F..%2Fledger.sqlite", "ledger.sqlite", "%2e%2e", "results.json",
                results[0]["name"] + "%00", "x" * 300):  # fmt: skip
        r = a.get(f"/api/v1/jobs/{job['job_id']}/results/{bad}")
        assert r.headers["content-type"].startswith("application/json") and not r.content.startswith(b"PK")
        assert r.status_code in (404, 422), (bad, r.status_code)

    # the same people in another job (CSV this time): exactly once, nothing issued again
    r2 = submit(a, (EXAMPLES / "records.csv").read_bytes(), key="batch-2026-06-02", headers=CSV)
    assert r2.status_code == 202
    view2 = wait_job(a, r2.json()["job_id"])
    assert view2["state"] == "done", view2
    assert view2["counts"]["issued"] == 0 and view2["counts"]["skipped"] == 7


def test_two_centres_see_only_their_own(api_env: ApiEnv, tmp_path: Path) -> None:
    server = api_env.server()
    a, b = server.client("A"), server.client("B")
    job_a = submit(a, RECORDS).json()["job_id"]
    job_b = submit(b, RECORDS).json()["job_id"]
    view_a, view_b = wait_job(a, job_a), wait_job(b, job_b)
    assert view_a["state"] == view_b["state"] == "done"
    assert view_b["counts"]["issued"] == 7  # another centre: its own certificates
    for mine, theirs, client in ((job_a, job_b, a), (job_b, job_a, b)):
        assert client.get(f"/api/v1/jobs/{mine}").status_code == 200
        for suffix in ("", "/reconciliation", "/errors", "/results"):
            r = client.get(f"/api/v1/jobs/{theirs}{suffix}")
            assert r.status_code == 404, (suffix, r.status_code)
            assert r.json() == {"detail": "no such job"}
        name = client.get(f"/api/v1/jobs/{mine}/results").json()["files"][0]["name"]
        assert client.get(f"/api/v1/jobs/{theirs}/results/{name}").status_code == 404
        # the same Idempotency-Key in another centre is another job
    ledger = Ledger.open(api_env.ledger, actor="test", create=False)
    try:
        uvci_a = next(c.uvci for c in ledger.by_record("HCM-000001", CENTRE_A) if c.state == "written")
        uvci_b = next(c.uvci for c in ledger.by_record("HCM-000001", CENTRE_B) if c.state == "written")
    finally:
        ledger.close()
    quoted_a = uvci_a.replace("#", "%23")
    # B cannot revoke A's certificate (404, like an unknown one); A can
    r = b.post(f"/api/v1/certificates/{quoted_a}/revoke", json={"reason": "not yours"})
    assert r.status_code == 404
    for unknown in ("URN:UVCI:01:VN:NOPE", "URN:UVCI:01:VN:ABC%23/", "URN:UVCI:01:VN:ABC%23%2F"):
        # a UVCI's check character may be "/": still routed, answered by the ledger look-up
        r = b.post(f"/api/v1/certificates/{unknown}/revoke", json={"reason": "x"})
        assert r.status_code == 404 and r.json() == {"detail": "no such certificate of this centre"}, unknown
    r = a.post(f"/api/v1/certificates/{quoted_a}/revoke", json={"reason": "issued to the wrong person"})
    assert r.status_code == 200, r.text
    assert r.json() == {"uvci": uvci_a, "state": "revoked", "previous_state": "written", "changed": True}
    again = a.post(f"/api/v1/certificates/{quoted_a}/revoke", json={"reason": "retry"})
    assert again.status_code == 200 and again.json()["changed"] is False
    assert a.post(f"/api/v1/certificates/{quoted_a}/revoke", json={"reason": ""}).status_code == 422
    assert a.post(f"/api/v1/certificates/{quoted_a}/revoke", json={"why": "x"}).status_code == 422
    ledger = Ledger.open(api_env.ledger, actor="test", create=False)
    try:
        revoked_a = ledger.by_uvci(uvci_a)
        current_b = ledger.by_uvci(uvci_b)
        event = ledger.db.fetchone("SELECT actor FROM events WHERE uvci = ? AND state = 'revoked'", (uvci_a,))
    finally:
        ledger.close()
    assert revoked_a is not None and revoked_a.state == "revoked"
    assert revoked_a.revoked_reason == "issued to the wrong person"
    assert current_b is not None and current_b.state == "written"  # B's untouched
    assert event is not None and str(event[0]).startswith(f"api:{CENTRE_A}:")
    # the job's results no longer hand the revoked passport out
    listed = a.get(f"/api/v1/jobs/{job_a}/results").json()["files"]
    pdfs = [n for f in listed for n in _zip_names(a.get(f["url"]).content) if n.endswith(".pdf")]
    assert "HCM-000001.pdf" not in pdfs and len(pdfs) == 6

    # published: a trust list exported after it makes the verifier report it revoked
    from keys.cli import main as keys_main
    from signer.cli import main as signer_main
    from tests.portal.api_fixtures import CSCA_PASS, KEY_PASS, env_vars

    revoked_file = tmp_path / "revoked.txt"
    assert signer_main(["ledger", "export-revoked", "--ledger", api_env.ledger, "--out", str(revoked_file)]) == 0
    pki = api_env.pki.pki
    trust_list = tmp_path / "trustlist.cbor"
    with env_vars({"VNDCC_CSCA_PASSPHRASE": CSCA_PASS, "VNDCC_KEY_PASSPHRASE": KEY_PASS}):
        assert keys_main(["export-trust-list", "--pki", str(pki), "--out", str(trust_list),
                          "--revoked-uvcis", str(revoked_file)]) == 0  # fmt: skip
    hc1 = api_env.data / "jobs" / job_a / "out" / "HCM-000001.hc1.txt"
    # the checkpoint's verifier in its own process (as deployed; it also keeps
    # verifier's lazy imports out of this test process)
    done = subprocess.run([sys.executable, "-m", "verifier", "qr", "--trust", str(pki / "csca.pem"),
                           "--trust", str(trust_list), "--json", "--qr-file", str(hc1)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "VNDCC_VERIFIER_STATE": str(tmp_path / "verifier-state")})  # fmt: skip
    code = done.returncode
    verdict = json.loads(done.stdout)
    assert code == 1 and verdict["valid"] is False
    assert "revoked" in json.dumps(verdict["errors"]).lower()


def test_auth_failures_are_401(api_env: ApiEnv) -> None:
    from signer.web import apikeys

    server = api_env.server()
    job = submit(server.client("A"), RECORDS).json()["job_id"]
    tokens = [
        None,
        f"Basic {api_env.keys['A']}",
        "Bearer",
        "Bearer vndcc_short",
        "Bearer " + "vndcc_" + "A" * 43,  # well formed, unknown
        "Bearer " + api_env.keys["A"] + "x",
        api_env.keys["A"],  # no scheme
    ]
    for token in tokens:
        client = server.client(None) if token is None else server.client(token=token)
        for method, path in (("GET", f"/api/v1/jobs/{job}"), ("GET", f"/api/v1/jobs/{job}/results"),
                             ("POST", "/api/v1/jobs"), ("POST", "/api/v1/certificates/X/revoke")):  # fmt: skip
            r = client.request(method, path, headers={"Idempotency-Key": "k", "Content-Type": "text/csv"},
                               content=b"x")  # fmt: skip
            assert r.status_code == 401, (token and token[:12], path, r.status_code)
            assert r.headers["www-authenticate"] == "Bearer"
    # a revoked key stops working at once; the centre's other keys go on
    ledger = Ledger.open(api_env.ledger, actor="test", create=False)
    try:
        second = apikeys.create_key(ledger, CENTRE_A, "rotation")
        key_id = next(k[0] for k in apikeys.list_keys(ledger.db, CENTRE_A) if k[2] == "test A")
        apikeys.revoke_key(ledger, key_id)
    finally:
        ledger.close()
    assert server.client("A").get(f"/api/v1/jobs/{job}").status_code == 401
    assert server.client(token=f"Bearer {second}").get(f"/api/v1/jobs/{job}").status_code == 200


def test_limits_and_hostile_bodies(api_env: ApiEnv) -> None:
    server = api_env.server(extra=["--max-upload-mb", "1"])
    a = server.client("A")
    big = b'{"record_id": "x"}\n' * (1024 * 1024 // 19 + 10)
    assert len(big) > 1024 * 1024
    r = submit(a, big)
    assert r.status_code == 413 and "larger than" in r.json()["detail"]

    def chunks() -> object:
        for _ in range(40):
            yield b"a" * 32768

    r = a.post("/api/v1/jobs", content=chunks(), headers={"Content-Type": "text/csv", "Idempotency-Key": "chunked"})  # type: ignore[arg-type]
    assert r.status_code == 413  # no Content-Length: counted while streaming
    for media in ("application/json", "text/plain", "application/zip", ""):
        r = submit(a, RECORDS, headers={"Content-Type": media} if media else {})
        assert r.status_code == 415, (media, r.status_code)
        assert "text/csv" in r.json()["detail"]
    assert submit(a, b"").status_code == 400
    for key in (b"", b"with space", b"x" * 201, b"tab\tkey", "ключ".encode()):
        r = a.post("/api/v1/jobs", content=RECORDS, headers={b"Content-Type": b"text/csv", b"Idempotency-Key": key})
        assert r.status_code in (400, 422), (key[:10], r.status_code)
    # hostile bodies: each job ends with a clear outcome (a report or an error), never a 5xx
    hostile = {
        "broken-csv": (b'S\xe1\xbb\x91 \xc4\x91\xe1\xbb\x8bnh danh,H\xe1\xbb\x8d t\xc3\xaan\n"unterminated,\n\x00,,,\n', CSV),
        "binary": (bytes(range(256)) * 64, CSV),
        "huge-line": (b'{"record_id": "' + b"9" * 900_000 + b'"}\n', {"Content-Type": "application/x-ndjson"}),
        "not-json": (b"{nope\n[1,2]\nnull\n", {"Content-Type": "application/x-ndjson"}),
    }
    jobs = {}
    for name, (body, headers) in hostile.items():
        r = submit(a, body, headers=headers)
        assert r.status_code == 202, (name, r.status_code, r.text)
        jobs[name] = r.json()["job_id"]
    for name, job_id in jobs.items():
        view = wait_job(a, job_id)
        if view["state"] == "failed":
            assert view["error"] and "internal error" not in view["error"], (name, view["error"])
            assert str(api_env.data) not in view["error"]  # no server path in what the centre sees
        else:
            assert view["counts"]["issued"] == 0 and view["counts"]["verified"] == 0, (name, view)
        for suffix in ("/errors", "/reconciliation", "/results", "/reconciliation?format=json"):
            r = a.get(f"/api/v1/jobs/{job_id}{suffix}")
            assert r.status_code < 500, (name, suffix, r.status_code)
        report = a.get(f"/api/v1/jobs/{job_id}/errors").json()
        assert report["failure"] == view["error"]
