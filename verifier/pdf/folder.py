"""Folder mode: verify every file of a directory, one JSON line each, over several cores.

    $ python -m verifier pdf --trust trustlist.cbor --trust csca.pem --json passports/ > results.jsonl
    $ python -m verifier qr --trust trustlist.cbor --json --image scans/ --jobs 2 > results.jsonl

For checkpoints and audits (issue 13). The files are taken in sorted order
(recursively; by suffix), shared out over ``--jobs`` worker processes
(default: the CPUs this process may use) and written in that order, one
line per file: with ``--json`` the verdict's JSON object with ``"file"``
(the path as given + relative part) first, otherwise one human line. A
progress line goes to stderr (rewritten in place on a terminal, every 10 %
otherwise) and a summary at the end. Exit 0 when every file is valid, 1
when one is not (or could not be read: its line says so), 2 for a usage or
configuration error (before any file is read).

Each worker loads the trust material once (a task factory runs in the
worker), so the per-file cost is the verification alone. With ``--jobs 1``
everything runs in this process.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

#: What a task returns for one file: (valid, the line to print).
Result = tuple[bool, str]
Task = Callable[[str], Result]

PDF_SUFFIXES = (".pdf",)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")
#: At most this many files per run (a mistaken root such as / must not walk forever).
MAX_FILES = 1_000_000

_STATE: dict[str, Task] = {}


def list_files(root: Path, suffixes: Sequence[str]) -> list[Path]:
    """Regular files under ``root`` whose suffix (case-insensitive) is one of ``suffixes``."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.lower().endswith(tuple(suffixes)):
                path = Path(dirpath) / name
                if path.is_file():
                    out.append(path)
                    if len(out) > MAX_FILES:
                        return out
    return out


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _init(factory: Callable[..., Task], args: tuple[Any, ...]) -> None:
    _STATE["task"] = factory(*args)


def _call(path: str) -> Result:
    try:
        return _STATE["task"](path)
    except Exception as err:  # a bug or an unreadable file: that file's line, not the run
        line = json.dumps({"file": path, "valid": False, "error": f"{type(err).__name__}: {err}"[:500]},
                          ensure_ascii=False)  # fmt: skip
        return False, line


def run_folder(
    files: Sequence[Path],
    *,
    factory: Callable[..., Task],
    factory_args: tuple[Any, ...],
    jobs: int,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Verify ``files`` with the task ``factory(*factory_args)`` builds (once per worker)."""
    out = out or sys.stdout
    err = err or sys.stderr
    paths = [str(p) for p in files]
    total = len(paths)
    jobs = max(1, min(jobs, total or 1))
    progress = _Progress(total, err)
    results: Iterable[Result]
    pool = None
    if jobs == 1:
        _init(factory, factory_args)
        results = map(_call, paths)
    else:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        pool = multiprocessing.get_context(method).Pool(jobs, _init, (factory, factory_args))
        results = pool.imap(_call, paths, chunksize=1)
    valid = 0
    try:
        for ok, line in results:
            print(line, file=out)
            valid += ok
            progress.step(ok)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    progress.done()
    return 0 if valid == total else 1


class _Progress:
    def __init__(self, total: int, err: TextIO) -> None:
        self.total, self.err = total, err
        self.done_count = self.valid = 0
        self.tty = err.isatty()
        self.last = 0.0
        self.started = time.monotonic()
        self.next_mark = max(1, total // 10)

    def _line(self) -> str:
        rate = self.done_count / max(time.monotonic() - self.started, 1e-6)
        return (f"{self.done_count}/{self.total} files, {self.valid} valid, "
                f"{self.done_count - self.valid} invalid ({rate:.1f}/s)")  # fmt: skip

    def step(self, ok: bool) -> None:
        self.done_count += 1
        self.valid += ok
        now = time.monotonic()
        if self.tty and now - self.last > 0.2:
            self.last = now
            self.err.write("\r" + self._line())
            self.err.flush()
        elif not self.tty and self.done_count >= self.next_mark and self.done_count < self.total:
            self.next_mark += max(1, self.total // 10)
            print(self._line(), file=self.err)

    def done(self) -> None:
        self.err.write(("\r" if self.tty else "") + self._line() + "\n")
        self.err.flush()


# -- the PDF task --------------------------------------------------------------


def pdf_task(trust_paths: Sequence[str], now_iso: str, as_json: bool, lang: str) -> Task:
    """Verify one PDF passport per call (trust material loaded once, here)."""
    import datetime as dt
    import logging

    from verifier.pdf.cli import _read_pdf, _verify_within_limit, one_line
    from verifier.trust import load_trust_material

    for name in ("pyhanko", "pyhanko_certvalidator"):
        logging.getLogger(name).addHandler(logging.NullHandler())
    now = dt.datetime.fromisoformat(now_iso)
    trust = load_trust_material(list(trust_paths), now=now)

    def task(path: str) -> Result:
        verdict = _verify_within_limit(_read_pdf(path), trust, now)
        if as_json:
            return verdict.valid, json.dumps({"file": path, **verdict.to_dict()}, ensure_ascii=False,
                                             allow_nan=False)  # fmt: skip
        return verdict.valid, one_line(verdict, path=path, lang=lang)

    return task


# -- the QR image task (``verifier qr --image DIR``) ------------------------------


def qr_image_task(args: Any, now_iso: str) -> Task:
    """Verify one QR image per call, as ``verifier qr --image FILE`` does (rules included)."""
    import datetime as dt

    from verifier import rules_cli
    from verifier.cli import _read_image
    from verifier.hc1 import verify_qr_image
    from verifier.trust import load_trust

    now = dt.datetime.fromisoformat(now_iso)
    rule_set = rules_cli.load_rules_from_args(args)
    trust = load_trust(list(args.trust), now=now)

    def task(path: str) -> Result:
        verdict = verify_qr_image(_read_image(path), trust, now=now)
        verdict = rules_cli.apply_rules(verdict, rule_set, args, now)
        if args.json:
            return verdict.valid, json.dumps({"file": path, **verdict.to_dict()}, ensure_ascii=False,
                                             allow_nan=False)  # fmt: skip
        state = "VALID" if verdict.valid else "INVALID"
        reasons = ", ".join(f"{e.stage}: {e.reason}" for e in verdict.errors)
        return verdict.valid, f"{path}: {state}" + (f" ({reasons})" if reasons else "")

    return task
