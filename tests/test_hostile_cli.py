"""Absurd command-line values get one clean error line and exit 2 (issue 8, point 5).

Fuzzing found tracebacks (OverflowError, ValueError) for ``--at`` far in the
future, ``--days 1000000000``, an empty or 100,000-character ``--name``,
``--port 99999``, and a ``--centre`` of 30,000 characters that took 38 s per
record. Each CLI runs as the operator runs it: a subprocess of
``python -m ...``.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keys.cli import MAX_DAYS
from verifier.errors import ConfigError
from verifier.util import EARLIEST_TIME, LATEST_TIME, parse_iso_time

ROOT = Path(__file__).resolve().parents[1]
PASSPHRASE = "hostile-test-passphrase"


def run(*argv: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VNDCC_CSCA_PASSPHRASE": PASSPHRASE,
        "VNDCC_KEY_PASSPHRASE": PASSPHRASE,
        "VNDCC_VERIFIER_STATE": str(cwd / "state"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    env.pop("VNDCC_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def assert_usage_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 2, nothing on stdout, one stderr line naming the problem, no traceback."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "error:" in lines[0] and "internal error" not in lines[0]
    assert len(lines[0]) < 400
    for word in words:
        assert word in lines[0]
    assert done.stdout == ""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PKI with a CSCA, one DSC and a CRL (made by the real CLI)."""
    work = tmp_path_factory.mktemp("hostile-cli")
    for argv in (
        ("keys", "init-csca", "--pki", "pki", "--now", "2026-06-01T00:00:00Z"),
        ("keys", "issue-dsc", "--pki", "pki", "--name", "Tram A", "--now", "2026-06-01T00:00:00Z"),
        ("keys", "issue-crl", "--pki", "pki", "--now", "2026-06-01T00:00:00Z"),
    ):
        done = run(*argv, cwd=work)
        assert done.returncode == 0, done.stderr
    return work


def _dsc(pki: Path) -> tuple[Path, Path]:
    cert = next(p for p in (pki / "pki" / "dsc").glob("tram-a-*.pem") if not p.name.endswith(".key.pem"))
    return cert, cert.with_name(cert.name[: -len(".pem")] + ".key.pem")


# --------------------------------------------------------------------------
# --at / --now: bounded to 1970 .. 2999 in every CLI

ABSURD_TIMES = [
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-14:00",  # out of range once in UTC
    "0001-01-01T00:00:00+14:00",
    "0001-01-01",
    "1969-12-31T23:59:59Z",
    "3000-01-01T00:00:00Z",
    "not a time",
    "2" * 100_000,
]


@pytest.mark.parametrize("at", ABSURD_TIMES)
def test_verifier_qr_absurd_at(pki: Path, at: str) -> None:
    cert, _ = _dsc(pki)
    done = run("verifier", "qr", "--trust", str(cert), "--json", "--at", at, "HC1:6BF", cwd=pki)
    assert_usage_error(done, "--at")


def test_verifier_trust_show_and_pdf_absurd_at(pki: Path) -> None:
    cert, _ = _dsc(pki)
    at = "9999-12-31T23:59:59Z"
    assert_usage_error(run("verifier", "trust", "show", str(cert), "--at", at, cwd=pki), "--at")
    pdf = pki / "x.pdf"
    pdf.write_bytes(b"%PDF-1.7\n")
    done = run("verifier", "pdf", "--trust", str(cert), "--json", "--at", at, str(pdf), cwd=pki)
    assert_usage_error(done, "--at")


@pytest.mark.parametrize("at", ["2999-12-31T23:59:59Z", "1970-01-01T00:00:00Z"])
def test_verifier_qr_extreme_but_accepted_at(pki: Path, at: str) -> None:
    """The bounds themselves verify (invalid QR: one JSON line, exit 1), no overflow."""
    cert, _ = _dsc(pki)
    done = run("verifier", "qr", "--trust", str(cert), "--json", "--at", at, "HC1:6BF", cwd=pki)
    assert done.returncode == 1, done.stderr
    assert done.stderr == "" and len(done.stdout.strip().splitlines()) == 1
    assert '"valid": false' in done.stdout


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_keys_absurd_now(pki: Path, at: str) -> None:
    done = run("keys", "issue-crl", "--pki", "pki", "--now", at, cwd=pki)
    assert_usage_error(done, "--now")


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_signer_absurd_at(pki: Path, at: str) -> None:
    cert, key = _dsc(pki)
    records = pki / "one.jsonl"
    records.write_text((ROOT / "examples" / "records.jsonl").read_text().splitlines()[0] + "\n")
    done = run(
        "signer", "sign", str(records), "--out", "out", "--key", str(key), "--cert", str(cert),
        "--at", at, cwd=pki,
    )  # fmt: skip
    assert_usage_error(done, "--at")


# --------------------------------------------------------------------------
# keys: --days, --name, --organization, --port, selectors


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (("init-csca", "--pki", "new", "--days", "1000000000"), "--days"),
        (("init-csca", "--pki", "new", "--days", "0"), "--days"),
        (("init-csca", "--pki", "new", "--days", "-5"), "--days"),
        (("init-csca", "--pki", "new", "--days", "1e3"), "--days"),
        (("init-csca", "--pki", "new", "--name", ""), "--name"),
        (("init-csca", "--pki", "new", "--name", "   "), "--name"),
        (("init-csca", "--pki", "new", "--name", "x" * 100_000), "--name"),
        (("init-csca", "--pki", "new", "--name", "a\nb"), "--name"),
        (("init-csca", "--pki", "new", "--organization", "o" * 65), "--organization"),
        (("issue-dsc", "--pki", "pki", "--name", ""), "--name"),
        (("issue-dsc", "--pki", "pki", "--name", "x" * 100_000), "--name"),
        (("issue-dsc", "--pki", "pki", "--name", "x" * 65), "--name"),
        (("issue-dsc", "--pki", "pki", "--name", "Trạm Y tế Phường Bến Nghé, Quận 1, TP Hồ Chí Minh!"),
         "--name"),  # 65 bytes in UTF-8
        (("issue-dsc", "--pki", "pki", "--name", "Tram B", "--days", "1000000000"), "--days"),
        (("issue-crl", "--pki", "pki", "--days", "1000000000"), "--days"),
        (("init-tl-signer", "--pki", "pki", "--days", "1000000000"), "--days"),
        (("init-tsa", "--pki", "pki", "--days", "1000000000"), "--days"),
        (("export-trust-list", "--pki", "pki", "--next-update-days", "1000000000"),
         "--next-update-days"),
        (("export-trust-list", "--pki", "pki", "--next-update-days", "-1"), "--next-update-days"),
        (("tsa-serve", "--pki", "pki", "--port", "99999"), "--port"),
        (("tsa-serve", "--pki", "pki", "--port", "-1"), "--port"),
        (("tsa-serve", "--pki", "pki", "--port", "http"), "--port"),
        (("revoke-dsc", "--pki", "pki", "x" * 100_000), "SERIAL|KID|NAME"),
        (("revoke-uvci", "--pki", "pki", ""), "UVCI"),
    ],
)
def test_keys_absurd_values(pki: Path, argv: tuple[str, ...], option: str) -> None:
    done = run("keys", *argv, cwd=pki)
    assert_usage_error(done, option)
    assert not (pki / "new").exists()


def test_keys_longest_name_accepted(pki: Path) -> None:
    """64 bytes (X.520 ub-common-name as cryptography counts it), and 100 years, are fine."""
    name = "Trạm Y tế Phường Bến Nghé, Quận 1, TP Hồ Chí Minh"
    assert len(name.encode()) == 64
    done = run(
        "keys", "issue-dsc", "--pki", "pki", "--name", name, "--days", "36500",
        "--now", "2026-06-01T00:00:00Z", cwd=pki,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------
# signer: --centre and the other free texts


@pytest.mark.parametrize(
    ("extra", "option"),
    [
        (("--pdf", "--centre", "c" * 30_000), "--centre"),
        (("--pdf", "--centre", "c" * 201), "--centre"),
        (("--pdf", "--centre", ""), "--centre"),
        (("--pdf", "--centre", "Tram", "--location", "l" * 30_000), "--location"),
        (("--allow-unverified", "--override-reason", "r" * 100_000), "--override-reason"),
        (("--allow-unverified", "--override-reason", "ok", "--operator", "o" * 100_000),
         "--operator"),
        (("--pdf", "--centre", "Tram\x00A"), "--centre"),
        (("--country", "V" * 30_000), "--country"),
        (("--country", "vn"), "--country"),
        (("--jobs", "100000"), "--jobs"),  # a fork per job
        (("--pdf", "--centre", "Tram", "--tsa-url", "http://" + "a" * 3000), "--tsa-url"),
        (("--pdf", "--centre", "Tram", "--tsa-url", "http://localhost:99999/"), "--tsa-url"),
        (("--pdf", "--centre", "Tram", "--tsa-url", "file:///etc/passwd"), "--tsa-url"),
    ],
)
def test_signer_long_texts(pki: Path, extra: tuple[str, ...], option: str) -> None:
    cert, key = _dsc(pki)
    records = pki / "one.jsonl"
    records.write_text((ROOT / "examples" / "records.jsonl").read_text().splitlines()[0] + "\n")
    crl = pki / "pki" / "crl" / "crl-1.der"
    args = [a.replace("\x00", "\x01") for a in extra]  # argv cannot hold NUL
    for command in ("sign", "pdf"):
        argv = [a for a in args if command == "sign" or a != "--pdf"]
        done = run(
            "signer", command, str(records), "--out", "out", "--key", str(key), "--cert",
            str(cert), "--crl", str(crl), *argv, timeout=30, cwd=pki,
        )  # fmt: skip
        assert_usage_error(done, option)
    assert not (pki / "out").exists()


# --------------------------------------------------------------------------
# the shared time parser, property-tested


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40),
        st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat()),
        st.datetimes().map(lambda t: t.isoformat() + "Z"),
    )
)
def test_parse_iso_time_gives_a_time_in_range_or_a_config_error(text: str) -> None:
    try:
        value = parse_iso_time(text)
    except ConfigError as err:
        assert "\n" not in str(err) and len(str(err)) < 1000  # one line
        return
    assert value.tzinfo is dt.UTC
    assert EARLIEST_TIME <= value < LATEST_TIME
    # what a command does with it next must not overflow
    _ = value + dt.timedelta(days=MAX_DAYS) + dt.timedelta(minutes=5)
    _ = value - dt.timedelta(days=MAX_DAYS)


def test_verifier_does_not_echo_a_huge_trust_path(tmp_path: Path) -> None:
    """A 100,000-character --trust path is shown shortened (the error stays one short line)."""
    done = run("verifier", "qr", "--trust", "/tmp/" + "a" * 100_000, "HC1:X", cwd=tmp_path)
    assert_usage_error(done, "cannot read", "...")
