"""A signing worker killed half-way through sending its result (seen in the ledger's kill
test in CI): the executor's manager thread blocks reading the rest of the message, and a
plain ``future.result()`` waits forever. signer.run's wait notices the dead worker, ends
with BrokenProcessPool (the run's one error line) and the pool still shuts down."""

from __future__ import annotations

import multiprocessing
import os
import signal
import struct
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import pytest

from signer.run import _result_or_broken

_pool: ProcessPoolExecutor | None = None


def _die_mid_result() -> None:
    assert _pool is not None  # inherited through fork
    writer = _pool._result_queue._writer  # type: ignore[attr-defined]
    os.write(writer.fileno(), struct.pack("!i", 10_000_000) + b"\x80\x04part")  # header + a little
    os.kill(os.getpid(), signal.SIGKILL)


def test_worker_killed_while_sending_its_result() -> None:
    global _pool
    _pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork"))
    try:
        task = _pool.submit(_die_mid_result)
        start = time.monotonic()
        with pytest.raises(BrokenProcessPool):
            _result_or_broken(_pool, task)
        assert time.monotonic() - start < 10
    finally:
        for process in list((_pool._processes or {}).values()):
            process.terminate()
        _pool.shutdown(wait=True, cancel_futures=True)  # returns: the manager thread was unblocked
        _pool = None
