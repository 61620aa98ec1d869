"""record_fingerprint: the hashed form can be read back (so it is injective),
and any edit of any field makes a stamp stale (signer/records.py)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from signer.records import (
    DOSE_FIELDS,
    FIELDS,
    Dose,
    Record,
    fingerprint_form,
    is_verified,
    record_fingerprint,
)

DOSE_TEXT = ("date", "vaccine", "lot", "site")
# Any code point, lone surrogates included; lengths on both sides of 255.
texts = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=6) | st.text(
    min_size=250, max_size=262
)
numbers = st.integers(0, 255) | st.integers(256, 1000)
doses = st.builds(Dose, date=texts, vaccine=texts, lot=texts, dose_number=numbers, series_doses=numbers, site=texts)
records = st.builds(
    Record,
    record_id=texts,
    full_name=texts,
    date_of_birth=texts,
    sex=texts,
    nationality=texts,
    id_number=texts,
    doses=st.lists(doses, max_size=3).map(tuple),
    province=texts,
    commune=texts,
    line=st.integers(0, 10),
)


def content(record: Record) -> tuple[Any, ...]:
    """What the fingerprint covers (everything but ``line`` and ``verified``)."""
    return (
        tuple(getattr(record, name) for name in FIELDS),
        tuple(tuple(getattr(d, name) for name in DOSE_FIELDS) for d in record.doses),
    )


def parse_form(form: bytes) -> tuple[Any, ...]:
    """Read the record's content back from :func:`fingerprint_form`'s bytes."""
    if form[:1] == b"J":
        obj = json.loads(form[1:].decode("utf-8", "surrogatepass"))
        return (tuple(obj[name] for name in FIELDS), tuple(tuple(d) for d in obj["doses"]))
    assert form[:1] == b"B"
    count = form[1]
    numbers = form[2 : 2 + 2 * count]
    n_texts = len(FIELDS) + len(DOSE_TEXT) * count
    lengths = form[2 + 2 * count : 2 + 2 * count + n_texts]
    assert len(lengths) == n_texts
    text = form[2 + 2 * count + n_texts :].decode("utf-8", "surrogatepass")
    values, pos = [], 0
    for n in lengths:
        values.append(text[pos : pos + n])
        pos += n
    assert pos == len(text)
    fields = tuple(values[: len(FIELDS)])
    dose_list = []
    for i in range(count):
        date, vaccine, lot, site = values[len(FIELDS) + 4 * i : len(FIELDS) + 4 * i + 4]
        dose_list.append((date, vaccine, lot, numbers[2 * i], numbers[2 * i + 1], site))
    return fields, tuple(dose_list)


@settings(max_examples=400, deadline=None)
@given(records)
def test_form_reads_back_to_the_record(record: Record) -> None:
    """The form determines the content, so distinct records have distinct forms."""
    form = fingerprint_form(record)
    assert parse_form(form) == content(record)
    assert record_fingerprint(record) == hashlib.sha256(form).hexdigest()


@settings(max_examples=300, deadline=None)
@given(records, records)
def test_distinct_records_never_share_a_form(a: Record, b: Record) -> None:
    if content(a) != content(b):
        assert fingerprint_form(a) != fingerprint_form(b)
    else:
        assert fingerprint_form(a) == fingerprint_form(b)


@settings(max_examples=300, deadline=None)
@given(records, st.data())
def test_any_field_edit_makes_the_stamp_stale(record: Record, data: st.DataObject) -> None:
    stamped = replace(record, verified=record_fingerprint(record))
    assert is_verified(stamped)
    assert is_verified(replace(stamped, line=stamped.line + 1))  # line is not content
    name = data.draw(st.sampled_from(FIELDS))
    value = data.draw(texts.filter(lambda v: v != getattr(record, name)))
    assert not is_verified(replace(stamped, **{name: value}))
    if record.doses:
        i = data.draw(st.integers(0, len(record.doses) - 1))
        dose_field = data.draw(st.sampled_from(DOSE_FIELDS))
        old = getattr(record.doses[i], dose_field)
        new = data.draw((texts if isinstance(old, str) else numbers).filter(lambda v: v != old))
        edited = list(record.doses)
        edited[i] = replace(edited[i], **{dose_field: new})
        assert not is_verified(replace(stamped, doses=tuple(edited)))
        assert not is_verified(replace(stamped, doses=record.doses[:-1]))  # a dose removed


def test_known_form_and_fallbacks() -> None:
    """The documented byte layout on a fixed record; long fields use the JSON form."""
    rec = Record(
        record_id="R1",
        full_name="Lê Văn A",
        date_of_birth="1990",
        sex="M",
        nationality="VN",
        id_number="",
        doses=(Dose("2021-08-02", "Pfizer", "L1", 1, 2, ""),),
    )
    text = "R1Lê Văn A1990MVN2021-08-02PfizerL1"
    assert fingerprint_form(rec) == (
        b"B" + bytes([1, 1, 2, 2, 8, 4, 1, 2, 0, 0, 0, 10, 6, 2, 0]) + text.encode("utf-8")
    )
    long_name = replace(rec, full_name="x" * 256)
    assert fingerprint_form(long_name).startswith(b'J{"commune":"","date_of_birth":"1990","doses":[["2021-08-02"')
    assert record_fingerprint(long_name) != record_fingerprint(replace(rec, full_name="x" * 255))
