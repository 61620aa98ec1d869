"""A long-lived local verifier for checkpoints that run one command per file (issue 13).

    $ python -m verifier daemon &                 # foreground; --socket PATH, --idle-exit S
    $ VNDCC_VERIFY_DAEMON=1 vn-dcc-verify pdf --trust trustlist.cbor passport.pdf

A cold CPython process spends 13x pdfsig's CPU importing the libraries a PDF
verification needs (docs/benchmarks.md): the daemon imports them once and
runs the verifier's own :func:`verifier.cli.main` for each request, with the
client's argv, working directory and environment, and hands back its exit code
and its exact stdout and stderr bytes. The client (:func:`client_main`, called by
:mod:`verifier.__main__` when ``VNDCC_VERIFY_DAEMON`` is set) imports only
the C halves of json and socket (``_json``, ``_socket``); when the daemon is
absent, refuses or dies, the command runs locally instead
(``VNDCC_VERIFY_DAEMON_STRICT=1``: exit 2).

Served: ``pdf`` and ``qr`` on files or text (not a folder, not stdin).
Security (docs/verifier-daemon.md): a Unix socket in a directory that is ours
and 0700, the peer's uid checked on both ends (SO_PEERCRED), no network.

This module's top level imports only what the client needs; the server's
imports are inside its functions.
"""

from __future__ import annotations

import io
import os
import sys

TYPE_CHECKING = False  # not typing's: the client must not import it
if TYPE_CHECKING:
    import argparse
    import socket
    from collections.abc import Callable
    from typing import Any

ENV_SOCKET = "VNDCC_VERIFY_DAEMON"
ENV_STRICT = "VNDCC_VERIFY_DAEMON_STRICT"
SERVED_COMMANDS = ("pdf", "qr")
#: A request holds argv, cwd and the environment: far below this.
MAX_REQUEST = 4 * 1024 * 1024
#: Seconds a client may take to send its request once connected.
REQUEST_TIMEOUT = 10.0
#: Seconds the client waits for its answer (a PDF is cut off after 20 s;
#: requests are served one at a time, so others may be queued before it).
ANSWER_TIMEOUT = 300.0
_UCRED_SIZE = 12  # struct ucred: pid, uid, gid (three C ints)


class DaemonError(Exception):
    """The daemon cannot start (exit 2 with this message)."""


def default_socket_path() -> str:
    """``$XDG_RUNTIME_DIR/vn-dcc-verify.sock``, else ``~/.cache/vn-dcc/verify.sock``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "vn-dcc-verify.sock")
    return os.path.join(os.path.expanduser("~"), ".cache", "vn-dcc", "verify.sock")


#: The verifier's dependencies (distribution names, normalized as in *.dist-info folder names).
STAMP_DEPENDENCIES = ("cryptography", "pyhanko", "pyhanko_certvalidator", "asn1crypto", "cbor2",
                      "zxing_cpp", "jsonschema_rs", "pillow")  # fmt: skip


def _tree_stamp(folder: str, prefix: str, parts: list[str]) -> None:
    """Every file under ``folder`` (recursively, no __pycache__): name, mtime and size."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.name != "__pycache__":
                _tree_stamp(entry.path, f"{prefix}{entry.name}/", parts)
        else:
            st = entry.stat()
            parts.append(f"{prefix}{entry.name}:{st.st_mtime_ns}:{st.st_size}")


def installed_versions() -> list[str]:
    """``name-version.dist-info`` of the dependencies installed in site-packages (what
    importlib.metadata reads, without importing it: the client stays light)."""
    wanted = set(STAMP_DEPENDENCIES)
    found = []
    for folder in sys.path:
        if os.path.basename(folder) not in ("site-packages", "dist-packages"):
            continue
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info"):
                dist = name[: -len(".dist-info")].rpartition("-")[0]
                if dist.lower().replace("-", "_").replace(".", "_") in wanted:
                    found.append(f"{folder}/{name}")
    return sorted(found)


def code_stamp() -> str:
    """What the client would run: interpreter, installation, the verifier's sources and
    shipped data (schema, value sets, rules: cached in the daemon) and the installed
    versions of its dependencies.

    The daemon serves only a client whose stamp equals its own at start, so an
    upgraded verifier, dependency or another venv never gets an answer from stale code.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    parts = [sys.version, sys.prefix, here]
    _tree_stamp(here, "", parts)  # the sources (verifier/, verifier/pdf/) and data/, in one walk
    parts.extend(installed_versions())
    return "\n".join(parts)


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a connected Unix socket."""
    import socket

    cred = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED_SIZE)
    return int.from_bytes(cred[4:8], sys.byteorder)


def terminal_columns() -> int:
    """The width :func:`shutil.get_terminal_size` gives in this process (argparse
    wraps its usage and help to it), without importing shutil."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
        columns = columns or 80
    return columns


# --------------------------------------------------------------------------
# client


def _stream_info(stream: Any) -> list[Any]:
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):
        tty = False
    return [getattr(stream, "encoding", None) or "utf-8", getattr(stream, "errors", None) or "strict", tty]


# The client speaks the same JSON lines through CPython's C accelerator of the json
# package (``_json``) and the C socket module (``_socket``): importing ``json``
# and ``socket`` themselves (re, enum, selectors) cost 11 ms of CPU in a
# checkpoint install, as much as the interpreter's own start (docs/verifier-daemon.md).
# tests/verifier/test_daemon.py proves the results equal json.dumps / json.loads.


def client_dumps(obj: Any) -> str:
    """``json.dumps(obj)`` for str, int, bool, None, lists and str-keyed dicts of them."""
    import _json

    if isinstance(obj, str):
        return str(_json.encode_basestring_ascii(obj))
    if obj is None or isinstance(obj, bool):
        return "null" if obj is None else ("true" if obj else "false")
    if isinstance(obj, int):
        return int.__repr__(obj)
    if isinstance(obj, list | tuple):
        return "[" + ", ".join(client_dumps(item) for item in obj) + "]"
    if isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
        return "{" + ", ".join(f"{client_dumps(k)}: {client_dumps(v)}" for k, v in obj.items()) + "}"
    raise TypeError(f"not sent to the daemon: {type(obj).__name__}")


class _ScanContext:
    """What ``_json.make_scanner`` reads from a ``json.JSONDecoder`` (its defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    def __init__(self) -> None:
        self.memo: dict[str, str] = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name.replace("Infinity", "inf"))  # NaN, Infinity, -Infinity as json.loads


def client_loads(text: str) -> Any:
    """``json.loads(text)`` (raises ValueError on what json.loads refuses)."""
    import _json

    scan = _json.make_scanner(_ScanContext())  # type: ignore[arg-type]
    start = len(text) - len(text.lstrip(" \t\n\r"))
    try:
        value, end = scan(text, start)
    except StopIteration as err:
        raise ValueError(f"not JSON at {err.value}") from None
    if text[end:].strip(" \t\n\r"):
        raise ValueError(f"extra data at {end}")
    return value


def _ask(path: str, request: bytes) -> dict[str, Any]:
    """One request and its answer; raises OSError or ValueError when there is none."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(ANSWER_TIMEOUT)
        sock.connect(path)
        cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, _UCRED_SIZE)
        if int.from_bytes(cred[4:8], sys.byteorder) != os.getuid():
            raise ValueError("the daemon runs as another user")
        sock.sendall(request)
        sock.shutdown(_socket.SHUT_WR)
        chunks = []
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        sock.close()
    answer = client_loads(b"".join(chunks).decode("utf-8"))
    if not isinstance(answer, dict):
        raise ValueError("no answer (the daemon stopped?)")
    return answer


def _prepared(answer: dict[str, Any]) -> tuple[bytes, bytes, list[tuple[int, int]], int]:
    """A served answer's stdout, stderr, write order and exit code, checked before any is written."""
    out, err = answer["stdout"].encode("latin-1"), answer["stderr"].encode("latin-1")
    order = [(int(fd), int(size)) for fd, size in answer["order"]]
    if any(fd not in (1, 2) or size < 0 for fd, size in order):
        raise ValueError("garbled answer")
    return out, err, order, int(answer["exit"])


def _replay(out: bytes, err: bytes, order: list[tuple[int, int]], code: int) -> int:
    """Write the daemon's stdout and stderr bytes in their order; the exit code.

    Once writing has started the command is never run again here (it would print
    twice): a failing stream is answered as :func:`verifier.cli.main` answers it.
    """
    sent = {1: 0, 2: 0}
    try:
        for fd, size in order:
            data, stream = (out, sys.stdout) if fd == 1 else (err, sys.stderr)
            stream.flush()
            stream.buffer.write(data[sent[fd] : sent[fd] + size])
            stream.buffer.flush()
            sent[fd] += size
        sys.stdout.flush()
    except BrokenPipeError:  # as verifier.cli.main does when piped into e.g. `head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 2
    except Exception as error:  # a closed stdout, /dev/full: one line, never a traceback
        print(f"internal error: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    return code


def client_main(argv: list[str]) -> int | None:
    """Run ``argv`` in the daemon named by ``$VNDCC_VERIFY_DAEMON``: its exit code,
    or None when the command is to run locally (not served, or no daemon and not strict).

    Any failure before the answer starts being written (no daemon, a garbled or too
    deeply nested answer, a missing ``_json`` or SO_PEERCRED) means a local run
    (strict: exit 2 with one line); after that, never."""
    target = os.environ.get(ENV_SOCKET, "")
    if not target or not argv or argv[0] not in SERVED_COMMANDS:
        return None
    path = default_socket_path() if target == "1" else target
    strict = os.environ.get(ENV_STRICT) == "1"
    try:
        request = {
            "argv": argv,
            "cwd": os.getcwd(),
            "env": dict(os.environ),
            "columns": terminal_columns(),
            "streams": [_stream_info(sys.stdout), _stream_info(sys.stderr)],
            "isatty": [_stream_info(s)[2] for s in (sys.stdin, sys.stdout, sys.stderr)],
            "stamp": code_stamp(),
        }
        answer = _ask(path, client_dumps(request).encode("utf-8") + b"\n")
        if answer.get("served"):
            ready = _prepared(answer)
        elif answer.get("kind") == "not_served":
            return None  # e.g. a folder or stdin: always run here
        else:
            ready, why = None, str(answer.get("why", "refused"))
    except Exception as err:  # not there, died, garbled, a C module missing
        ready, why = None, str(getattr(err, "strerror", None) or err or type(err).__name__)
    if ready is not None:
        return _replay(*ready)
    if strict:
        line = (why.splitlines() or ["refused"])[0]
        print(f"error: verifier daemon at {path}: {line}", file=sys.stderr)
        return 2
    return None


# --------------------------------------------------------------------------
# server


def check_socket_dir(folder: str) -> None:
    """Create ``folder`` 0700 if missing; refuse a symlink, or one that is not ours or is
    group/world accessible (lstat: the folder itself, not what a link points to)."""
    import stat

    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        try:
            os.makedirs(folder, mode=0o700)
        except OSError as err:
            raise DaemonError(f"cannot create {folder}: {err.strerror}") from None
        st = os.lstat(folder)
    if stat.S_ISLNK(st.st_mode):
        raise DaemonError(f"{folder} is a symbolic link: refusing to listen in it")
    if not stat.S_ISDIR(st.st_mode):
        raise DaemonError(f"{folder} is not a directory")
    if st.st_uid != os.getuid():
        raise DaemonError(f"{folder} is not owned by this user (uid {os.getuid()}): refusing to listen in it")
    if st.st_mode & 0o077:
        raise DaemonError(
            f"{folder} is accessible to other users (mode {stat.S_IMODE(st.st_mode):04o}): "
            "refusing to listen in it (chmod 700 it)"
        )


def _answers(path: str) -> bool:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


def bind_socket(path: str) -> socket.socket:
    """A listening socket at ``path`` (mode 0600); a stale socket there is replaced,
    a live one (another daemon) or any other file is refused."""
    import socket
    import stat

    check_socket_dir(os.path.dirname(path) or ".")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise DaemonError(f"{path} exists and is not a socket: refusing to replace it")
        if _answers(path):
            raise DaemonError(f"another daemon answers on {path}")
        os.unlink(path)  # stale: its daemon is gone
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(path)
    except OSError as err:
        sock.close()
        raise DaemonError(f"cannot listen on {path}: {err.strerror}") from None
    finally:
        os.umask(old_umask)
    sock.listen(64)
    return sock


def preload() -> None:
    """Import what ``pdf`` and ``qr`` need, once (the point of the daemon)."""
    import verifier.cli
    import verifier.image
    import verifier.pdf.cli
    import verifier.pdf.verify
    import verifier.trust

    verifier.cli.rules_cli.register  # noqa: B018  (a lazy module: this loads it)


class _Recorder(io.BufferedIOBase):
    """The byte side of a captured stream: appends (fd, bytes) in write order, unbuffered."""

    def __init__(self, fd: int, log: list[tuple[int, bytes]], tty: bool) -> None:
        super().__init__()
        self.fd, self.log, self.tty = fd, log, tty

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.tty

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.log.append((self.fd, chunk))
        return len(chunk)


def _captured(fd: int, log: list[tuple[int, bytes]], info: list[Any]) -> io.TextIOWrapper:
    """A text stream as the client's (its encoding, errors and tty-ness) that records its bytes."""
    encoding, errors, tty = str(info[0]), str(info[1]), bool(info[2])
    recorder = _Recorder(fd, log, tty)
    return io.TextIOWrapper(recorder, encoding=encoding, errors=errors, write_through=True)  # type: ignore[arg-type]


def _not_served(why: str) -> dict[str, Any]:
    return {"served": False, "kind": "not_served", "why": why}


def _refused(why: str) -> dict[str, Any]:
    return {"served": False, "kind": "refused", "why": why}


#: Options of ``pdf`` and ``qr`` that name a file, besides those whose metavar says FILE or DIR.
_FILE_DESTS = ("file", "trust", "qr_file", "image", "rules")
#: What resolves to the daemon's own descriptors or to devices, never the client's files.
_SPECIAL_ROOTS = ("/dev", "/proc")


def _file_dests(parser: argparse.ArgumentParser, command: str) -> set[str]:
    """The dests of ``command``'s arguments that name files or folders."""
    import argparse

    dests = set(_FILE_DESTS)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            for sub in action.choices[command]._actions:
                metavar = sub.metavar if isinstance(sub.metavar, str) else ""
                if "FILE" in metavar or "DIR" in metavar:
                    dests.add(sub.dest)
    return dests


def _not_a_plain_file(path: str) -> str | None:
    """Why ``path`` (relative to the cwd, the client's) is not read here, or None.

    Only stat and realpath, which never block: a FIFO, a device, /dev/stdin or a
    /proc/self/fd/N would be the daemon's, not the client's (or block it for everyone).
    """
    import stat

    real = os.path.realpath(path)
    if any(real == root or real.startswith(root + "/") for root in _SPECIAL_ROOTS):
        return "a device or process file (the client's own)"
    try:
        st = os.stat(real)
    except OSError:
        return "a file that cannot be read here"
    if stat.S_ISDIR(st.st_mode):
        return "a folder (run in parallel by the client's own processes)"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    return None


def _servable(args: argparse.Namespace, dests: set[str]) -> str | None:
    """Why these parsed arguments must run in the client's own process, or None:
    every file argument must be an existing regular file outside /dev and /proc."""
    if getattr(args, "qr_file", None) == "-":
        return "standard input"
    for dest in sorted(dests):
        value = getattr(args, dest, None)
        for path in value if isinstance(value, list) else [value]:
            if isinstance(path, str):
                why = _not_a_plain_file(path)
                if why is not None:
                    return why
    return None




def _state_problem() -> str | None:
    """Why the state folder the client's environment names (``$VNDCC_VERIFIER_STATE``, else
    under ``$HOME``) must be read by the client itself, or None: the same check as a file
    argument's for the folder and every file a command reads in it (a FIFO would block the
    daemon for every client, /dev and /proc are the daemon's own). Stat and realpath only."""
    import contextlib
    import stat

    from verifier.rules_signed import SEQ_FILE as RULES_SEQ_FILE
    from verifier.trust import LOCK_FILE, SEQ_FILE, default_state_dir

    state = os.path.realpath(default_state_dir())
    if any(state == root or state.startswith(root + "/") for root in _SPECIAL_ROOTS):
        return "a state folder that is a device or process file (the client's own)"
    # Besides pinned/*.pem, a command reads the sequence numbers of the trust lists and
    # of the signed rule sets, and their lock: the names the modules that read them use.
    names = [SEQ_FILE, RULES_SEQ_FILE, LOCK_FILE]
    pinned = os.path.realpath(os.path.join(state, "pinned"))
    if any(pinned == root or pinned.startswith(root + "/") for root in _SPECIAL_ROOTS):
        return "a pinned folder that is a device or process file (the client's own)"
    with contextlib.suppress(OSError):  # no pinned CSCAs (a local run reads none either)
        names += [os.path.join("pinned", n) for n in os.listdir(pinned) if n.endswith(".pem")]
    for name in names:
        try:
            st = os.lstat(os.path.join(state, name))
        except OSError:
            continue  # absent: a local run makes it or reads nothing
        if not stat.S_ISREG(st.st_mode) and (name.endswith(".pem") or not stat.S_ISDIR(st.st_mode)):
            why = _not_a_plain_file(os.path.join(state, name))
            if why is not None:
                return f"state file {name}: {why}"
    return None


def _run_main(argv: list[str], args: argparse.Namespace | None = None) -> int:
    """:func:`verifier.cli.main` as the process would run it, SystemExit included;
    ``args``: ``argv`` already parsed by :func:`verifier.cli.build_parser` (not again)."""
    from verifier.cli import main, run_parsed

    try:
        return main(argv) if args is None else run_parsed(args)
    except SystemExit as done:  # argparse: usage errors (2) and --help (0)
        if done.code is None or isinstance(done.code, int):
            return int(done.code or 0)
        print(done.code, file=sys.stderr)
        return 1


def _set_environ(saved: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(saved)


def _reset_handlers(saved: dict[str, list[Any]]) -> None:
    import logging

    for name, handlers in saved.items():  # verifier.pdf.cli adds one per run
        logging.getLogger(name).handlers[:] = handlers or logging.getLogger(name).handlers[:1]


def handle(request: dict[str, Any], stamp: str) -> dict[str, Any]:
    """Run one request in this process: its answer (served or not, never raises)."""
    import logging
    import tempfile
    import warnings

    from verifier.cli import build_parser

    argv = request.get("argv")
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv) or not argv:
        return _refused("bad request")
    if argv[0] not in SERVED_COMMANDS:
        return _not_served(f"{argv[0]!r} is not served")
    if request.get("stamp") != stamp:
        return _refused("the daemon runs another interpreter or an older copy of the verifier: restart it")
    env, cwd, streams = request.get("env"), request.get("cwd"), request.get("streams")
    if not isinstance(env, dict) or not isinstance(cwd, str) or not isinstance(streams, list):
        return _refused("bad request")
    try:
        home = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    except OSError as err:  # EMFILE: out of descriptors; the client runs it itself
        return _refused(f"cannot run here: {type(err).__name__}: {err.strerror}")
    saved_env = dict(os.environ)
    saved_streams = sys.stdout, sys.stderr
    pyhanko_handlers = {n: list(logging.getLogger(n).handlers) for n in ("pyhanko", "pyhanko_certvalidator")}
    log: list[tuple[int, bytes]] = []
    try:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in env.items()})
        os.environ["COLUMNS"] = str(int(request.get("columns", 80)))
        tempfile.tempdir = None  # cached from the first call: found again from the client's TMPDIR
        sys.stdout, sys.stderr = _captured(1, log, streams[0]), _captured(2, log, streams[1])
        with warnings.catch_warnings():  # a fresh registry: "once" warnings show again
            parser = build_parser(argv[0])
            try:  # argparse opens no file here (no FileType, no @files)
                args = parser.parse_args(argv)
            except SystemExit:
                args = None  # usage error or --help: main() prints the same again
            del log[:]
            why = None if args is None else (_servable(args, _file_dests(parser, argv[0]))
                                             or _state_problem())
            if why is not None:
                return _not_served(why)
            code = _run_main(argv, args)  # a usage error or --help: main() parses and prints it
            sys.stdout.flush()
            sys.stderr.flush()
    except Exception as err:  # cwd gone, an unknown encoding: the client runs it itself
        return _refused(f"cannot run here: {type(err).__name__}: {err}")
    finally:  # each step on its own: one failing never skips the others
        undos: list[Callable[[], object]] = [
            lambda: setattr(sys, "stdout", saved_streams[0]),
            lambda: setattr(sys, "stderr", saved_streams[1]),
            lambda: _set_environ(saved_env),
            lambda: setattr(tempfile, "tempdir", None),
            lambda: os.fchdir(home),  # a directory fd: works even if its folder was removed
            lambda: os.close(home),
            lambda: _reset_handlers(pyhanko_handlers),
        ]
        for undo in undos:
            try:
                undo()
            except Exception as undo_err:
                _log(f"cannot restore after a request: {type(undo_err).__name__}")
    out = b"".join(data for fd, data in log if fd == 1)
    err_bytes = b"".join(data for fd, data in log if fd == 2)
    order: list[list[int]] = []
    for fd, data in log:
        if order and order[-1][0] == fd:
            order[-1][1] += len(data)
        elif data:
            order.append([fd, len(data)])
    return {
        "served": True, "exit": code, "order": order,
        "stdout": out.decode("latin-1"), "stderr": err_bytes.decode("latin-1"),
    }  # fmt: skip


def _read_request(conn: socket.socket, timeout: float) -> dict[str, Any] | None:
    """The request, read within ``timeout`` seconds in all (not per recv); None if bad or late."""
    import json
    import time

    deadline = time.monotonic() + timeout
    chunks, size = [], 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        conn.settimeout(left)
        try:
            chunk = conn.recv(1 << 16)
        except TimeoutError:
            return None
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_REQUEST:
            return None
        if chunk.endswith(b"\n"):
            break
    try:
        request = json.loads(b"".join(chunks))
    except (ValueError, RecursionError):
        return None
    return request if isinstance(request, dict) else None


def _log(line: str) -> None:
    """One line on the daemon's stderr (never a request's content)."""
    import contextlib

    with contextlib.suppress(Exception):  # a closed stderr must not stop the daemon
        print(f"verifier daemon: {line}", file=sys.stderr, flush=True)


class _Stop:
    """SIGTERM/SIGINT: stop at once while waiting, after the answer during a request
    (raised inside a request, verifier.cli.main would answer it as "interrupted")."""

    def __init__(self) -> None:
        self.busy = self.requested = False

    def __call__(self, signum: int, frame: object) -> None:
        self.requested = True
        if not self.busy:
            raise KeyboardInterrupt


def serve(sock: socket.socket, *, idle_exit: float | None, stamp: str, stop: _Stop | None = None,
          timeout: float = REQUEST_TIMEOUT) -> None:
    """Answer requests one at a time until ``idle_exit`` seconds pass without one
    (or ``stop`` is requested). A request has ``timeout`` seconds in all to arrive, its
    answer as long to be sent; nothing a connection does stops the daemon."""
    import json
    import time

    uid = os.getuid()
    stop = stop or _Stop()
    while not stop.requested:
        sock.settimeout(idle_exit)
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            return
        except OSError as err:  # EMFILE, ENFILE, ENOBUFS...: the connection waits in the backlog
            _log(f"cannot accept a connection: {type(err).__name__} (errno {err.errno})")
            time.sleep(0.1)
            continue
        stop.busy = True
        try:
            with conn:
                if peer_uid(conn) != uid:
                    continue  # another user: no answer at all (finally: not busy)
                request = _read_request(conn, timeout)
                answer = _refused("bad request") if request is None else handle(request, stamp)
                data = json.dumps(answer).encode("utf-8") + b"\n"
                conn.settimeout(timeout)  # sendall: the whole answer within it
                conn.sendall(data)
        except OSError:
            pass  # the client went away or was too slow
        except Exception as err:  # dropped: the client runs the command itself
            _log(f"a request failed: {type(err).__name__}")
        finally:
            stop.busy = False


def run_daemon(args: argparse.Namespace) -> int:
    """``python -m verifier daemon``: listen in the foreground until idle or a signal."""
    import signal
    import socket

    from verifier.errors import ConfigError

    if not hasattr(socket, "SO_PEERCRED"):
        raise ConfigError("this system has no SO_PEERCRED: the daemon could not check its clients' user")
    path = os.path.abspath(args.socket or default_socket_path())
    idle: float | None = args.idle_exit
    stamp = code_stamp()
    try:
        sock = bind_socket(path)
    except DaemonError as err:
        raise ConfigError(str(err)) from None
    bound = os.stat(path).st_ino
    os.chdir("/")  # its starting folder may be removed; each request runs in the client's

    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        preload()
        print(f"verifier daemon: listening on {path} (pid {os.getpid()})", file=sys.stderr, flush=True)
        serve(sock, idle_exit=idle, stamp=stamp, stop=stop, timeout=args.request_timeout)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        try:
            if os.stat(path).st_ino == bound:  # still ours: not a newer daemon's
                os.unlink(path)
        except OSError:
            pass
    return 0


def _seconds(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a number of seconds") from None
    if not 0 < value <= 10**7:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def register(subparsers: Any) -> None:
    """Add ``daemon`` to ``python -m verifier``."""
    parser = subparsers.add_parser(
        "daemon",
        help="serve `pdf` and `qr` from one long-lived process (clients: VNDCC_VERIFY_DAEMON)",
        description="A local verifier on a Unix socket, so that one command per file does "
        "not pay the imports each time (docs/verifier-daemon.md). Foreground; same user only.",
    )
    parser.add_argument("--socket", metavar="PATH",
                        help="default: $XDG_RUNTIME_DIR/vn-dcc-verify.sock, else ~/.cache/vn-dcc/verify.sock")
    parser.add_argument("--idle-exit", type=_seconds, default=None, metavar="SECONDS",
                        help="stop after this long without a request (default: never)")
    parser.add_argument("--request-timeout", type=_seconds, default=REQUEST_TIMEOUT, metavar="SECONDS",
                        help=f"seconds a client has to send its whole request, and to take its answer "
                        f"(default {REQUEST_TIMEOUT:g})")
    parser.set_defaults(run=run_daemon)
