"""signer.qr's symbol is exactly qrcode's: the same mask choice, the same modules.

The oracle is qrcode itself: ``QRCode.make()`` with no ``mask_pattern``
(its ``best_mask_pattern``: data placed with each of the 8 masks, scored by
``qrcode.util.lost_point``, ISO/IEC 18004:2015 section 7.8.3). Texts are
HC1-like: "HC1:" + random base45 characters, seeded so failures reproduce.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import qrcode
from hypothesis import given, settings
from hypothesis import strategies as st
from qrcode import util
from qrcode.constants import ERROR_CORRECT_H, ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q
from qrcode.util import MODE_ALPHA_NUM, QRData

from signer.qr import alphanumeric_version, dark_share_penalty, make_qr, mask_penalties
from verifier.errors import InputError

BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
#: Alphanumeric capacity of version 40 at level Q (ISO/IEC 18004 table 7).
MAX_Q_ALPHANUMERIC = 2420


def hc1_like(seed: int, length: int) -> str:
    rng = random.Random(seed)
    return "HC1:" + "".join(rng.choice(BASE45) for _ in range(length))


def reference(text: str) -> qrcode.QRCode[Any]:
    """qrcode on its own: the same parameters, its own version and mask choice."""
    qr: qrcode.QRCode[Any] = qrcode.QRCode(error_correction=ERROR_CORRECT_Q, border=4)
    qr.add_data(QRData(text.encode("ascii"), mode=MODE_ALPHA_NUM, check_data=False))
    qr.make(fit=True)
    return qr


def reference_penalties(qr: qrcode.QRCode[Any]) -> list[int]:
    """qrcode's score of each mask, as its best_mask_pattern computes them."""
    scores = []
    for pattern in range(8):
        qr.makeImpl(True, pattern)
        scores.append(util.lost_point(qr.modules))
    return scores


# Realistic HC1 lengths (400-700 base45 characters: versions 15-21 at level Q).
HC1_SAMPLE = [(seed, random.Random(1000 + seed).randrange(400, 701)) for seed in range(12)]
# Other sizes: versions below 7 (no version information), large versions.
OTHER_SIZES = [
    (100, 0),
    (101, 3),
    (102, 40),
    (103, 150),
    (104, 1200),
    (105, MAX_Q_ALPHANUMERIC - 4),
]


@pytest.mark.parametrize(("seed", "length"), HC1_SAMPLE + OTHER_SIZES)
def test_same_symbol_and_mask_as_qrcode(seed: int, length: int) -> None:
    text = hc1_like(seed, length)
    ours = make_qr(text)
    ref = reference(text)
    assert ours.modules == ref.modules  # the whole symbol, format bits included
    assert ours.version == ref.version
    # qrcode's choice (make() just used it; this call redraws ref.modules).
    assert ours.mask_pattern == ref.best_mask_pattern()
    data = util.create_data(ref.version, ref.error_correction, ref.data_list)
    # Every mask's score, not just the winner: the rules are the same.
    assert mask_penalties(ref.version, ref.error_correction, data) == reference_penalties(ref)


LEVELS = {"L": ERROR_CORRECT_L, "M": ERROR_CORRECT_M, "Q": ERROR_CORRECT_Q, "H": ERROR_CORRECT_H}


@settings(max_examples=60, deadline=None)
@given(
    st.text(alphabet=BASE45, min_size=1, max_size=1800),
    st.sampled_from(sorted(LEVELS)),
)
def test_whole_symbol_equals_qrcode_for_any_text_and_level(text: str, level: str) -> None:
    """make_qr builds the symbol itself (placement, mask, format and version bits): qrcode's."""
    ref: qrcode.QRCode[Any] = qrcode.QRCode(error_correction=LEVELS[level], border=4)
    ref.add_data(QRData(text.encode("ascii"), mode=MODE_ALPHA_NUM, check_data=False))
    try:
        ref.make(fit=True)
    except ValueError as err:  # an all-zero data block: see test_qr_codewords
        assert "glog" in str(err)
        return
    except qrcode.exceptions.DataOverflowError:
        with pytest.raises(InputError):
            make_qr(text, level=level)
        return
    ours = make_qr(text, level=level)
    assert ours.version == ref.version
    assert ours.modules == ref.modules
    assert ours.get_matrix() == ref.get_matrix()
    assert ours.mask_pattern == ref.best_mask_pattern()  # (this redraws ref.modules)


def test_symbol_with_every_mask_equals_qrcode() -> None:
    """Each of the 8 masks' format bits, at versions with and without version information."""
    seen: dict[int, set[int]] = {}
    for seed in range(200):
        text = hc1_like(seed, [2, 60, 300, 560][seed % 4])
        ours = make_qr(text)
        small = ours.version < 7
        if ours.mask_pattern in seen.setdefault(small, set()):
            continue
        seen[small].add(ours.mask_pattern)
        assert ours.modules == reference(text).modules, (seed, ours.mask_pattern)
    assert seen[True] == seen[False] == set(range(8))


@settings(max_examples=25, deadline=None)
@given(st.text(alphabet=BASE45, min_size=1, max_size=800))
def test_mask_choice_equals_qrcode_for_any_alphanumeric_text(text: str) -> None:
    ref = reference(text)
    assert make_qr(text).mask_pattern == ref.best_mask_pattern()


def test_masks_differ_between_texts() -> None:
    """The choice depends on the data (a constant mask would pass a lucky sample)."""
    masks = {make_qr(hc1_like(seed, length)).mask_pattern for seed, length in HC1_SAMPLE}
    assert len(masks) >= 3


def _qrcode_best_fit(length: int) -> int:
    qr: qrcode.QRCode[Any] = qrcode.QRCode(error_correction=ERROR_CORRECT_Q)
    qr.add_data(QRData(b"A" * length, mode=MODE_ALPHA_NUM, check_data=False))
    version: int = qr.best_fit()
    return version


def test_version_equals_qrcode_best_fit_at_every_boundary() -> None:
    lengths = {1, 2, MAX_Q_ALPHANUMERIC}
    previous = alphanumeric_version(1, ERROR_CORRECT_Q)
    for length in range(2, MAX_Q_ALPHANUMERIC + 1):
        version = alphanumeric_version(length, ERROR_CORRECT_Q)
        if version != previous:  # first length of a new version, and the last of the old one
            lengths |= {length - 1, length}
            previous = version
    assert previous == 40 and len(lengths) >= 2 * 39
    for length in sorted(lengths):
        assert alphanumeric_version(length, ERROR_CORRECT_Q) == _qrcode_best_fit(length), length


def test_text_longer_than_version_40_is_refused() -> None:
    make_qr("A" * MAX_Q_ALPHANUMERIC)
    with pytest.raises(InputError):
        make_qr("A" * (MAX_Q_ALPHANUMERIC + 1))


def test_dark_share_penalty_equals_qrcode_float_formula_for_every_size() -> None:
    """qrcode.util._lost_point_level4 in floating point vs our integer formula."""
    for version in range(1, 41):
        total = (4 * version + 17) ** 2
        for dark in range(total + 1):
            percent = float(dark) / total
            assert dark_share_penalty(dark, total) == int(abs(percent * 100 - 50) / 5) * 10


@pytest.mark.parametrize("version", range(1, 41))
def test_placement_and_every_mask_equal_qrcode_at_every_version(version: int) -> None:
    """The slice placement (signer.qr._runs) puts each codeword bit where qrcode's
    map_data does, at every version, for random codewords (the data XOR each
    mask included); each mask's penalty is qrcode's lost_point of that matrix."""
    from signer.qr import _layout, _unmasked

    level = [ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q, ERROR_CORRECT_H][version % 4]
    ref: qrcode.QRCode[Any] = qrcode.QRCode(version=version, error_correction=level)
    total = sum(b.total_count for b in qrcode.base.rs_blocks(version, level))
    data = [random.Random(version).randrange(256) for _ in range(total)]
    ref.data_cache = data
    layout = _layout(version, level, total)
    unmasked = _unmasked(layout, data)
    stride = layout.stride
    for pattern in range(8):
        ref.makeImpl(True, pattern)  # format and version areas light, as we score
        packed = sum(
            1 << (r * stride + c) for r, row in enumerate(ref.modules) for c, dark in enumerate(row) if dark
        )
        assert unmasked ^ layout.masks[pattern] == packed, pattern
    if version <= 10 or version % 5 == 0:  # lost_point is slow on large symbols
        assert mask_penalties(version, level, data) == reference_penalties(ref)
