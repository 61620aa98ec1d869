"""``signer portal api-key``: a key goes to a 0600 file only; list and revoke by id."""

from __future__ import annotations

import argparse
import io
import stat
from pathlib import Path

import pytest

from signer.ledger import Ledger
from signer.web import apikeys
from signer.web.keys import PortalKeys
from verifier.errors import ConfigError


def _cli(argv: list[str]) -> str:
    parser = argparse.ArgumentParser()
    apikeys.register(parser.add_subparsers(dest="cmd", required=True))
    ns = parser.parse_args(argv)
    out = io.StringIO()
    assert ns.func(ns, out=out) == 0
    return out.getvalue()


def test_api_key_cli_make_list_revoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VNDCC_LEDGER_KEY", raising=False)
    ledger = str(tmp_path / "ledger.sqlite")
    key_file = tmp_path / "centre-a.key"
    shown = _cli(["api-key", "--ledger", ledger, "--centre", "Centre A", "--label", "laptop", "--out", str(key_file)])
    key = key_file.read_text("ascii").strip()
    assert apikeys.KEY_FORMAT.fullmatch(key)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key not in shown and key[6:20] not in shown and str(key_file) in shown
    second = tmp_path / "centre-a-2.key"
    _cli(["api-key", "--ledger", ledger, "--centre", "Centre A", "--out", str(second)])
    with pytest.raises(ConfigError, match="exists"):
        _cli(["api-key", "--ledger", ledger, "--centre", "Centre A", "--out", str(key_file)])

    listing = _cli(["api-key", "--ledger", ledger, "--list"])
    lines = listing.strip().splitlines()
    assert len(lines) == 2 and all("active" in ln for ln in lines)
    assert key not in listing
    db_ledger = Ledger.open(ledger, actor="test", create=False)
    try:
        keys = PortalKeys(db_ledger.key.portal)
        stored = db_ledger.db.fetchall("SELECT key_hash FROM api_keys")
        assert all(key not in str(row) for row in stored)  # only the HMAC is stored
        who = apikeys.authenticate(db_ledger.db, keys, f"Bearer {key}")
        assert who is not None and (who.centre, who.label) == ("Centre A", "laptop")
        key_id = next(ln.split()[0] for ln in lines if "laptop" in ln)
        assert who.key_id == key_id
        _cli(["api-key", "--ledger", ledger, "--revoke", key_id])
        assert apikeys.authenticate(db_ledger.db, keys, f"Bearer {key}") is None
        other = second.read_text("ascii").strip()
        assert apikeys.authenticate(db_ledger.db, keys, f"bearer {other}") is not None
        with pytest.raises(ConfigError, match="already revoked"):
            _cli(["api-key", "--ledger", ledger, "--revoke", key_id])
        with pytest.raises(ConfigError, match="no API key"):
            _cli(["api-key", "--ledger", ledger, "--revoke", "00000000"])
        with pytest.raises(ConfigError, match="hex digits"):
            _cli(["api-key", "--ledger", ledger, "--revoke", "zz"])
    finally:
        db_ledger.close()
    assert "revoked" in _cli(["api-key", "--ledger", ledger, "--list", "--centre", "Centre A"])
    with pytest.raises(ConfigError, match="exactly one"):
        _cli(["api-key", "--ledger", ledger, "--list", "--out", str(tmp_path / "x")])
    with pytest.raises(ConfigError, match="printable"):
        _cli(["api-key", "--ledger", ledger, "--centre", "bad\nname", "--out", str(tmp_path / "y")])
    assert not (tmp_path / "y").exists()  # no file, no key, when refused


def test_api_key_through_the_signer_command(tmp_path: Path) -> None:
    """The same through ``python -m signer portal api-key`` (the command an operator runs)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "VNDCC_LEDGER_KEY"}
    key_file = tmp_path / "k.key"
    done = subprocess.run([sys.executable, "-m", "signer", "portal", "api-key", "--ledger", str(tmp_path / "l.sqlite"),
                           "--centre", "Centre B", "--out", str(key_file)],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    key = key_file.read_text("ascii").strip()
    assert apikeys.KEY_FORMAT.fullmatch(key) and key not in done.stdout + done.stderr
    again = subprocess.run([sys.executable, "-m", "signer", "portal", "api-key", "--ledger", str(tmp_path / "l.sqlite"),
                            "--centre", "Centre B", "--out", str(key_file)],
                           capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert again.returncode == 2 and "exists" in again.stderr and "Traceback" not in again.stderr
