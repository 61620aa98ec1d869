"""signer.qr's codewords (data + Reed-Solomon, interleaved) equal qrcode's ``util.create_data``.

The oracle is qrcode itself: ``util.create_data(version, level, [QRData(text,
MODE_ALPHA_NUM)])`` (ISO/IEC 18004:2015 sections 7.4 to 7.6). Texts are
HC1-like ("HC1:" + random base45, seeded) or drawn by hypothesis.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qrcode import LUT, base, util
from qrcode.constants import ERROR_CORRECT_H, ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q
from qrcode.exceptions import DataOverflowError
from qrcode.util import MODE_ALPHA_NUM, QRData

from signer.qr import _blocks, _rs_rows, alphanumeric_codewords, alphanumeric_version, reed_solomon
from tests.signer.test_qr import check_png
from tests.signer.test_qr_mask import BASE45, HC1_SAMPLE, MAX_Q_ALPHANUMERIC, hc1_like
from verifier.errors import InputError

LEVELS = {"L": ERROR_CORRECT_L, "M": ERROR_CORRECT_M, "Q": ERROR_CORRECT_Q, "H": ERROR_CORRECT_H}


def reference(text: str, version: int, level: int) -> list[int]:
    data = [QRData(text.encode("ascii"), mode=MODE_ALPHA_NUM, check_data=False)]
    codewords: list[int] = util.create_data(version, level, data)
    return codewords


def capacity(version: int, level: int) -> int:
    """Most alphanumeric characters that fit ``version`` (from qrcode's bit limits)."""
    bits = util.BIT_LIMIT_TABLE[level][version] - 4 - util.length_in_bits(MODE_ALPHA_NUM, version)
    return 2 * (bits // 11) + (bits % 11 >= 6)


def random_text(seed: int, length: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(BASE45) for _ in range(length))


@pytest.mark.parametrize(("seed", "length"), HC1_SAMPLE)
def test_hc1_like_texts_equal_qrcode(seed: int, length: int) -> None:
    text = hc1_like(seed, length)
    version = alphanumeric_version(len(text), ERROR_CORRECT_Q)
    assert 15 <= version <= 21
    ours = alphanumeric_codewords(text, version, ERROR_CORRECT_Q)
    assert ours == reference(text, version, ERROR_CORRECT_Q)
    assert all(type(c) is int for c in ours)  # a list of ints, as create_data's


def test_every_version_at_level_q_and_its_capacity_boundaries() -> None:
    """Per version: the shortest and the longest text it holds (one past it: the next version)."""
    q = ERROR_CORRECT_Q
    assert capacity(40, q) == MAX_Q_ALPHANUMERIC
    checked = set()
    for version in range(1, 41):
        longest = capacity(version, q)
        shortest = capacity(version - 1, q) + 1 if version > 1 else 1
        for length in sorted({shortest, (shortest + longest) // 2, longest}):
            text = random_text(version * 10_000 + length, length)
            assert alphanumeric_version(length, q) == version
            assert alphanumeric_codewords(text, version, q) == reference(text, version, q)
            checked.add(version)
        # One character more does not fit this version: both refuse it.
        text = random_text(version, longest + 1)
        with pytest.raises(DataOverflowError):
            reference(text, version, q)
        with pytest.raises(InputError):
            alphanumeric_codewords(text, version, q)
    assert checked == set(range(1, 41))


@pytest.mark.parametrize("level", ["L", "M", "H"])
@pytest.mark.parametrize("version", [1, 2, 5, 7, 10, 14, 17, 20, 27, 33, 40])
def test_other_levels_equal_qrcode(level: str, version: int) -> None:
    """Other levels use other rows of the block table (block counts, sizes, EC counts)."""
    ec = LEVELS[level]
    for length in (1, capacity(version, ec) // 2, capacity(version, ec)):
        text = random_text(version * 7 + length, length)
        assert alphanumeric_codewords(text, version, ec) == reference(text, version, ec)


def test_a_text_in_a_larger_version_than_needed() -> None:
    text = hc1_like(5, 500)
    for version in (alphanumeric_version(len(text), ERROR_CORRECT_Q), 25, 40):
        assert alphanumeric_codewords(text, version, ERROR_CORRECT_Q) == reference(
            text, version, ERROR_CORRECT_Q
        )


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(alphabet=BASE45, max_size=900),
    level=st.sampled_from(sorted(LEVELS.values())),
    extra=st.integers(min_value=0, max_value=3),
)
def test_any_alphanumeric_text_equals_qrcode(text: str, level: int, extra: int) -> None:
    version = min(40, alphanumeric_version(max(len(text), 1), level) + extra)
    ours = alphanumeric_codewords(text, version, level)
    try:
        expected = reference(text, version, level)
    except ValueError:  # qrcode's failure on an all-zero data block (see the last test)
        assert zero_blocks(ours, version, level) >= 1
    else:
        assert ours == expected


def test_empty_text_equals_qrcode() -> None:
    for version in (1, 10, 40):
        assert alphanumeric_codewords("", version, ERROR_CORRECT_Q) == reference(
            "", version, ERROR_CORRECT_Q
        )


@pytest.mark.parametrize("bad", ["hc1:abc", "HC1:É", "HC1:#", "AB\n", "a"])
def test_refuses_characters_outside_the_alphabet(bad: str) -> None:
    with pytest.raises(InputError):
        alphanumeric_codewords(bad, 5, ERROR_CORRECT_Q)


def test_generator_polynomials_equal_qrcodes_table() -> None:
    """Our generators (rows for f = 1 are the coefficients) equal qrcode's LUT.rsPoly_LUT."""
    for ec_count, poly in LUT.rsPoly_LUT.items():
        row = _rs_rows(ec_count)[1]
        assert [1, *row.to_bytes(ec_count, "big")] == poly, ec_count


def _syndromes(codeword: bytes) -> list[int]:
    """c(a^i) for each i: all zero iff the generator (roots a^0 .. a^(n-1)) divides c(x)."""
    out = []
    for i in range(len(codeword)):
        acc = 0
        for c in codeword:  # Horner's rule over GF(256), with qrcode's tables
            acc = c ^ (0 if acc == 0 else base.EXP_TABLE[(base.LOG_TABLE[acc] + i) % 255])
        out.append(acc)
    return out


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=160), st.sampled_from(sorted(LUT.rsPoly_LUT)))
def test_reed_solomon_makes_a_codeword(data: bytes, ec_count: int) -> None:
    """data + EC is a multiple of the generator: independent of qrcode's division."""
    ec = reed_solomon(data, ec_count)
    assert len(ec) == ec_count
    assert _syndromes(data + ec)[:ec_count] == [0] * ec_count


def zero_blocks(codewords: list[int], version: int, level: int) -> int:
    """De-interleave ``codewords``; check every block is a codeword; count all-zero blocks.

    An all-zero data block must have all-zero EC codewords.
    """
    blocks = _blocks(version, level)
    plain = [0] * len(codewords)
    for position, source in enumerate(blocks.interleave(range(len(codewords)))):
        plain[source] = codewords[position]
    data_len, n = blocks.data_bits // 8, blocks.ec_count
    zeros = 0
    for k, (start, end) in enumerate(blocks.spans):
        ec = plain[data_len + k * n : data_len + (k + 1) * n]
        assert _syndromes(bytes(plain[start:end] + ec))[:n] == [0] * n
        if not any(plain[start:end]):
            zeros += 1
            assert not any(ec)
    return zeros


def test_all_zero_data_block_where_qrcode_fails() -> None:
    """'00' pairs are 11 zero bits: a long run of '0' makes whole data blocks zero.

    qrcode's polynomial division takes the log of the leading coefficient and
    fails on an all-zero block (ValueError: glog(0)); the EC codewords of a
    zero block are zero. The symbol make_qr builds from them decodes.
    """
    text = "HC1:" + "0" * 600
    version = alphanumeric_version(len(text), ERROR_CORRECT_Q)
    with pytest.raises(ValueError, match="glog"):
        reference(text, version, ERROR_CORRECT_Q)
    ours = alphanumeric_codewords(text, version, ERROR_CORRECT_Q)
    assert zero_blocks(ours, version, ERROR_CORRECT_Q) >= 1
    check_png(text)  # zxing-cpp reads it back
