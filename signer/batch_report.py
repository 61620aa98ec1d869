"""What a ledger batch run tells its operator: progress, the error report, the summary.

    >>> import io
    >>> counts = BatchCounts()
    >>> counts.issued, counts.skipped = 3, 2
    >>> print(counts.summary_line(), end="")
    5 record(s): 3 issued, 2 skipped as already issued, 0 refused

Progress goes to stderr: a tqdm bar (count, rate, ETA) on a terminal, a
plain line every :data:`PLAIN_INTERVAL` seconds otherwise (logs, CI, cron).
The error report is a CSV of the refused records (line, record id, reason)
that the centre can fix and feed back; it is created 0600 and never holds a
citizen ID or a name (reasons are the signer's own messages, which never
quote them; a record id that is not a plain identifier is left out).
"""

from __future__ import annotations

import collections
import csv
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from signer.run import SAFE_ID

#: Seconds between two plain progress lines when stderr is not a terminal.
PLAIN_INTERVAL = 10.0
ERROR_COLUMNS = ("line", "record_id", "reason")


@dataclass
class BatchCounts:
    issued: int = 0  # new certificates written (including the ones below)
    superseding: int = 0  # ... that replaced an earlier certificate of the record
    resumed: int = 0  # ... whose UVCI an interrupted run had reserved
    adopted: int = 0  # ... of which the files it had finished were proven whole and used (signer.batch_adopt)
    reissued: int = 0  # ... replacing a current certificate that expires soon, or a revoked one
    rewritten: int = 0  # current certificates whose missing or damaged files were written again
    skipped: int = 0  # already issued with this data
    refused: int = 0
    released: int = 0  # reservations given up (the record changed or could not be signed)
    reasons: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def seen(self) -> int:
        return self.issued + self.rewritten + self.skipped + self.refused

    def summary_line(self) -> str:
        parts = [f"{self.issued} issued"]
        extra = []
        if self.superseding:
            extra.append(f"{self.superseding} superseding an earlier certificate")
        if self.reissued:
            extra.append(f"{self.reissued} re-issued")
        if self.resumed:
            adopted = f", {self.adopted} of them with the files it had finished" if self.adopted else ""
            extra.append(f"{self.resumed} resumed from an interrupted run{adopted}")
        if extra:
            parts[0] += f" ({', '.join(extra)})"
        if self.rewritten:
            parts.append(f"{self.rewritten} with missing or damaged files written again")
        parts.append(f"{self.skipped} skipped as already issued")
        parts.append(f"{self.refused} refused")
        return f"{self.seen} record(s): {', '.join(parts)}\n"

    def reason_lines(self, limit: int = 8) -> list[str]:
        lines = [f"  {n} x {reason}" for reason, n in self.reasons.most_common(limit)]
        rest = sum(self.reasons.values()) - sum(n for _, n in self.reasons.most_common(limit))
        if rest:
            lines.append(f"  {rest} x other reasons (see the error report)")
        return lines


def reason_kind(reason: str) -> str:
    """The reason without its per-record details, to group the summary
    ("dose 2: unknown vaccine 'X' (see ...)" -> "unknown vaccine")."""
    text = reason.split(" (", 1)[0]
    if text.startswith("dose ") and ": " in text:
        text = text.split(": ", 1)[1]
    return text.split(" '", 1)[0].strip() or reason


class ErrorReport:
    """The refused records, as CSV, written to a 0600 temporary file and
    renamed into place by :meth:`close` (an interrupted run leaves the
    previous report)."""

    def __init__(self, path: Path, *, tmp_dir: Path | None = None) -> None:
        self.path = path
        self.rows = 0
        if tmp_dir is None:
            self._tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        else:
            self._tmp = tmp_dir / path.name
        fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._fh: IO[str] | None = os.fdopen(fd, "w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._fh)
        self._csv.writerow(ERROR_COLUMNS)

    def add(self, line: int, record_id: str, reason: str) -> None:
        self._csv.writerow((line, record_id if SAFE_ID.fullmatch(record_id) else "", reason))
        self.rows += 1

    def close(self, *, publish: bool = True) -> None:
        if self._fh is None:
            return
        self._fh.close()
        self._fh = None
        if publish:
            os.replace(self._tmp, self.path)
        else:
            os.unlink(self._tmp)


class Progress:
    """Count, rate and ETA on stderr; ``total`` may be an estimate (or None)."""

    def __init__(
        self,
        err: TextIO,
        *,
        total: int | None,
        mode: str = "auto",
        clock: Callable[[], float] = time.monotonic,
        interval: float = PLAIN_INTERVAL,
    ) -> None:
        self.err, self.total, self.clock, self.interval = err, total, clock, interval
        if mode == "auto":
            mode = "bar" if _isatty(err) else "lines"
        self.mode = mode
        self.done = 0
        self.start = self.clock()
        self._last_line = self.start
        self._bar: Any = None
        if mode == "bar":
            from tqdm import tqdm

            # a terminal that reports 0 columns (a pty without a size) would get an empty bar
            sized = _columns(err) > 0
            self._bar = tqdm(
                total=total, unit="rec", file=err, smoothing=0.1,
                **({"dynamic_ncols": True} if sized else {"ncols": 80, "nrows": 24}),
            )

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        if self.mode == "lines":
            now = self.clock()
            if now - self._last_line >= self.interval:
                self._last_line = now
                print(self.line(now), file=self.err, flush=True)

    def line(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        text = f"progress: {self.done}"
        if self.total:
            text += f"/{self.total} record(s) ({min(100.0, 100.0 * self.done / self.total):.0f}%)"
        else:
            text += " record(s)"
        text += f", {rate:.0f}/s"
        if self.total and rate > 0 and self.done < self.total:
            text += f", ETA {_clock_text((self.total - self.done) / rate)}"
        return text

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _clock_text(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


#: Files larger than this get an estimate of their lines from their first
#: :data:`SAMPLE_BYTES` (counting every line of a 100,000-record input, 70 MB,
#: took ~35 ms of every run's start, a resume's too).
SAMPLE_BYTES = 4 << 20


def estimate_records(path: Path) -> int | None:
    """Lines in the records file (minus a CSV header): the progress bar's
    total. An estimate: an export with one row per dose has fewer records,
    and a file over :data:`SAMPLE_BYTES` is counted from its first part,
    scaled by its size."""
    try:
        count, last = 0, b""
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > SAMPLE_BYTES:
                sample = fh.read(SAMPLE_BYTES)
                if not sample:  # cut meanwhile
                    return None
                lines = sample.count(b"\n")
                return max(round(lines * size / len(sample)) - (path.suffix.lower() == ".csv"), 0) or None
            while chunk := fh.read(1 << 20):
                count += chunk.count(b"\n")
                last = chunk
        if last and not last.endswith(b"\n"):
            count += 1
    except OSError:
        return None
    if path.suffix.lower() == ".csv":
        count -= 1
    return max(count, 0) or None
