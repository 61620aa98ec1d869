"""Signed PDF passports per second: the straightforward pipeline against ours, in one run.

    .venv/bin/python bench/pdf.py              # ~1 min; pins itself to one CPU
    .venv/bin/python bench/pdf.py --quick      # fewer documents
    .venv/bin/python bench/pdf.py --profile    # + cProfile of our loop

Per complete signed passport (HC1 issued from the record, page rendered,
certified PAdES signature with the chain and the CSCA's CRL embedded),
software ES256 key, on one core; the pipelines run in alternation (paired
rounds) and the ratio is the median of the per-round ratios:

* **straightforward**: reportlab draws the page (DejaVu Sans registered once),
  the QR as a ``qrcode`` package PIL image (level Q), then pyHanko's default
  ``PdfSigner`` (certify, PAdES subfilter, ``embed_validation_info=True``
  with an offline validation context holding the CSCA and its CRL, a visible
  stamp naming the centre, in ASCII: pyHanko's built-in font has no Vietnamese);
  signer and validation context built once and reused;
* the same without the visible stamp (so the ratio is not the stamp's doing);
* our page signed by pyHanko's ``PdfSigner`` with the field notes' tuning
  (:mod:`signer.pdf.reference`: ``KeySigner``, ``bytes_reserved``, DSS in the
  signature's revision), to show what the signing alone costs that way;
* **ours**: :class:`signer.pdf.sign.PassportPdfSigner` (static page parts and
  fonts prepared once, vector QR from zxing-cpp, pyHanko-built CMS template);
* ours with a SoftHSM2 token key (token created in a temporary directory).

Prints ms per passport, passports per second, the ratio (target >= 10x, issue
3) and the output sizes; also the verification time of ``verifier pdf``.
Results go in docs/benchmarks.md ("PDF passports").
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import logging
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402

from keys.certs import make_csca, make_dsc, new_private_key  # noqa: E402
from keys.software import SoftwareKey  # noqa: E402
from signer.issue import Hc1Issuer  # noqa: E402
from signer.records import Record, read_records  # noqa: E402

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
CENTRE = "Trạm Y tế Phường Bến Nghé"
FONTS = ROOT / "templates" / "fonts"


def _pki() -> tuple[x509.Certificate, Any, SoftwareKey, x509.CertificateRevocationList]:
    ca_key = new_private_key("ec-p256")
    csca = make_csca(ca_key, country="VN", name="Bench CSCA", now=NOW - dt.timedelta(days=100))
    k = new_private_key("ec-p256")
    dsc = make_dsc(csca, ca_key, k.public_key(), name=CENTRE, now=NOW - dt.timedelta(days=10))
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(csca.subject)
        .last_update(NOW - dt.timedelta(days=1))
        .next_update(NOW + dt.timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    return csca, ca_key, SoftwareKey(private_key=k, certificate=dsc, chain=(csca,)), crl


def _records() -> list[Record]:
    return [r for r in read_records(ROOT / "examples" / "records.jsonl") if isinstance(r, Record)]


# ----------------------------------------------------------------------------
# the straightforward pipeline


class Straightforward:
    """reportlab + qrcode PIL image + pyHanko PdfSigner (B-B + DSS), objects reused."""

    def __init__(self, key: SoftwareKey, crl: x509.CertificateRevocationList, *, stamp: bool):
        from asn1crypto import keys as asn1_keys
        from pyhanko.sign import fields, signers
        from pyhanko.stamp import TextStampStyle
        from pyhanko_certvalidator import ValidationContext
        from pyhanko_certvalidator.registry import SimpleCertificateStore
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.ttfonts import TTFont

        from signer.pdf.cms import to_asn1
        from signer.pdf.template import load_template

        pdfmetrics.registerFont(TTFont("DejaVu", str(FONTS / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont("DejaVu-Bold", str(FONTS / "DejaVuSans-Bold.ttf")))
        self.template = load_template()
        der_key = key.private_key.private_bytes(
            Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self.signer = signers.SimpleSigner(
            signing_cert=to_asn1(key.certificate),
            signing_key=asn1_keys.PrivateKeyInfo.load(der_key),
            cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
                [to_asn1(c) for c in key.chain]
            ),
        )
        self.vc = ValidationContext(
            trust_roots=[to_asn1(key.chain[0])],
            crls=[crl.public_bytes(Encoding.DER)],
            allow_fetching=False,
            moment=NOW,
        )
        self.meta = signers.PdfSignatureMetadata(
            field_name="ChuKySo",
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            certify=True,
            docmdp_permissions=fields.MDPPerm.NO_CHANGES,
            embed_validation_info=True,
            validation_context=self.vc,
            signer_key_usage={"digital_signature"},
            reason=self.template.reason,
            location=CENTRE,
        )
        self.stamp = stamp
        if stamp:
            # pyHanko's own fonts are Latin-1 only (a Unicode stamp font needs the
            # uharfbuzz extra): an ASCII stamp keeps this baseline cheaper, not dearer.
            self.style = TextStampStyle(
                stamp_text="Digitally signed by:\n%(signer)s\nTram Y te Phuong Ben Nghe\n%(ts)s"
            )
            self.field = fields.SigFieldSpec("ChuKySo", box=(323, 50, 553, 108))

    def render(self, data: Any) -> bytes:
        import qrcode
        from reportlab.lib.pagesizes import A4
        from reportlab.lib.utils import ImageReader
        from reportlab.pdfgen import canvas

        t = self.template
        buf = io.BytesIO()
        c = canvas.Canvas(buf, pagesize=A4)
        c.setTitle(t.title_meta)
        c.setSubject(t.subject_meta)
        y = 800.0
        for line in t.header:
            c.setFont("DejaVu-Bold" if line.bold else "DejaVu", line.size)
            c.drawCentredString(A4[0] / 2, y, line.text)
            y -= line.size + 4
        c.setFont("DejaVu-Bold", t.title_size)
        c.drawCentredString(A4[0] / 2, y - 14, t.title.vi)
        c.setFont("DejaVu", t.title_size * 0.7)
        c.drawCentredString(A4[0] / 2, y - 30, t.title.en)
        y -= 60
        for label in (*t.fields, *t.issuer_fields):
            c.setFont("DejaVu-Bold", 8.5)
            c.drawString(46, y, label.vi)
            c.setFont("DejaVu", 7)
            c.drawString(46, y - 9, label.en)
            c.setFont("DejaVu", 10.5)
            c.drawString(212, y - 4, data.field(label.key))
            y -= 23
        for row in data.doses:
            c.setFont("DejaVu", 8)
            c.drawString(46, y, f"{row.dose}  {row.date}  {row.vaccine}  {row.lot}  {row.site}")
            y -= 13
        qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, box_size=4, border=4)
        qr.add_data(data.hc1)
        qr.make(fit=True)
        img = qr.make_image().get_image()
        c.drawImage(ImageReader(img), 36, 42, 216, 216)
        c.setFont("DejaVu", 8)
        c.drawString(266, 240, t.verify_note.vi[:80])
        c.showPage()
        c.save()
        return buf.getvalue()

    def sign(self, pdf: bytes) -> bytes:
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.sign import signers

        if self.stamp:
            pdf_signer = signers.PdfSigner(
                self.meta, signer=self.signer, stamp_style=self.style, new_field_spec=self.field
            )
        else:
            pdf_signer = signers.PdfSigner(self.meta, signer=self.signer)
        out = pdf_signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)))
        return bytes(out.getbuffer())


# ----------------------------------------------------------------------------


def _best_ms(fn: Callable[[], object], n: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t0) / n * 1000)
    return min(times)


def _softhsm_key(csca: x509.Certificate, ca_key: Any, base: Path) -> Any:
    """A SoftHSM2 token with an EC key generated inside it (SOFTHSM2_CONF set first)."""
    import subprocess

    pin, so_pin = secrets.token_hex(8), secrets.token_hex(8)
    conf = base / "softhsm2.conf"
    (base / "tokens").mkdir()
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\nslots.removable = false\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "bench", "--so-pin",
                    so_pin, "--pin", pin], check=True, capture_output=True)
    from keys.pkcs11_key import (
        DEFAULT_MODULE,
        Pkcs11Key,
        generate_key_in_token,
        token_session,
        write_certificate_to_token,
    )

    with token_session(DEFAULT_MODULE, "bench", pin, rw=True) as ts:
        public = generate_key_in_token(ts, key_type="ec-p256", label="dsc", key_id=b"\x01")
        cert = make_dsc(csca, ca_key, public, name=CENTRE, now=NOW - dt.timedelta(days=10))
        write_certificate_to_token(ts, cert, label="dsc", key_id=b"\x01")
    return Pkcs11Key(module=DEFAULT_MODULE, token_label="bench", key_label="dsc", pin=pin,
                     chain=(csca,))


def write_sample(png: Path) -> int:
    """Sign the first example record with a fresh PKI; render page 1 at 100 dpi."""
    import subprocess

    from signer.pdf.model import passport_data
    from signer.pdf.sign import PassportPdfSigner

    _csca, _ca_key, key, crl = _pki()
    record = _records()[0]
    issued = Hc1Issuer(key, issuer_name="Ministry of Health of Viet Nam").issue(
        record, now=NOW, allow_unverified=True
    )
    pdf = PassportPdfSigner(key, centre=CENTRE, crls=[crl], now=NOW).sign(
        passport_data(dcc=issued.dcc, hc1=issued.hc1, centre=CENTRE, record=record,
                      issued_at=NOW, expires_at=dt.datetime.fromtimestamp(issued.exp, dt.UTC)),
        now=NOW,
    )
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "sample.pdf"
        src.write_bytes(pdf)
        subprocess.run(["pdftoppm", "-r", "100", "-png", "-singlefile", str(src),
                        str(Path(tmp) / "page")], check=True)
        png.write_bytes((Path(tmp) / "page.png").read_bytes())
    print(f"wrote {png} ({len(pdf)} byte PDF)")
    return 0


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed_runs(cmds: list[list[str]]) -> tuple[float, float]:
    """(CPU s, wall s) per command, each run as its own process, in turn."""
    import subprocess

    c0, w0 = _children_cpu(), time.perf_counter()
    for cmd in cmds:
        subprocess.run(cmd, capture_output=True, check=False, stdin=subprocess.DEVNULL)
    n = len(cmds)
    return (_children_cpu() - c0) / n, (time.perf_counter() - w0) / n


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (/proc/PID/stat utime, stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_daemon(python: str, sock: Path) -> Any:
    """``PYTHON -m verifier daemon --socket SOCK``, once it listens (docs/verifier-daemon.md)."""
    import subprocess

    proc = subprocess.Popen([python, "-m", "verifier", "daemon", "--socket", str(sock)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    line = proc.stderr.readline().decode()
    assert line.startswith("verifier daemon: listening on"), line
    return proc


def _timed_daemon_runs(cmds: list[list[str]], sock: Path, daemon_pid: int) -> tuple[float, float, float]:
    """(CPU s of client + daemon, wall s, the daemon's CPU s) per command: each command
    its own client process sending the file to the daemon; the daemon's CPU for those
    requests read from /proc before and after (10 ms ticks, summed over the files)."""
    import subprocess

    env = {**os.environ, "VNDCC_VERIFY_DAEMON": str(sock), "VNDCC_VERIFY_DAEMON_STRICT": "1"}
    c0, d0, w0 = _children_cpu(), _proc_cpu(daemon_pid), time.perf_counter()
    for cmd in cmds:
        subprocess.run(cmd, capture_output=True, check=False, stdin=subprocess.DEVNULL, env=env)
    n = len(cmds)
    wall = (time.perf_counter() - w0) / n
    daemon = (_proc_cpu(daemon_pid) - d0) / n
    return (_children_cpu() - c0) / n + daemon, wall, daemon


def _sign_folder(folder: Path, signer: Any, issuer: Hc1Issuer, records: list[Record], n: int) -> None:
    from signer.pdf.model import passport_data

    folder.mkdir()
    for i in range(n):
        rec = records[i % len(records)]
        issued = issuer.issue(rec, now=NOW, allow_unverified=True)
        data = passport_data(dcc=issued.dcc, hc1=issued.hc1, centre=CENTRE, record=rec, issued_at=NOW,
                             expires_at=dt.datetime.fromtimestamp(issued.exp, dt.UTC))
        (folder / f"p{i:03d}.pdf").write_bytes(signer.sign(data, now=NOW))


#: Floors, one process each (cumulative: each line imports what the one above did and more):
#: the interpreter alone, then the third-party modules ``verifier pdf`` needs to check a passport.
_LEAN = ("import importlib.util as u; s = u.spec_from_file_location('lean', {path!r}); "
         "m = u.module_from_spec(s); s.loader.exec_module(m); m.defer_signing_packages(); ")
FLOORS = (
    ("floor_S", ["-S", "-c", "pass"], "floor: python -S -c pass (no site)"),
    ("floor_pass", ["-c", "pass"], "floor: python -c pass"),
    ("floor_rust", ["-c", "import cryptography.hazmat.bindings._rust"],
     "+ cryptography's Rust bindings"),
    ("floor_ec", ["-c", "import cryptography.hazmat.bindings._rust; "
                  "from cryptography.hazmat.primitives.asymmetric import ec, padding"],
     "+ its ec/padding (to verify a signature)"),
    ("floor_x509", ["-c", "from cryptography.hazmat.primitives.asymmetric import ec, padding; "
                    "import cryptography.x509"], "+ cryptography.x509"),
    ("floor_asn1", ["-c", "from cryptography.hazmat.primitives.asymmetric import ec, padding; "
                    "import cryptography.x509, asn1crypto.cms, asn1crypto.crl, asn1crypto.tsp"],
     "+ asn1crypto cms/x509/crl/tsp"),
    ("floor_cbor", ["-c", "from cryptography.hazmat.primitives.asymmetric import ec, padding; "
                    "import cryptography.x509, asn1crypto.cms, asn1crypto.crl, asn1crypto.tsp, "
                    "cbor2, zxingcpp, jsonschema_rs, json, zlib"],
     "+ cbor2, zxing-cpp, jsonschema-rs"),
    ("floor_all", ["-c", _LEAN.format(path=str(ROOT / "verifier" / "pdf" / "lean_imports.py"))
                   + "from cryptography.hazmat.primitives.asymmetric import ec, padding; "
                   "import cryptography.x509, asn1crypto.cms, asn1crypto.crl, asn1crypto.tsp, "
                   "cbor2, zxingcpp, jsonschema_rs, json, zlib, pyhanko.pdf_utils.reader"],
     "+ pyHanko's PDF reader = all third-party"),
    ("floor_ours", ["-c", "import verifier, verifier.cli, verifier.pdf.cli, verifier.pdf.verify"],
     "+ the verifier's modules = all imports"),
)


def checkpoint_python(tmp: Path) -> str:
    """The checkpoint configuration's interpreter: ``.venv-verifier`` when
    ``scripts/setup-verifier.sh`` made one, else an equivalent made here without pip.

    The equivalent is a plain venv of the same base interpreter whose one
    ``.pth`` file holds two plain paths: a copy of ``verifier/`` (byte-compiled,
    as pip installs the wheel) and this venv's site-packages for the
    third-party packages. Its start-up is a wheel install's (no editable-install
    finder imported from a ``.pth`` at every start), and ``signer`` and ``keys``
    are not importable in it (checked).
    """
    import shutil
    import subprocess
    import sysconfig

    made = ROOT / ".venv-verifier" / "bin" / "python"
    if made.exists():
        return str(made)
    venv = tmp / "checkpoint-venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    src = tmp / "checkpoint-src"
    shutil.copytree(ROOT / "verifier", src / "verifier",
                    ignore=shutil.ignore_patterns("__pycache__", "pyproject.toml"))
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "vn_dcc_verifier_bench.pth").write_text(f"{src}\n{sysconfig.get_path('purelib')}\n")
    subprocess.run([python, "-m", "compileall", "-q", str(src)], check=True)
    # the command as pip installs the wheel's script (verifier/pyproject.toml, script-files):
    # its "#!python" line made this venv's interpreter
    script = (ROOT / "verifier" / "bin" / "vn-dcc-verify").read_text()
    assert script.startswith("#!python\n")
    command = venv / "bin" / "vn-dcc-verify"
    command.write_text(f"#!{python}\n" + script.split("\n", 1)[1])
    command.chmod(0o755)
    alone = subprocess.run([python, "-c", "import importlib.util as u; import verifier; "
                            "print(u.find_spec('signer') is None and u.find_spec('keys') is None, "
                            "verifier.__file__)"], capture_output=True, text=True, check=True,
                           cwd=tmp)
    assert alone.stdout.startswith(f"True {src}"), alone.stdout
    return python


def launcher(python: str) -> list[str]:
    """What a user runs per file with this interpreter: the ``vn-dcc-verify`` command
    installed next to it (the checkpoint wheel's plain script; in the dev venv pip's
    entry-point wrapper), else ``python -m verifier``."""
    command = Path(python).parent / "vn-dcc-verify"
    return [str(command)] if command.exists() else [python, "-m", "verifier"]


def verify_ratio(n_files: int, rounds: int, pythons: list[str] | None) -> int:
    """``verifier pdf`` against ``pdfsig`` on the same files in the same run (issue 13).

    Per file and per process: ``pdfsig -nssdir DB FILE`` (NSS database trusting
    the CSCA, its CRL imported) and ``vn-dcc-verify pdf --trust csca.pem
    --trust dsc.pem FILE`` (:func:`launcher`: the command installed next to PYTHON,
    else ``PYTHON -m verifier``), each started once per file, on B-B and on B-LT
    passports (signature timestamp from ``keys.tsa`` over loopback); ``verifier
    pdf --jobs 1 --json DIR`` once for the B-B folder; in one process for a
    folder: :func:`verifier.pdf.verify_pdf` over the files with the trust loaded
    once (``verifier pdf --jobs 1 DIR``'s loop). PYTHON: this interpreter (the
    dev venv, editable install) and the checkpoint configuration's
    (:func:`checkpoint_python`), unless ``--python`` names others (the in-process rows
    always run in this bench's own process and are printed with the first). Floors, one
    process per file: :data:`FLOORS`. CPU is user + system of this process and
    its children; the ratio is the median of per-round ratios against pdfsig on
    the same files (rounds alternate the tools; each interpreter's table has
    its own pdfsig runs, interleaved with its own). The daemon rows: the same
    per-file commands with ``VNDCC_VERIFY_DAEMON`` set, answered by one
    ``PYTHON -m verifier daemon`` started before the rounds; their CPU is the
    client processes' plus the daemon's for those requests (/proc/PID/stat); one more
    daemon row with ``PYTHON -m verifier`` as the command, when that is not the launcher.
    """
    import subprocess
    import threading

    from keys.tsa import TimeStampAuthority, make_server, make_tsa_certificate
    from signer.pdf.sign import PassportPdfSigner
    from signer.pdf.tsa import HttpTimestamper
    from verifier.pdf import verify_pdf
    from verifier.pdf.fast import fast_signature_report
    from verifier.trust import load_trust

    csca, ca_key, key, crl = _pki()
    records = _records()
    issuer = Hc1Issuer(key, issuer_name="Ministry of Health of Viet Nam")
    tsa_key = new_private_key("ec-p256")
    tsa_cert = make_tsa_certificate(csca, ca_key, tsa_key.public_key(), now=NOW - dt.timedelta(days=1))
    tsa_server = make_server(TimeStampAuthority(key=tsa_key, certificate=tsa_cert), clock=lambda: NOW)
    threading.Thread(target=tsa_server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    home = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        # `python -m verifier` finds the package in the working directory first: run every
        # command outside the checkout, so that each interpreter imports its own verifier
        os.chdir(tmp)
        if not pythons:
            pythons = [sys.executable, checkpoint_python(tmp)]
        stamper = HttpTimestamper(f"http://127.0.0.1:{tsa_server.server_address[1]}/")
        try:
            _sign_folder(tmp / "bb", PassportPdfSigner(key, centre=CENTRE, crls=[crl], now=NOW),
                         issuer, records, n_files)
            _sign_folder(tmp / "blt", PassportPdfSigner(key, centre=CENTRE, crls=[crl], now=NOW,
                                                        timestamper=stamper),
                         issuer, records, n_files)
        finally:
            stamper.close()
            tsa_server.shutdown()
            tsa_server.server_close()
        files = {kind: sorted((tmp / kind).iterdir()) for kind in ("bb", "blt")}
        csca_pem = tmp / "csca.pem"
        csca_pem.write_bytes(csca.public_bytes(Encoding.PEM))
        nss = tmp / "nss"
        nss.mkdir()
        (tmp / "crl.der").write_bytes(crl.public_bytes(Encoding.DER))
        for cmd in (["certutil", "-N", "-d", f"sql:{nss}", "--empty-password"],
                    ["certutil", "-A", "-d", f"sql:{nss}", "-n", "CSCA", "-t", "C,C,C", "-a", "-i",
                     str(csca_pem)],
                    ["crlutil", "-I", "-d", f"sql:{nss}", "-i", str(tmp / "crl.der"), "-B"]):
            subprocess.run(cmd, check=True, capture_output=True)
        for kind in ("bb", "blt"):
            out = subprocess.run(["pdfsig", "-nssdir", f"sql:{nss}", str(files[kind][0])],
                                 capture_output=True, text=True, check=False).stdout
            assert "Signature is Valid" in out and "Certificate is Trusted" in out, out
        at = (NOW + dt.timedelta(hours=1)).isoformat()
        env_state = tmp / "state"
        os.environ["VNDCC_VERIFIER_STATE"] = str(env_state)
        dsc_pem = tmp / "dsc.pem"  # the QR's kid (the CSCA alone makes every verdict unknown_kid)
        dsc_pem.write_bytes(key.certificate.public_bytes(Encoding.PEM))
        trust_args = ["--trust", str(csca_pem), "--trust", str(dsc_pem)]
        trust = load_trust([csca_pem, dsc_pem], now=NOW, state_dir=env_state)
        datas = {kind: [f.read_bytes() for f in files[kind]] for kind in files}
        for kind, level in (("bb", "B-B"), ("blt", "B-LT")):
            for d in datas[kind][:3]:
                verdict = verify_pdf(d, trust, now=NOW)
                assert verdict.valid and (verdict.signer or {}).get("pades_level") == level
                assert fast_signature_report(d, trust, now=NOW) is not None  # the fast path is taken
            for python in pythons:
                done = subprocess.run([*launcher(python), "pdf", *trust_args, "--at", at,
                                       str(files[kind][0])], capture_output=True, text=True)
                assert done.returncode == 0 and f"PAdES {level}" in done.stdout, \
                    done.stdout + done.stderr
        for python in pythons:
            # each interpreter's verifier byte-compiled first: with PYTHONDONTWRITEBYTECODE set
            # (as in some shells) a changed module was compiled again in every timed process
            where = subprocess.run([python, "-c", "import os, verifier; "
                                    "print(os.path.dirname(verifier.__file__))"],
                                   capture_output=True, text=True, check=True).stdout.strip()
            subprocess.run([python, "-m", "compileall", "-q", where], check=True)
            for _, args, _ in FLOORS:  # every floor command runs once before timing
                subprocess.run([python, *args], check=True, capture_output=True)
        # one long-lived verifier per interpreter (issue 13: a checkpoint running one
        # command per file); its socket in the private temporary folder
        commands = {python: " ".join(launcher(python)) for python in pythons}  # the folder goes
        daemons = {python: _start_daemon(python, tmp / f"daemon{i}.sock") for i, python in enumerate(pythons)}
        for i, python in enumerate(pythons):
            for kind, level in (("bb", "B-B"), ("blt", "B-LT")):
                before = _proc_cpu(daemons[python].pid)
                done = subprocess.run([*launcher(python), "pdf", *trust_args, "--at", at,
                                       str(files[kind][0])], capture_output=True, text=True,
                                      env={**os.environ, "VNDCC_VERIFY_DAEMON": str(tmp / f"daemon{i}.sock"),
                                           "VNDCC_VERIFY_DAEMON_STRICT": "1"})
                assert done.returncode == 0 and f"PAdES {level}" in done.stdout, done.stdout + done.stderr
                assert _proc_cpu(daemons[python].pid) > before  # the daemon answered, not the client

        def pdfsig(kind: str) -> list[list[str]]:
            return [["pdfsig", "-nssdir", f"sql:{nss}", str(f)] for f in files[kind]]

        def ours(python: str, kind: str, dash_m: bool = False) -> list[list[str]]:
            command = [python, "-m", "verifier"] if dash_m else launcher(python)
            return [[*command, "pdf", *trust_args, "--at", at, str(f)] for f in files[kind]]

        def in_process(kind: str) -> tuple[float, float]:
            c0, p0, w0 = _children_cpu(), time.process_time(), time.perf_counter()
            for d in datas[kind]:
                verify_pdf(d, trust, now=NOW)
            n = len(datas[kind])
            return ((time.process_time() - p0 + _children_cpu() - c0) / n,
                    (time.perf_counter() - w0) / n)

        rows: dict[str, list[dict[str, tuple[float, float]]]] = {p: [] for p in pythons}
        for _ in range(rounds):
            for python in pythons:
                row = {"pdfsig_bb": _timed_runs(pdfsig("bb")), "ours_bb": _timed_runs(ours(python, "bb")),
                       "pdfsig_blt": _timed_runs(pdfsig("blt")),
                       "ours_blt": _timed_runs(ours(python, "blt"))}
                sock = tmp / f"daemon{pythons.index(python)}.sock"
                for kind in ("bb", "blt"):
                    cpu, wall, part = _timed_daemon_runs(ours(python, kind), sock, daemons[python].pid)
                    row[f"daemon_{kind}"], row[f"daemon_part_{kind}"] = (cpu, wall), (part, wall)
                if launcher(python)[0] != python:  # the same with `python -m verifier` (runpy)
                    cpu, wall, _ = _timed_daemon_runs(ours(python, "bb", dash_m=True), sock,
                                                      daemons[python].pid)
                    row["daemon_m_bb"] = (cpu, wall)
                if python == pythons[0]:
                    row["inproc_bb"] = in_process("bb")
                    row["inproc_blt"] = in_process("blt")
                for name, args, _ in FLOORS:
                    row[name] = _timed_runs([[python, *args]] * n_files)
                folder_cpu, folder_wall = _timed_runs([[*launcher(python), "pdf", *trust_args,
                                                        "--at", at, "--jobs", "1", "--json",
                                                        str(tmp / "bb")]])
                row["folder_bb"] = (folder_cpu / n_files, folder_wall / n_files)
                rows[python].append(row)
        for proc in daemons.values():
            proc.terminate()
            proc.wait(timeout=30)
            proc.stderr.close()
        os.chdir(home)
    for python in pythons:
        _print_ratio_table(python, rows[python], n_files, rounds, commands[python])
    return 0


def _print_ratio_table(python: str, rows: list[dict[str, tuple[float, float]]], n_files: int,
                       rounds: int, command: str) -> None:
    print(f"\nverifier pdf vs pdfsig, {n_files} B-B + {n_files} B-LT passports, {rounds} rounds, one "
          f"CPU, {python} (median ms per file; ratio = median of per-round ratios against pdfsig "
          "on the same files)")
    print(f"command per file: {command} pdf --trust csca.pem --trust dsc.pem FILE")
    print(f"{'':<48}{'cpu ms':>9}{'wall ms':>9}{'cpu x':>8}{'wall x':>8}")
    for name, base, label in (
        ("pdfsig_bb", "pdfsig_bb", "pdfsig FILE, B-B (one process per file)"),
        ("ours_bb", "pdfsig_bb", "verifier pdf FILE, B-B (one process per file)"),
        ("pdfsig_blt", "pdfsig_blt", "pdfsig FILE, B-LT (one process per file)"),
        ("ours_blt", "pdfsig_blt", "verifier pdf FILE, B-LT (one process per file)"),
        ("daemon_bb", "pdfsig_bb", "daemon: verifier pdf FILE, B-B (client+daemon)"),
        ("daemon_part_bb", "pdfsig_bb", "  of which the daemon"),
        ("daemon_blt", "pdfsig_blt", "daemon: verifier pdf FILE, B-LT (client+daemon)"),
        ("daemon_part_blt", "pdfsig_blt", "  of which the daemon"),
        ("daemon_m_bb", "pdfsig_bb", "daemon: python -m verifier pdf FILE, B-B"),
        ("folder_bb", "pdfsig_bb", "verifier pdf --jobs 1 DIR, B-B (one process)"),
        ("inproc_bb", "pdfsig_bb", "verify_pdf in this process, B-B (folder loop)"),
        ("inproc_blt", "pdfsig_blt", "verify_pdf in this process, B-LT (folder loop)"),
        *((name, "pdfsig_bb", label) for name, _, label in FLOORS),
    ):
        if name not in rows[0]:
            continue
        cpu = statistics.median(r[name][0] for r in rows) * 1000
        wall = statistics.median(r[name][1] for r in rows) * 1000
        rc = statistics.median(r[name][0] / r[base][0] for r in rows)
        rw = statistics.median(r[name][1] / r[base][1] for r in rows)
        print(f"{label:<48}{cpu:>9.1f}{wall:>9.1f}{rc:>8.1f}{rw:>8.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sample", type=Path, metavar="PNG",
                        help="only write page 1 of a sample passport as PNG (docs/passport-sample.png)")
    parser.add_argument("--verify-ratio", action="store_true",
                        help="only compare verifier pdf with pdfsig on the same files (issue 13)")
    parser.add_argument("--python", action="append", metavar="PYTHON",
                        help="--verify-ratio: an interpreter that runs `-m verifier` (repeatable; "
                        "default: this one and the checkpoint configuration's, .venv-verifier of "
                        "scripts/setup-verifier.sh or an equivalent made for the run)")
    args = parser.parse_args()
    if args.sample:
        return write_sample(args.sample)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    if args.verify_ratio:
        logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
        logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)
        return verify_ratio(5 if args.quick else 20, 3 if args.quick else 5, args.python)
    # pyHanko warns on every baseline signature that fetching is off (on purpose: offline)
    logging.getLogger("pyhanko").setLevel(logging.ERROR)

    from signer.pdf.model import passport_data
    from signer.pdf.sign import PassportPdfSigner

    csca, ca_key, key, crl = _pki()
    records = _records()
    issuer = Hc1Issuer(key, issuer_name="Ministry of Health of Viet Nam")
    state = {"i": 0}

    def next_data() -> Any:
        rec = records[state["i"] % len(records)]
        state["i"] += 1
        issued = issuer.issue(rec, now=NOW, allow_unverified=True)
        return passport_data(
            dcc=issued.dcc, hc1=issued.hc1, centre=CENTRE, record=rec,
            issued_at=NOW, expires_at=dt.datetime.fromtimestamp(issued.exp, dt.UTC),
        )

    n_base, n_ours, rounds = (5, 50, 3) if args.quick else (15, 200, 5)
    t0 = time.perf_counter()
    plain = Straightforward(key, crl, stamp=True)
    nostamp = Straightforward(key, crl, stamp=False)
    ours = PassportPdfSigner(key, centre=CENTRE, crls=[crl], now=NOW)
    setup_ms = (time.perf_counter() - t0) * 1000
    from signer.pdf.reference import PyHankoPassportSigner

    tuned = PyHankoPassportSigner(key, centre=CENTRE, crls=[crl], now=NOW)
    sizes: dict[str, list[int]] = {
        "straightforward": [], "no stamp": [], "tuned": [], "ours": [], "softhsm": [], "blt": []
    }

    def run_plain() -> None:
        sizes["straightforward"].append(len(plain.sign(plain.render(next_data()))))

    def run_nostamp() -> None:
        sizes["no stamp"].append(len(nostamp.sign(nostamp.render(next_data()))))

    def run_tuned() -> None:
        sizes["tuned"].append(len(tuned.sign(next_data(), now=NOW)))

    def run_ours() -> None:
        sizes["ours"].append(len(ours.sign(next_data(), now=NOW)))

    # split of the straightforward pipeline
    data = next_data()
    render_ms = _best_ms(lambda: plain.render(data), n_base, rounds)
    pdf0 = plain.render(data)
    sign_ms = _best_ms(lambda: plain.sign(pdf0), n_base, rounds)

    for fn in (run_plain, run_nostamp, run_tuned, run_ours):  # warm-up
        fn()
    tuned_ms = _best_ms(run_tuned, n_base, rounds)
    # paired rounds: baseline and ours in alternation, median of per-round ratios
    pairs: list[tuple[float, float, float]] = []
    for _ in range(rounds):
        b = _best_ms(run_plain, n_base, 1)
        ns = _best_ms(run_nostamp, n_base, 1)
        o = _best_ms(run_ours, n_ours, 1)
        pairs.append((b, ns, o))
    base_ms = statistics.median(p[0] for p in pairs)
    nostamp_ms = statistics.median(p[1] for p in pairs)
    ours_ms = statistics.median(p[2] for p in pairs)
    ratio = statistics.median(p[0] / p[2] for p in pairs)
    ratio_nostamp = statistics.median(p[1] / p[2] for p in pairs)
    qr_only = _best_ms(lambda: __import__("signer.pdf.qr", fromlist=["x"]).qr_matrix(data.hc1),
                       n_ours, rounds)

    with tempfile.TemporaryDirectory() as tmp:
        token_key = _softhsm_key(csca, ca_key, Path(tmp))
        with token_key:
            token_issuer = Hc1Issuer(token_key, issuer_name="Ministry of Health of Viet Nam")
            token_signer = PassportPdfSigner(token_key, centre=CENTRE, crls=[crl], now=NOW)

            def run_token() -> None:
                rec = records[state["i"] % len(records)]
                state["i"] += 1
                issued = token_issuer.issue(rec, now=NOW, allow_unverified=True)
                d = passport_data(dcc=issued.dcc, hc1=issued.hc1, centre=CENTRE, record=rec,
                                  issued_at=NOW,
                                  expires_at=dt.datetime.fromtimestamp(issued.exp, dt.UTC))
                sizes["softhsm"].append(len(token_signer.sign(d, now=NOW)))

            run_token()
            token_ms = _best_ms(run_token, n_ours, rounds)

    # B-LT: a signature timestamp per passport from the TSA (keys.tsa) over loopback HTTP;
    # the TSA runs in a thread of this process, on the same (pinned) CPU
    import threading

    from keys.tsa import TimeStampAuthority, make_server, make_tsa_certificate
    from signer.pdf.tsa import HttpTimestamper

    tsa_key = new_private_key("ec-p256")
    tsa_cert = make_tsa_certificate(csca, ca_key, tsa_key.public_key(), now=NOW - dt.timedelta(days=1))
    tsa_server = make_server(TimeStampAuthority(key=tsa_key, certificate=tsa_cert), clock=lambda: NOW)
    threading.Thread(target=tsa_server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    try:
        stamper = HttpTimestamper(f"http://127.0.0.1:{tsa_server.server_address[1]}/")
        blt = PassportPdfSigner(key, centre=CENTRE, crls=[crl], now=NOW, timestamper=stamper)

        def run_blt() -> None:
            sizes["blt"].append(len(blt.sign(next_data(), now=NOW)))

        run_blt()
        blt_ms = _best_ms(run_blt, n_ours, rounds)
        tsa_ms = _best_ms(lambda: stamper.timestamp(b"signature"), n_ours, rounds)
        blt_sample = blt.sign(next_data(), now=NOW)
    finally:
        stamper.close()
        tsa_server.shutdown()
        tsa_server.server_close()

    # verification of our output (pyHanko validation + pdftoppm + zxing + pdftotext)
    from verifier.pdf import verify_pdf
    from verifier.trust import load_trust

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "csca.pem").write_bytes(csca.public_bytes(Encoding.PEM))
        (Path(tmp) / "dsc.pem").write_bytes(key.certificate.public_bytes(Encoding.PEM))
        trust = load_trust([Path(tmp) / "csca.pem", Path(tmp) / "dsc.pem"], now=NOW,
                           state_dir=Path(tmp) / "state")
        sample = ours.sign(next_data(), now=NOW)
        assert verify_pdf(sample, trust, now=NOW).valid
        verify_ms = _best_ms(lambda: verify_pdf(sample, trust, now=NOW), 5, 2)
        blt_verdict = verify_pdf(blt_sample, trust, now=NOW)
        assert blt_verdict.valid and (blt_verdict.signer or {}).get("pades_level") == "B-LT"
        verify_blt_ms = _best_ms(lambda: verify_pdf(blt_sample, trust, now=NOW), 5, 2)

    def kb(name: str) -> str:
        return f"{statistics.mean(sizes[name]) / 1024:.1f} KiB"

    print(f"setup (fonts, templates, CMS template, pyHanko imports): {setup_ms:.0f} ms, once")
    print(f"straightforward, split: render {render_ms:.1f} ms + pyHanko sign {sign_ms:.1f} ms")
    print(f"{'pipeline (median ms of the rounds)':<42}{'ms/passport':>12}{'passports/s':>13}{'size':>12}")
    for name, ms, size in (
        ("straightforward (reportlab+qrcode+PdfSigner)", base_ms, "straightforward"),
        ("  same without visible stamp", nostamp_ms, "no stamp"),
        ("our page + PdfSigner tuned (KeySigner)", tuned_ms, "tuned"),
        ("ours, software key", ours_ms, "ours"),
        ("ours, SoftHSM2 token", token_ms, "softhsm"),
        ("ours B-LT, software key + TSA (loopback)", blt_ms, "blt"),
    ):
        print(f"{name:<42}{ms:>12.2f}{1000 / ms:>13.1f}{kb(size):>12}")
    print(f"  of which the QR matrix (zxing-cpp, level Q): {qr_only:.2f} ms")
    met = "met" if ratio >= 10 else "MISSED"
    print(f"ratio ours / straightforward (median of {rounds} paired rounds): {ratio:.1f}x "
          f"(target >= 10x: {met}); vs no-stamp: {ratio_nostamp:.1f}x; "
          f"SoftHSM2 vs straightforward: {base_ms / token_ms:.1f}x")
    print("per-round ratios: " + ", ".join(f"{p[0] / p[2]:.1f}x" for p in pairs))
    print(f"  of which the TSA round trip (HTTP keep-alive, token by keys.tsa): {tsa_ms:.2f} ms")
    print(f"verifier pdf (signature, render + QR decode, text): {verify_ms:.0f} ms per document"
          f" (B-B), {verify_blt_ms:.0f} ms (B-LT, timestamp validated too)")

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(200):
            run_ours()
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(20)
    return 0 if ratio >= 10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
