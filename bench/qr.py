"""QR PNG (and SVG) images per second: plain ``qrcode`` against ``signer.qr``, in one run.

    .venv/bin/python bench/qr.py                # ~25 s; pins itself to one CPU
    .venv/bin/python bench/qr.py --breakdown    # + each step timed alone (qrcode's and ours)
    .venv/bin/python bench/qr.py --wall         # wall clock instead of thread CPU time

Inputs: real HC1 texts issued from the example records (software ES256 key)
plus HC1-like texts ("HC1:" + random base45, 400-700 characters, seeded), so
the QR versions are the ones health centres produce (15-21 at level Q).

* baseline: ``qrcode.QRCode(error_correction=Q, border=4, box_size=4)``, the
  text in alphanumeric mode, ``make(fit=True)`` (qrcode's own mask choice),
  its PIL image saved as PNG; for SVG its ``SvgPathImage``;
* ours: :func:`signer.qr.make_qr` (its cache of recent symbols cleared, so
  every call encodes) + :func:`signer.qr.qr_png` / ``qr_svg``.

Rounds are timed in CPU time of the thread (bench/hc1.py's clock; ``--wall``:
wall clock). Rates are the best round; the ratio is the median of per-round ratios with
the baseline measured in alternation (see bench/hc1.py). Before timing, the
script checks that both produce the same picture (pixel for pixel). Results
go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import random
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import hc1  # noqa: E402
import qrcode  # noqa: E402
import qrcode.image.svg  # noqa: E402
import zxingcpp  # noqa: E402
from hc1 import build_key, paired, pin_cpu, rate  # noqa: E402
from PIL import Image  # noqa: E402
from qrcode import util  # noqa: E402
from qrcode.util import MODE_ALPHA_NUM, QRData  # noqa: E402

from signer.issue import issue_hc1  # noqa: E402
from signer.pdf.qr import qr_matrix  # noqa: E402
from signer.qr import (  # noqa: E402
    _encode,
    alphanumeric_codewords,
    alphanumeric_version,
    best_mask,
    make_qr,
    qr_png,
    qr_svg,
)
from signer.records import Record, read_records, record_fingerprint  # noqa: E402

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
Q = qrcode.constants.ERROR_CORRECT_Q


def texts() -> list[str]:
    key, _ = build_key()
    records = [
        replace(r, verified=record_fingerprint(r))
        for r in read_records(ROOT / "examples" / "records.jsonl")
        if isinstance(r, Record)
    ]
    real = [issue_hc1(r, key, now=NOW, issuer_name="Bộ Y tế").hc1 for r in records]
    rng = random.Random(2026)
    fake = ["HC1:" + "".join(rng.choices(BASE45, k=rng.randrange(400, 701))) for _ in range(8)]
    return real + fake


def plain_qrcode(text: str) -> qrcode.QRCode[Any]:
    qr: qrcode.QRCode[Any] = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_Q, border=4, box_size=4
    )
    qr.add_data(QRData(text.encode("ascii"), mode=MODE_ALPHA_NUM, check_data=False))
    qr.make(fit=True)
    return qr


def plain_png(text: str) -> bytes:
    buf = io.BytesIO()
    plain_qrcode(text).make_image().save(buf, format="PNG")
    return buf.getvalue()


def plain_svg(text: str) -> bytes:
    buf = io.BytesIO()
    plain_qrcode(text).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buf)
    return buf.getvalue()


def ours_png(text: str) -> bytes:
    _encode.cache_clear()  # make_qr keeps the last few symbols: time a fresh encoding
    return qr_png(make_qr(text))


def ours_svg(text: str) -> bytes:
    _encode.cache_clear()
    return qr_svg(make_qr(text))


def cycling(fn: Callable[[str], object], items: list[str]) -> Callable[[], object]:
    it = iter(range(1 << 62))
    return lambda: fn(items[next(it) % len(items)])


def check_same_pictures(items: list[str]) -> None:
    for text in items:
        base = Image.open(io.BytesIO(plain_png(text))).convert("1")
        ours = Image.open(io.BytesIO(ours_png(text)))
        assert base.size == ours.size and base.tobytes() == ours.tobytes(), "pictures differ"


def breakdown(items: list[str], *, seconds: float) -> None:
    """Each step alone (ms per QR): qrcode's and ours."""
    refs = [plain_qrcode(t) for t in items]
    qrs = [make_qr(t) for t in items]
    assert [q.modules for q in qrs] == [r.modules for r in refs]
    data = [util.create_data(q.version, Q, r.data_list) for q, r in zip(qrs, refs, strict=True)]
    assert data == [
        alphanumeric_codewords(t, q.version, Q) for t, q in zip(items, qrs, strict=True)
    ]
    n = len(items)

    def step(fn: Callable[[int], object]) -> Callable[[], object]:
        it = iter(range(1 << 62))
        return lambda: fn(next(it) % n)

    def best_fit(i: int) -> object:
        qr: qrcode.QRCode[Any] = qrcode.QRCode(error_correction=Q)
        qr.add_data(refs[i].data_list[0])
        return qr.best_fit()

    def qrcode_mask(i: int) -> object:
        refs[i].data_cache = data[i]
        return refs[i].best_mask_pattern()

    def place(i: int) -> object:
        refs[i].makeImpl(False, qrs[i].mask_pattern)
        return None

    def fresh(i: int) -> object:
        return _encode.__wrapped__(items[i], Q)

    steps: list[tuple[str, Callable[[int], object]]] = [
        ("version: qrcode best_fit (writes the bit stream)", best_fit),
        ("version: signer.qr.alphanumeric_version", lambda i: alphanumeric_version(len(items[i]), Q)),
        ("codewords: qrcode util.create_data (RS)", lambda i: util.create_data(qrs[i].version, Q, refs[i].data_list)),
        ("codewords: signer.qr.alphanumeric_codewords", lambda i: alphanumeric_codewords(items[i], qrs[i].version, Q)),
        ("mask: qrcode best_mask_pattern (8 x place+score)", qrcode_mask),
        ("mask: signer.qr.best_mask", lambda i: best_mask(qrs[i].version, Q, data[i])),
        ("placement: qrcode makeImpl (once)", place),
        ("whole: signer.qr.make_qr (not cached)", fresh),
        ("PNG: signer.qr.qr_png (from the symbol)", lambda i: qr_png(qrs[i])),
        ("PNG: qrcode PIL image + save", lambda i: _qrcode_pil_png(refs[i])),
        ("SVG: signer.qr.qr_svg", lambda i: qr_svg(qrs[i])),
        ("SVG: qrcode SvgPathImage + save", lambda i: _qrcode_svg(refs[i])),
        ("PDF matrix: signer.pdf.qr.qr_matrix, symbol cached", lambda i: qr_matrix(items[0])),
        ("PDF matrix: zxing-cpp writer (before)", lambda i: _zxing_matrix(items[i])),
    ]  # fmt: skip
    print("  each step alone (ms per QR):")
    for label, fn in steps:
        r = rate(step(fn), seconds=seconds, rounds=2)
        print(f"    {label:52s} {1e3 / r:7.2f}")


def _zxing_matrix(text: str) -> object:
    """What signer.pdf.qr did before: a second encoding, with zxing-cpp's writer."""
    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="Q")
    return bytes(barcode.to_image(scale=1, add_quiet_zones=False))  # type: ignore[call-overload]


def _qrcode_pil_png(qr: qrcode.QRCode[Any]) -> bytes:
    buf = io.BytesIO()
    qr.make_image().save(buf, format="PNG")
    return buf.getvalue()


def _qrcode_svg(qr: qrcode.QRCode[Any]) -> bytes:
    buf = io.BytesIO()
    qr.make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buf)
    return buf.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--cpu", type=int, default=None, help="CPU to pin to (default: the last one)"
    )
    parser.add_argument(
        "--wall", action="store_true", help="time with the wall clock, not CPU time"
    )
    parser.add_argument("--breakdown", action="store_true", help="time each step of make_qr alone")
    args = parser.parse_args()
    where = pin_cpu(args.cpu)

    if args.wall:
        hc1.clock = time.perf_counter
    items = texts()
    check_same_pictures(items)
    versions = sorted({make_qr(t).version for t in items})
    lengths = sorted(len(t) for t in items)
    print(
        f"QR benchmark ({where}; {'wall clock' if args.wall else 'thread CPU time'}; "
        f"{args.rounds} paired rounds of {args.seconds:g} s; Python "
        f"{sys.version.split()[0]}; qrcode {_version('qrcode')}); ratio = median of per-round ratios"
    )
    print(
        f"  {len(items)} HC1 texts ({len(items) - 8} issued, 8 random base45), "
        f"{lengths[0]}-{lengths[-1]} characters, versions {versions[0]}-{versions[-1]} at level Q; "
        "PNG pictures identical (checked)"
    )
    for label, base, ours in (
        ("PNG", plain_png, ours_png),
        ("SVG", plain_svg, ours_svg),
    ):
        b, o, ratio, (low, high) = paired(
            cycling(base, items), cycling(ours, items), seconds=args.seconds, rounds=args.rounds
        )
        print(f"  {label} qrcode make(fit=True) + its image  {b:7.1f} /s  ({1e3 / b:6.2f} ms)")
        print(
            f"  {label} signer.qr make_qr + qr_{label.lower()}        {o:7.1f} /s  ({1e3 / o:6.2f} ms)"
        )
        print(f"  {label} ratio ours / plain qrcode: {ratio:.1f}x (rounds {low:.1f}x-{high:.1f}x)")
    if args.breakdown:
        breakdown(items, seconds=args.seconds / 2)
    return 0


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    raise SystemExit(main())
