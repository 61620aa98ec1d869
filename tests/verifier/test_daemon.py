"""`python -m verifier daemon` and its client (issue 13): real processes, no mocks.

Every served command must answer exactly what a local run answers: the same
stdout and stderr bytes and the same exit code. The client is run through
``verifier.__main__.main`` (the console script's entry point) with a marker
saying whether it ran the command itself, so that a silent fallback to a
local run cannot pass for an answer of the daemon.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from signer.qr import qr_png

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors" / "pdf-tamper"
AT = "2026-06-01T12:00:00Z"

#: The console script's entry point, then a marker: 1 when the command was
#: answered without importing verifier.cli here (by the daemon), else 0.
CLIENT = (
    "import os, sys\n"
    "exec(os.environ.get('TEST_PRELUDE', ''))\n"
    "from verifier.__main__ import main\n"
    "try:\n"
    "    sys.exit(main())\n"
    "finally:\n"
    "    with open(os.environ['TEST_MARKER'], 'w') as fh:\n"
    "        fh.write('0' if 'verifier.cli' in sys.modules else '1')\n"
)


class Daemon:
    def __init__(self, proc: subprocess.Popen[bytes], path: Path) -> None:
        self.proc, self.path = proc, path

    def cpu_ticks(self) -> int:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def start_daemon(path: Path, *extra: str, wait: bool = True, cwd: Path = ROOT) -> Daemon:
    proc = subprocess.Popen(
        [sys.executable, "-m", "verifier", "daemon", "--socket", str(path), *extra],
        cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    daemon = Daemon(proc, path)
    if wait:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
        assert line.startswith(f"verifier daemon: listening on {path}"), line
    return daemon


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client's cwd: a copy of one passport, a QR text file and a QR image, by relative names."""
    work = tmp_path_factory.mktemp("client")
    shutil.copy(VECTORS / "clean" / "passport.pdf", work / "passport.pdf")
    done = subprocess.run(
        [sys.executable, "-m", "verifier", "pdf", "--json", "--at", AT, "--trust",
         str(VECTORS / "trust" / "csca.pem"), "--trust", str(VECTORS / "trust" / "trustlist.cbor"),
         "passport.pdf"],
        cwd=work, capture_output=True, timeout=120, check=False, env={**os.environ, "VNDCC_VERIFIER_STATE": str(work / "state")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = json.loads(done.stdout)["qr_text"]
    (work / "qr.txt").write_text(text + "\n")
    (work / "qr.png").write_bytes(qr_png(text))
    (work / "folder").mkdir()
    shutil.copy(VECTORS / "digest-mismatch" / "passport.pdf", work / "folder" / "a.pdf")
    return work


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    running = start_daemon(tmp_path_factory.mktemp("sock") / "verify.sock", "--idle-exit", "300")
    yield running
    running.stop()


def run(argv: list[str], cwd: Path, *, socket_path: Path | None, strict: bool = True,
        marker: Path, stdin: bytes = b"", prelude: str = "") -> tuple[int, bytes, bytes, bool]:  # fmt: skip
    """(exit, stdout, stderr, served by the daemon) of the real entry point."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VNDCC_VERIFY_DAEMON")}
    env["VNDCC_VERIFIER_STATE"] = str(cwd / "state")
    env["TEST_MARKER"] = str(marker)
    env["TEST_PRELUDE"] = prelude
    if socket_path is not None:
        env["VNDCC_VERIFY_DAEMON"] = str(socket_path)
        if strict:
            env["VNDCC_VERIFY_DAEMON_STRICT"] = "1"
    done = subprocess.run([sys.executable, "-c", CLIENT, *argv], cwd=cwd, env=env, input=stdin,
                          capture_output=True, timeout=120, check=False)  # fmt: skip
    return done.returncode, done.stdout, done.stderr, marker.read_text() == "1"


def _trust(*names: str) -> list[str]:
    return [a for n in names for a in ("--trust", str(VECTORS / "trust" / n))]


LIST = ("csca.pem", "trustlist.cbor")
SERVED = {
    "valid-relative": ["pdf", *_trust(*LIST), "--at", AT, "passport.pdf"],
    "valid-json": ["pdf", *_trust(*LIST), "--at", AT, "--json", "passport.pdf"],
    "valid-now": ["pdf", *_trust(*LIST), "passport.pdf"],  # the clock read per run (--json shows it)
    "valid-vi": ["pdf", *_trust(*LIST), "--at", AT, "--lang", "vi", "passport.pdf"],
    "unknown-kid": ["pdf", *_trust("csca.pem", "dsc-expired.pem"), "--at", AT, "passport.pdf"],
    "b-lt": ["pdf", *_trust(*LIST), "--at", AT, "--json", str(VECTORS / "b-lt-clean" / "passport.pdf")],
    **{
        f"tamper-{name}": ["pdf", *_trust(*LIST), "--at", AT, str(VECTORS / name / "passport.pdf")]
        for name in ("digest-mismatch", "metadata-update", "revoked-dsc", "expired-dsc-backdated",
                     "name-painted-over")
    },
    "tamper-json": ["pdf", *_trust(*LIST), "--at", AT, "--json", str(VECTORS / "page-added" / "passport.pdf")],
    "qr-file": ["qr", *_trust(*LIST), "--at", AT, "--qr-file", "qr.txt"],
    "qr-file-json": ["qr", *_trust(*LIST), "--at", AT, "--json", "--qr-file", "qr.txt"],
    "qr-image": ["qr", *_trust(*LIST), "--at", AT, "--image", "qr.png"],
    "qr-text-garbage": ["qr", *_trust(*LIST), "--at", AT, "HC1:NOT-BASE45"],
    "bad-option": ["pdf", "--bogus", "passport.pdf"],
    "bad-at": ["qr", *_trust(*LIST), "--at", "yesterday", "--qr-file", "qr.txt"],
    "help": ["pdf", "--help"],
}


@pytest.mark.parametrize("name", sorted(SERVED))
def test_served_answer_equals_a_local_run(name: str, daemon: Daemon, workdir: Path, tmp_path: Path) -> None:
    argv = SERVED[name]
    local = run(argv, workdir, socket_path=None, marker=tmp_path / "local")
    served = run(argv, workdir, socket_path=daemon.path, marker=tmp_path / "served")
    assert not local[3] and served[3], "the daemon did not answer (the client ran it itself)"
    assert served[:3] == local[:3]
    assert local[0] in (0, 1, 2) and (local[1] or local[2])


def test_outcomes_are_the_verifiers(daemon: Daemon, workdir: Path, tmp_path: Path) -> None:
    """Not only equal: the served verdicts are the right ones."""
    codes = {n: run(SERVED[n], workdir, socket_path=daemon.path, marker=tmp_path / "m")
             for n in ("valid-json", "tamper-digest-mismatch", "bad-option")}  # fmt: skip
    codes["missing-file"] = run(["pdf", *_trust(*LIST), "--at", AT, "missing.pdf"], workdir,
                                socket_path=daemon.path, marker=tmp_path / "m")  # fmt: skip
    assert json.loads(codes["valid-json"][1])["valid"] is True and codes["valid-json"][0] == 0
    assert codes["tamper-digest-mismatch"][0] == 1 and b"digest_mismatch" in codes["tamper-digest-mismatch"][1]
    assert codes["missing-file"][:3] == (2, b"", b"error: cannot read missing.pdf: No such file or directory\n")
    assert codes["bad-option"][0] == 2 and b"required: --trust" in codes["bad-option"][2]


def test_the_entry_point_python_m_verifier(daemon: Daemon, workdir: Path) -> None:
    env = {**os.environ, "VNDCC_VERIFY_DAEMON": str(daemon.path), "VNDCC_VERIFY_DAEMON_STRICT": "1",
           "VNDCC_VERIFIER_STATE": str(workdir / "state")}  # fmt: skip
    before = daemon.cpu_ticks()
    done = subprocess.run([sys.executable, "-m", "verifier", *SERVED["valid-relative"]], cwd=workdir,
                          env=env, capture_output=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith(b"passport.pdf: VALID\n"), done.stderr
    assert daemon.cpu_ticks() > before  # the daemon did the work


@pytest.mark.parametrize(
    "argv",
    [
        ["pdf", *_trust(*LIST), "--at", AT, "--jobs", "1", "folder"],  # a folder: parallel, client-side
        ["qr", *_trust(*LIST), "--at", AT, "--qr-file", "-"],  # standard input
        ["trust", "show", str(VECTORS / "trust" / "csca.pem")],  # not pdf/qr
        # not an existing regular file: read by the client itself, as a local run reads it
        ["pdf", *_trust(*LIST), "--at", AT, "missing.pdf"],
        ["pdf", "--trust", "nowhere.pem", "passport.pdf"],
        ["qr", *_trust(*LIST), "--at", AT, "--rules", "folder", "--qr-file", "qr.txt"],
    ],
)
def test_not_served_runs_locally_even_when_strict(argv: list[str], daemon: Daemon, workdir: Path,
                                                  tmp_path: Path) -> None:  # fmt: skip
    local = run(argv, workdir, socket_path=None, marker=tmp_path / "local")
    client = run(argv, workdir, socket_path=daemon.path, marker=tmp_path / "client")
    assert not client[3] and client[:2] == local[:2]
    if argv[0] != "pdf":  # a folder's last progress line shows its rate (files/s)
        assert client[2] == local[2]


@pytest.mark.parametrize(
    ("argv", "source"),
    [
        (["qr", *_trust(*LIST), "--at", AT, "--qr-file", "/dev/stdin"], "qr.txt"),
        (["qr", *_trust(*LIST), "--at", AT, "--qr-file", "/proc/self/fd/0"], "qr.txt"),
        (["qr", *_trust(*LIST), "--at", AT, "--image", "/dev/fd/0"], "qr.png"),
        (["pdf", *_trust(*LIST), "--at", AT, "/dev/stdin"], "passport.pdf"),
        (["pdf", *_trust(*LIST), "--at", AT, "stdin-link"], "passport.pdf"),  # a symlink to /dev/stdin
    ],
)
def test_the_clients_descriptors_are_read_by_the_client(argv: list[str], source: str, daemon: Daemon,
                                                        workdir: Path, tmp_path: Path) -> None:  # fmt: skip
    """/dev/stdin, /dev/fd/N, /proc/self/...: in the daemon they would be its own (a wrong
    verdict); the client runs them itself, with the verdict of a local run (VALID)."""
    (tmp_path / "stdin-link").symlink_to("/dev/stdin")
    data = (workdir / source).read_bytes()
    local = run(argv, tmp_path, socket_path=None, marker=tmp_path / "local", stdin=data)
    client = run(argv, tmp_path, socket_path=daemon.path, marker=tmp_path / "client", stdin=data)
    assert local[0] == 0 and b"VALID" in local[1], local
    assert not client[3] and client[:3] == local[:3]


@pytest.mark.parametrize("option", ["--qr-file", "--trust", "--rules", "FILE"])
def test_a_fifo_never_blocks_the_daemon(option: str, daemon: Daemon, workdir: Path, tmp_path: Path) -> None:
    """A FIFO as any file argument is not served (the daemon would block on it for every
    client); the client reads it itself, and the daemon keeps answering others."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    content = {"--qr-file": workdir / "qr.txt", "--trust": VECTORS / "trust" / "trustlist.cbor",
               "--rules": None, "FILE": workdir / "passport.pdf"}[option]  # fmt: skip
    argv = {
        "--qr-file": ["qr", *_trust(*LIST), "--at", AT, "--qr-file", str(fifo)],
        "--trust": ["pdf", *_trust("csca.pem"), "--trust", str(fifo), "--at", AT, "passport.pdf"],
        "--rules": ["qr", *_trust(*LIST), "--at", AT, "--rules", str(fifo), "--qr-file", "qr.txt"],
        "FILE": ["pdf", *_trust(*LIST), "--at", AT, str(fifo)],
    }[option]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VNDCC_VERIFY_DAEMON")}
    env.update(VNDCC_VERIFY_DAEMON=str(daemon.path), VNDCC_VERIFY_DAEMON_STRICT="1",
               VNDCC_VERIFIER_STATE=str(workdir / "state"), TEST_MARKER=str(tmp_path / "m"))  # fmt: skip
    client = subprocess.Popen([sys.executable, "-c", CLIENT, *argv], cwd=workdir, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        other = run(SERVED["qr-file"], workdir, socket_path=daemon.path, marker=tmp_path / "other")
        assert other[0] == 0 and other[3]  # the daemon is not stuck on the FIFO
        deadline = time.monotonic() + 60
        while client.poll() is None and time.monotonic() < deadline:  # the client itself reads it
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no reader yet
                time.sleep(0.02)
                continue
            os.set_blocking(writer, True)
            with open(writer, "wb") as fh:
                if content is not None:
                    fh.write(content.read_bytes())
            break
        out, err = client.communicate(timeout=120)
    finally:
        client.kill()
    assert (tmp_path / "m").read_text() == "0", "the daemon served a FIFO"
    if option != "--rules":
        assert client.returncode == 0 and b"VALID" in out, (out, err)


def test_no_daemon_falls_back_silently_or_fails_clearly_when_strict(workdir: Path, tmp_path: Path) -> None:
    argv = SERVED["valid-relative"]
    local = run(argv, workdir, socket_path=None, marker=tmp_path / "m")
    quiet = run(argv, workdir, socket_path=tmp_path / "none.sock", strict=False, marker=tmp_path / "m")
    assert quiet[:3] == local[:3] and not quiet[3]
    strict = run(argv, workdir, socket_path=tmp_path / "none.sock", marker=tmp_path / "m")
    assert strict[0] == 2 and strict[1] == b""
    assert strict[2] == f"error: verifier daemon at {tmp_path / 'none.sock'}: No such file or directory\n".encode()


def test_a_group_writable_socket_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o770)
    done = subprocess.run([sys.executable, "-m", "verifier", "daemon", "--socket", str(folder / "s.sock")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2 and "accessible to other users (mode 0770)" in done.stderr, done.stderr
    assert not (folder / "s.sock").exists()


def test_missing_socket_directory_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "s.sock"
    running = start_daemon(path, "--idle-exit", "30")
    try:
        assert (path.parent.stat().st_mode & 0o777) == 0o700
        assert (path.stat().st_mode & 0o777) == 0o600
    finally:
        running.stop()
    assert running.proc.returncode == 0 and not path.exists()  # SIGTERM: a clean exit, socket removed


def test_stale_socket_is_replaced_and_a_live_one_refused(workdir: Path, tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: a daemon that was killed
    running = start_daemon(path, "--idle-exit", "60")
    try:
        served = run(SERVED["qr-file"], workdir, socket_path=path, marker=tmp_path / "m")
        assert served[0] == 0 and served[3]
        second = subprocess.run([sys.executable, "-m", "verifier", "daemon", "--socket", str(path)],
                                cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert second.returncode == 2 and f"another daemon answers on {path}" in second.stderr
        assert run(SERVED["qr-file"], workdir, socket_path=path, marker=tmp_path / "m")[3]  # still the first
    finally:
        running.stop()


def test_a_file_that_is_not_a_socket_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    path.write_text("mine")
    done = subprocess.run([sys.executable, "-m", "verifier", "daemon", "--socket", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2 and "exists and is not a socket" in done.stderr
    assert path.read_text() == "mine"


@pytest.mark.parametrize("strict", [False, True])
def test_daemon_killed_mid_request(strict: bool, workdir: Path, tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    running = start_daemon(path)
    argv = SERVED["valid-json"]
    local = run(argv, workdir, socket_path=None, marker=tmp_path / "local")
    running.proc.send_signal(signal.SIGSTOP)  # takes the connection (backlog), never answers
    env = {k: v for k, v in os.environ.items() if not k.startswith("VNDCC_VERIFY_DAEMON")}
    env.update(VNDCC_VERIFY_DAEMON=str(path), VNDCC_VERIFIER_STATE=str(workdir / "state"),
               TEST_MARKER=str(tmp_path / "m"), **({"VNDCC_VERIFY_DAEMON_STRICT": "1"} if strict else {}))  # fmt: skip
    client = subprocess.Popen([sys.executable, "-c", CLIENT, *argv], cwd=workdir, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _has_socket(client.pid):  # the client has connected, then sends at once
            assert time.monotonic() < deadline and client.poll() is None
            time.sleep(0.02)
        time.sleep(0.3)
        running.proc.send_signal(signal.SIGKILL)
        out, err = client.communicate(timeout=120)
    finally:
        running.proc.kill()
        running.stop()
    if strict:
        assert client.returncode == 2 and out == b""
        assert err.startswith(f"error: verifier daemon at {path}: ".encode()), err
    else:
        assert (client.returncode, out, err) == local[:3]


def _has_socket(pid: int) -> bool:
    """Whether process ``pid`` holds a socket (the client: once it has connected)."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd).startswith("socket:"):
                return True
        except OSError:
            continue
    return False


def test_idle_exit_ends_the_daemon(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    running = start_daemon(path, "--idle-exit", "0.5")
    assert running.proc.wait(timeout=30) == 0
    assert not path.exists()
    running.stop()


VALUES = [
    "", "plain", "é ẽ 漢字 \U0001f600", "\x00\x1f\x7f\"\\/\n\t", "\udc80\udcff surrogate-escaped bytes",
    0, 1, -7, 2**70, True, False, None, [], {}, [["a", 1], {"b": [True, None]}],
    {"argv": ["pdf", "--trust", "x y.pem"], "env": {"LANG": "vi_VN.UTF-8", "": "="}, "columns": 80},
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_client_json_equals_the_json_package(value: object) -> None:
    """The client's JSON (the json package's C half, without importing json) is json's."""
    from verifier.daemon import client_dumps, client_loads

    text = client_dumps(value)
    assert text == json.dumps(value)
    assert client_loads(text) == json.loads(text) == value
    assert client_loads(" \n" + json.dumps(value, indent=2) + "\n") == value


@pytest.mark.parametrize("text", ["", "{", '{"a": 1} x', "[1,]", "'a'", '"\\x"', "nul"])
def test_client_json_refuses_what_json_refuses(text: str) -> None:
    from verifier.daemon import client_loads

    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        client_loads(text)


def test_client_imports_nothing_heavy(tmp_path: Path) -> None:
    """A served command imports no module but the verifier package and its daemon module
    beyond what the interpreter's own start did (no json, socket, re, enum, typing)."""
    code = (
        "import sys\nbase = set(sys.modules)\nsys.argv[1:] = ['pdf', '--trust', 'x', 'y.pdf']\n"
        "from verifier.__main__ import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(set(sys.modules) - base))"
    )  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "VNDCC_VERIFY_DAEMON": str(tmp_path / "none.sock"),
                               "VNDCC_VERIFY_DAEMON_STRICT": "1"}, timeout=60, check=False)  # fmt: skip
    assert done.stdout.split("\n")[0] == "['_json', '_socket', 'verifier', 'verifier.__main__', 'verifier.daemon']", done.stdout
    assert "error: verifier daemon at" in done.stderr


def test_trust_files_are_read_again_for_each_request(daemon: Daemon, workdir: Path, tmp_path: Path) -> None:
    """No stale trust: the same argv after its trust file changed gets the new verdict."""
    extra = tmp_path / "extra.trust"
    argv = ["pdf", "--trust", str(VECTORS / "trust" / "csca.pem"), "--trust", str(extra), "--at", AT,
            "passport.pdf"]  # fmt: skip
    shutil.copy(VECTORS / "trust" / "trustlist.cbor", extra)
    first = run(argv, workdir, socket_path=daemon.path, marker=tmp_path / "m")
    shutil.copy(VECTORS / "trust" / "dsc-expired.pem", extra)
    second = run(argv, workdir, socket_path=daemon.path, marker=tmp_path / "m")
    assert first[0] == 0 and first[3] and second[3]
    assert second[0] == 1 and b"unknown_kid" in second[1]
    assert second[:3] == run(argv, workdir, socket_path=None, marker=tmp_path / "m")[:3]


def test_the_package_exports_stay_importable() -> None:
    """`import verifier` is lazy (PEP 562) but its names and __all__ are as before."""
    code = (
        "import sys, verifier\nassert 'verifier.trust' not in sys.modules\n"
        "from verifier import TrustStore, Verdict, load_trust, verify_cose, verify_qr_image, verify_qr_text\n"
        "from verifier.trust import load_trust as lt\nassert load_trust is lt and verifier.load_trust is lt\n"
        "ns = {}\nexec('from verifier import *', ns)\n"
        "print(sorted(k for k in ns if not k.startswith('_')) == sorted(verifier.__all__), "
        "set(verifier.__all__) <= set(dir(verifier)), hasattr(verifier, 'nope'))"
    )  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    assert done.stdout.split() == ["True", "True", "False"], done.stderr


def test_bad_and_slow_clients_do_not_stop_the_daemon(workdir: Path, tmp_path: Path) -> None:
    """A deeply nested request (RecursionError) and a client that trickles its request
    past the deadline: the daemon keeps answering, and logs no request content."""

    path = tmp_path / "s.sock"
    running = start_daemon(path, "--request-timeout", "1")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as bad:
            bad.connect(str(path))
            bad.sendall(b"[" * 200000 + b"\n")
            bad.settimeout(30)
            assert json.loads(bad.makefile("rb").readline())["kind"] == "refused"
        assert run(SERVED["qr-file"], workdir, socket_path=path, marker=tmp_path / "m")[3]

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as slow:
            slow.connect(str(path))
            start = time.monotonic()
            slow.settimeout(0.2)
            answer = b""
            while not answer and time.monotonic() - start < 20:
                try:
                    slow.sendall(b" ")  # one byte per 0.2 s: each recv is in time, the whole is not
                    answer = slow.recv(1 << 16)
                except TimeoutError:
                    continue
                except OSError:
                    break
            assert time.monotonic() - start < 5, "the daemon waited per recv, not for the whole request"
        assert run(SERVED["qr-file"], workdir, socket_path=path, marker=tmp_path / "m")[3]

    finally:
        running.stop()
    assert running.proc.returncode == 0
    assert running.proc.stderr is not None
    log = running.proc.stderr.read() if not running.proc.stderr.closed else b""
    assert b"[[" not in log


def test_the_daemons_starting_folder_may_be_removed(workdir: Path, tmp_path: Path) -> None:
    """The daemon does not live in its starting folder: removed, it still answers."""
    start = tmp_path / "start"
    start.mkdir()
    running = start_daemon(tmp_path / "s.sock", "--idle-exit", "60", cwd=start)
    try:
        start.rmdir()
        for _ in range(2):  # and its state is restored after each request
            served = run(SERVED["qr-file"], workdir, socket_path=running.path, marker=tmp_path / "m")
            assert served[0] == 0 and served[3], served
        assert os.readlink(f"/proc/{running.proc.pid}/cwd") == "/"
    finally:
        running.stop()


@pytest.mark.parametrize(
    "prelude",
    ["sys.modules['_json'] = None", "import _socket\ndel _socket.SO_PEERCRED"],
    ids=["no-_json", "no-SO_PEERCRED"],
)
def test_a_client_without_its_c_modules_runs_locally(prelude: str, daemon: Daemon, workdir: Path,
                                                     tmp_path: Path) -> None:  # fmt: skip
    argv = SERVED["valid-relative"]
    local = run(argv, workdir, socket_path=None, marker=tmp_path / "m", prelude=prelude)
    quiet = run(argv, workdir, socket_path=daemon.path, strict=False, marker=tmp_path / "m", prelude=prelude)
    assert quiet[:3] == local[:3] and local[0] == 0 and not quiet[3]
    strict = run(argv, workdir, socket_path=daemon.path, marker=tmp_path / "m", prelude=prelude)
    assert strict[0] == 2 and strict[1] == b"" and strict[2].count(b"\n") == 1, strict
    assert strict[2].startswith(f"error: verifier daemon at {daemon.path}: ".encode())


def test_a_deeply_nested_answer_means_a_local_run(workdir: Path, tmp_path: Path) -> None:
    import threading

    path = tmp_path / "fake.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)

    def answer() -> None:
        for _ in range(2):
            conn, _ = server.accept()
            with conn:
                conn.recv(1 << 20)
                conn.sendall(b"[" * 200000 + b"\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        argv = SERVED["valid-relative"]
        local = run(argv, workdir, socket_path=None, marker=tmp_path / "m")
        quiet = run(argv, workdir, socket_path=path, strict=False, marker=tmp_path / "m")
        assert quiet[:3] == local[:3] and not quiet[3]
        strict = run(argv, workdir, socket_path=path, marker=tmp_path / "m")
        assert strict[0] == 2 and strict[1] == b"" and strict[2].count(b"\n") == 1, strict
    finally:
        thread.join(timeout=10)
        server.close()


def test_the_daemon_needs_so_peercred(tmp_path: Path) -> None:
    code = ("import socket, sys\ndel socket.SO_PEERCRED\nfrom verifier.cli import main\n"
            f"sys.exit(main(['daemon', '--socket', {str(tmp_path / 's.sock')!r}]))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    assert done.returncode == 2 and "no SO_PEERCRED" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "s.sock").exists()


@pytest.mark.parametrize("redirect", [">&-", ">/dev/full"])
def test_a_failing_stdout_is_answered_as_a_local_run(redirect: str, daemon: Daemon, workdir: Path,
                                                     tmp_path: Path) -> None:  # fmt: skip
    """Once the answer is being written the client never runs the command again; a closed
    stdout or a full disk gives a local run's one line and exit 2, never a traceback."""
    def shell(socket_path: Path | None) -> tuple[int, bytes, bool]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VNDCC_VERIFY_DAEMON")}
        env.update(VNDCC_VERIFIER_STATE=str(workdir / "state"), TEST_MARKER=str(tmp_path / "m"))
        if socket_path is not None:
            env.update(VNDCC_VERIFY_DAEMON=str(socket_path), VNDCC_VERIFY_DAEMON_STRICT="1")
        done = subprocess.run(["sh", "-c", f'exec "$@" {redirect}', "sh", sys.executable, "-c", CLIENT,
                               *SERVED["valid-relative"]], cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=120, check=False)  # fmt: skip
        return done.returncode, done.stderr, (tmp_path / "m").read_text() == "1"

    local, served = shell(None), shell(daemon.path)
    assert served[2] and not local[2]
    assert served[0] == local[0] == 2 and b"Traceback" not in served[1], served
    assert served[1] == local[1] and served[1].count(b"\n") == 1 and served[1].startswith(b"internal error: "), served


def test_code_stamp_covers_data_and_dependency_versions() -> None:
    """The stamp names every shipped data file and, for each dependency, the version
    importlib.metadata reports (an update is never served by a stale daemon)."""
    import importlib.metadata

    from verifier.daemon import STAMP_DEPENDENCIES, code_stamp

    stamp = code_stamp()
    data = ROOT / "verifier" / "data"
    files = [p for p in data.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert len(files) > 20
    for path in files:
        st = path.stat()
        assert f"data/{path.relative_to(data).as_posix()}:{st.st_mtime_ns}:{st.st_size}" in stamp
    dist_infos = [line.rsplit("/", 1)[1] for line in stamp.splitlines() if line.endswith(".dist-info")]
    for name in STAMP_DEPENDENCIES:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            assert not any(d.startswith(f"{name}-") for d in dist_infos)
            continue
        assert f"{name}-{version}.dist-info" in dist_infos, (name, version, dist_infos)
    assert len(dist_infos) >= 6


def test_a_symlinked_socket_directory_is_refused(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(private)
    done = subprocess.run([sys.executable, "-m", "verifier", "daemon", "--socket", str(tmp_path / "link" / "s.sock")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2 and "is a symbolic link" in done.stderr, done.stderr
    assert not (private / "s.sock").exists()


@pytest.mark.parametrize("case", ["pinned-device", "pinned-fifo", "seq-fifo", "rules-seq-fifo", "lock-link",
                                  "state-proc", "pinned-proc", "plain"])  # fmt: skip
def test_the_state_folder_is_checked_as_file_arguments(case: str, daemon: Daemon, workdir: Path,
                                                       tmp_path: Path) -> None:  # fmt: skip
    """Files named by the environment (the state folder of $VNDCC_VERIFIER_STATE, its
    pinned CSCAs, sequence file and lock) get the check of file arguments: a device, a
    FIFO or a process file is read by the client itself; a plain state folder is served."""
    state = tmp_path / "state"
    (state / "pinned").mkdir(parents=True)
    if case == "pinned-device":
        (state / "pinned" / "a.pem").symlink_to("/dev/null")
    elif case == "pinned-fifo":
        os.mkfifo(state / "pinned" / "a.pem")
    elif case == "seq-fifo":
        os.mkfifo(state / "trustlist-seq.json")
    elif case == "rules-seq-fifo":  # read by `qr --rules SIGNED.cbor` under the lock
        os.mkfifo(state / "rules-seq.json")
    elif case == "lock-link":
        (state / ".lock").symlink_to("/proc/self/fd/0")
    elif case == "state-proc":
        state = Path("/proc/self/fd")
    elif case == "pinned-proc":
        (state / "pinned").rmdir()
        (state / "pinned").symlink_to("/proc/self")
    else:
        shutil.copy(VECTORS / "trust" / "csca.pem", state / "pinned" / "csca.pem")
    # no trust list: the sequence file is not read (a FIFO there would block a local run too)
    argv = ["pdf", *_trust("csca.pem", "dsc-expired.pem"), "--at", AT, "passport.pdf"]
    prelude = f"os.environ['VNDCC_VERIFIER_STATE'] = {str(state)!r}"
    if case == "pinned-fifo":  # a local run reads it: give it a writer, then a certificate
        import threading

        def feed() -> None:
            with open(state / "pinned" / "a.pem", "wb") as fh:
                fh.write((VECTORS / "trust" / "csca.pem").read_bytes())

        feeders = [threading.Thread(target=feed, daemon=True) for _ in range(2)]
        feeders[0].start()
        local = run(argv, workdir, socket_path=None, marker=tmp_path / "local", prelude=prelude)
        feeders[1].start()
    else:
        local = run(argv, workdir, socket_path=None, marker=tmp_path / "local", prelude=prelude)
    client = run(argv, workdir, socket_path=daemon.path, marker=tmp_path / "client", prelude=prelude)
    assert client[:3] == local[:3]
    assert client[3] is (case == "plain"), "served" if client[3] else "not served"
    other = run(SERVED["qr-file"], workdir, socket_path=daemon.path, marker=tmp_path / "other")
    assert other[0] == 0 and other[3]  # the daemon still answers


def test_accept_failing_is_logged_and_serving_goes_on(capfd: pytest.CaptureFixture[str]) -> None:
    """accept() raising (here EINVAL: a bound socket that does not listen; in production
    EMFILE, ENFILE, ENOBUFS) is one log line, without any request content, and the loop
    goes on until it is asked to stop."""
    import threading

    from verifier.daemon import _Stop, serve

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # bound, never listening
    stop = _Stop()
    loop = threading.Thread(target=serve, args=(sock,), kwargs={"idle_exit": None, "stamp": "x", "stop": stop})
    try:
        loop.start()
        time.sleep(0.35)
        assert loop.is_alive()  # failing accepts do not end it
        stop.requested = True
        loop.join(timeout=5)
        assert not loop.is_alive()
    finally:
        sock.close()
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) >= 2 and set(lines) == {"verifier daemon: cannot accept a connection: OSError (errno 22)"}


def test_out_of_descriptors_is_a_refusal_not_a_dropped_connection(workdir: Path) -> None:
    """handle() in a daemon out of descriptors (its own limit lowered): a refusal with its
    reason (the strict client's one line; a plain client runs the command itself)."""
    code = (
        "import json, os, resource, sys\n"
        "from verifier import daemon\n"
        "daemon.preload()\n"
        "stamp = daemon.code_stamp()\n"
        "free = os.open(os.devnull, os.O_RDONLY)\n"  # the lowest free descriptor
        "os.close(free)\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (free, hard))\n"
        "answer = daemon.handle({'argv': sys.argv[1:], 'cwd': os.getcwd(), 'env': dict(os.environ),\n"
        "                        'streams': [['utf-8', 'strict', False]] * 2, 'stamp': stamp}, stamp)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))\n"
        "print(json.dumps(answer))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *SERVED["valid-relative"]], cwd=workdir, capture_output=True,
                          text=True, timeout=120, check=False, env={**os.environ, "VNDCC_VERIFIER_STATE": str(workdir / "state")})  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer == {"served": False, "kind": "refused",
                      "why": "cannot run here: OSError: Too many open files"}, answer  # fmt: skip
