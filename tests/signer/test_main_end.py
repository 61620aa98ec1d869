"""``python -m signer`` ends its process without the interpreter's teardown
(signer.__main__.end): output flushed, exit handlers run, the exit code kept;
the usual exit when another thread still runs."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT

#: a module-level object whose finalizer prints at the interpreter's teardown
PRELUDE = (
    "import atexit, sys, threading, time\n"
    "from signer.__main__ import end\n"
    "class Torn:\n"
    "    def __del__(self): print('torn down')\n"
    "torn = Torn()\n"
    "atexit.register(lambda: print('exit handler'))\n"
    "print('out', end='')\n"
    "print('err', end='', file=sys.stderr)\n"
)


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PRELUDE + code], capture_output=True, text=True, cwd=ROOT, check=False)


def test_the_process_ends_with_its_output_and_exit_handlers_and_no_teardown() -> None:
    done = run("end(3)\nprint('not reached')\n")
    assert done.returncode == 3
    assert done.stdout == "outexit handler\n"  # buffered output kept, the handler ran, no teardown
    assert done.stderr == "err"


def test_another_thread_running_means_the_usual_exit() -> None:
    done = run("threading.Thread(target=time.sleep, args=(0.2,)).start()\nend(3)\nprint(' then the usual exit')\n")
    assert done.returncode == 0
    assert done.stdout == "out then the usual exit\nexit handler\ntorn down\n"
    assert done.stderr == "err"


def test_a_command_through_python_m_signer_ends_with_its_message_and_code() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "signer", "ledger", "verify", "--ledger", "/nonexistent/ledger.sqlite"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
