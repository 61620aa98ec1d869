"""A real, throwaway PostgreSQL cluster for the registry tests.

    def test_pg(pg_dsn): psycopg.connect(pg_dsn)

initdb/pg_ctl from Debian's ``postgresql`` package (scripts/setup.sh installs
it) run in a temporary directory on a unix socket and a free TCP port that
only listens on loopback. As root, the server runs as the ``postgres`` user
(runuser): PostgreSQL refuses to run as root. Missing binaries fail the
test with a clear message; nothing is skipped.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bindir() -> Path:
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(cand, "initdb").exists():
            return Path(cand)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    pytest.fail(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install the Debian package "
        "'postgresql' (bash scripts/setup.sh does)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    bindir = _bindir()
    # Not under pytest's basetemp: a second pytest session resets
    # /tmp/pytest-of-<user> to 0700, which would cut the 'postgres' user off
    # from a running server's data directory (it then aborts).
    base = Path(tempfile.mkdtemp(prefix="vndcc-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    if as_root:
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.fail("running as root needs 'runuser' (util-linux) to start PostgreSQL as 'postgres'")
        prefix = [runuser, "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        os.chmod(base, 0o700)
    user = "postgres" if as_root else os.environ.get("USER", "postgres")
    subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", user, "-A", "trust", "--no-sync", "-E", "UTF8"],
        check=True, capture_output=True,
    )  # fmt: skip
    port = _free_port()
    opts = f"-k {sock} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-w", "-l", str(base / "log"), "start"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield f"postgresql://{user}@/postgres?host={sock}&port={port}"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True, check=False,
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)
