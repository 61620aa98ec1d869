"""The checks' fast path for one-row-per-dose exports: a clean person without a ``Record``.

    >>> person = fast_reader(today=dt.date(2026, 6, 1), tables=load_tables())       # doctest: +SKIP
    >>> items = read_records_range(path, 0, None, 1, person=person)                # doctest: +SKIP

Most people of an export are clean. For each person's dose rows the reader
gives :func:`signer.records.person_values` (the values the ``Record`` would
hold). :func:`fast_reader` runs the same checks on them
(:func:`.checks.check_values`, which :func:`.checks.check_record` runs too)
and, for a citizen with a record ID and no code, returns a :class:`Fast`
item: the values, the fingerprint and the stamped ``verified.jsonl`` line,
computed from the values. Anyone else (a code, a foreigner, no record ID, a
value the fingerprint or the line writes differently) comes back as the
``Record`` of the full path (:func:`signer.records.person_record`), as a
:class:`Checked` item (the ``Record`` and the codes found) when the checks ran.

:mod:`.run` then asks the registry about a :class:`Fast` person's ID and
writes its line only when the registry's person agrees
(:func:`.checks.compare_values`) and nothing else applies (no duplicate ID, no
stored verdict); otherwise :meth:`Fast.record` makes the ``Record`` and the
person goes through the full path. So the fast path only ever produces what
the full path would (tests/cleaning/test_fast.py compares both).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from functools import lru_cache
from itertools import chain
from typing import Any

from signer.records import (
    DOSE_FIELDS,
    FIELDS,
    PersonValues,
    Record,
    person_record,
    person_values,
    record_of,
)

from .checks import check_values, citizen_nationality
from .tables import Tables

_sha256 = hashlib.sha256


_js = json.encoder.encode_basestring  # the string escaper of json.dumps(x, ensure_ascii=False)
_LINE_HEAD = "{{" + ", ".join(f'"{name}": {{}}' for name in FIELDS) + ', "doses": [{}], "verified": {}}}\n'
_LINE_HEAD_PHONE = _LINE_HEAD.replace(', "doses"', ', "phone": {}, "doses"')
_DOSE = "{{" + ", ".join(f'"{name}": {{}}' for name in DOSE_FIELDS) + "}}"


def _all_text(values: tuple[Any, ...]) -> bool:
    """Whether every value is text (join checks it in C: cheaper than a generator per record; a ``str``
    subclass passes too, and the encoder would write it the same way)."""
    try:
        "".join(values)
    except TypeError:
        return False
    return True


def line_of(values: tuple[Any, ...], doses: list[tuple[Any, ...]], phone: Any, fingerprint: str) -> str | None:
    """:func:`.run.verified_line` of a record with these :data:`FIELDS` values, doses (:data:`DOSE_FIELDS` tuples)
    and phone, written directly; None unless every field is ``str`` and every dose number ``int``."""
    out = []
    for date, vaccine, lot, number, series, site in doses:
        if not (type(number) is int and type(series) is int and type(date) is str and type(vaccine) is str
                and type(lot) is str and type(site) is str):  # fmt: skip
            return None
        out.append(_DOSE.format(_js(date), _js(vaccine), _js(lot), number, series, _js(site)))
    if _all_text(values):
        if not phone:
            return _LINE_HEAD.format(*map(_js, values), ", ".join(out), _js(fingerprint))
        if type(phone) is str:
            return _LINE_HEAD_PHONE.format(*map(_js, values), _js(phone), ", ".join(out), _js(fingerprint))
    return None


@lru_cache(maxsize=64)
def _line_format(doses: int, phone: bool) -> str:
    """The format of :func:`line_of`'s line with this many doses, with or without phone: one ``str.format``."""
    head = _LINE_HEAD_PHONE if phone else _LINE_HEAD
    return head.replace('"doses": [{}]', '"doses": [' + ", ".join([_DOSE] * doses) + "]")


def values_line(values: tuple[str, ...], doses: list[tuple[str, str, str, int, int, str]], phone: str,
                fingerprint: str) -> str:  # fmt: skip
    """:func:`line_of` for values of the types it writes directly (every text a ``str``, every dose number an
    ``int``: as :func:`signer.records.person_values` makes them), without checking them again."""
    args: list[Any] = list(map(_js, values))
    if phone:
        args.append(_js(phone))
    for date, vaccine, lot, number, series, site in doses:
        args += (_js(date), _js(vaccine), _js(lot), number, series, _js(site))
    args.append(_js(fingerprint))
    return _line_format(len(doses), bool(phone)).format(*args)


#: The characters json's string encoder (``ensure_ascii=False``) writes as escapes: the quote, the backslash and
#: every control character below U+0020. A text without them is written as it is, between quotes.
ESCAPED = re.compile(r'["\\\x00-\x1f]')


def needs_no_escape(text: str) -> bool:
    """Whether json's string encoder writes ``text`` as it is (no character of :data:`ESCAPED`). A printable
    text without quote or backslash never holds one; a text that is not printable (a control character, but
    also e.g. a soft hyphen or a lone surrogate) is answered False: only ever a slower, equal line."""
    return text.isprintable() and '"' not in text and "\\" not in text


_PLAIN_HEAD = _LINE_HEAD.replace(": {}", ': "{}"').replace('"doses": "{}"', '"doses": {}')
_PLAIN_DOSE = _DOSE.replace(": {}", ': "{}"').replace('"dose_number": "{}"', '"dose_number": %d').replace(
    '"series_doses": "{}"', '"series_doses": %d')  # fmt: skip
_PLAIN: dict[tuple[int, bool], str] = {}  # (doses, phone) -> the %-format of plain_line


def _plain_format(doses: int, phone: bool) -> str:
    """:func:`_line_format` as a %-format (one ``%`` of a tuple is cheaper than ``str.format``), with the quotes
    of every text written around its place: for texts that need no escape (:func:`needs_no_escape`)."""
    head = _PLAIN_HEAD.replace(', "doses"', ', "phone": "{}", "doses"') if phone else _PLAIN_HEAD
    text = head.replace('"doses": [{}]', '"doses": [' + ", ".join([_PLAIN_DOSE] * doses) + "]")
    text = text.replace("{{", "{").replace("}}", "}").replace('"{}"', '"%s"')
    if len(_PLAIN) < 64:
        _PLAIN[doses, phone] = text
    return text


def plain_line(values: tuple[str, ...], doses: list[tuple[str, str, str, int, int, str]], phone: str,
               fingerprint: str) -> str:  # fmt: skip
    """:func:`values_line` for texts that need no escape (:func:`needs_no_escape`: the caller has made sure;
    the fingerprint is hex) and int dose numbers: one ``%`` of the texts as they are."""
    key = (len(doses), bool(phone))
    fmt = _PLAIN.get(key) or _plain_format(*key)
    if phone:
        return fmt % (*values, phone, *chain.from_iterable(doses), fingerprint)
    return fmt % (*values, *chain.from_iterable(doses), fingerprint)


class Fast:
    """A person cleared by the checks that need no registry, not (yet) made into a ``Record``."""

    __slots__ = ("fingerprint", "line", "phone", "phone_unusable", "record_id", "rows", "text", "values")

    def __init__(self, values: PersonValues, fingerprint: str, text: str):
        self.values = values
        self.record_id = values[0]
        self.line = values[9]
        self.rows = values[10]
        self.phone = values[11]
        self.phone_unusable = values[12]
        self.fingerprint = fingerprint  # signer.records.record_fingerprint of the record
        self.text = text  # its verified.jsonl line (signer.cleaning.run.verified_line)

    def record(self) -> Record:
        """The ``Record`` the full path reads from the same rows."""
        return record_of(self.values)


class Checked:
    """A person the fast path does not clear, with the codes it found: :func:`.checks.check_record`
    of ``record`` (the full path uses them instead of running the same checks a second time)."""

    __slots__ = ("codes", "fingerprint", "record")

    def __init__(self, record: Record, codes: tuple[str, ...], fingerprint: str | None = None):
        self.record = record
        self.codes = codes
        self.fingerprint = fingerprint  # record_fingerprint(record) when known (fingerprint_values), else None


def fingerprint_values(values: PersonValues) -> str | None:
    """:func:`signer.records.record_fingerprint` of :func:`signer.records.record_of` (values),
    for the usual record (format "B"); None when it needs the "J" form (a count, number or length above 255)."""
    made = _fingerprint_and_text(values)
    return None if made is None else made[0]


def _fingerprint_and_text(values: PersonValues) -> tuple[str, str] | None:
    """:func:`fingerprint_values` and the texts it joins (every text field of the record, then each dose's)."""
    texts = list(values[:8])
    doses = values[8]
    header = [66, len(doses)]  # b"B", the count of doses, each dose's numbers, then every text's length
    for date, vaccine, lot, number, series, site in doses:
        texts += (date, vaccine, lot, site)
        header += (number, series)
    header += map(len, texts)
    try:
        head = bytes(header)
    except ValueError:
        return None
    joined = "".join(texts)
    return _sha256(head + joined.encode("utf-8", "surrogatepass")).hexdigest(), joined


def fingerprint_and_line(values: PersonValues) -> tuple[str, str] | None:
    """:func:`fingerprint_values` and the stamped ``verified.jsonl`` line (:func:`.run.verified_line`) of
    these values; None when the fingerprint needs the "J" form.

    The texts are joined once for the fingerprint (as :func:`fingerprint_values` does); one test of that text
    (and the phone) for a character json escapes (:func:`needs_no_escape`) lets the usual person's line be
    written without escaping field by field (:func:`plain_line`).
    """
    made = _fingerprint_and_text(values)
    if made is None:
        return None
    fingerprint, joined = made
    doses = values[8]
    phone = values[11]
    # person_values gives every text as str and every dose number as int: line_of's types, unchecked
    if needs_no_escape(joined) and (not phone or needs_no_escape(phone)):
        return fingerprint, plain_line(values[:8], doses, phone, fingerprint)
    return fingerprint, values_line(values[:8], doses, phone, fingerprint)


def fast_reader(today: dt.date, tables: Tables) -> Any:
    """The ``person`` of :func:`signer.records.read_records_range`: a :class:`Fast` item or the full path's item."""
    def person(group: Any, layout: Any, cmap: Any) -> Any:
        values = person_values(group, layout, cmap)
        if type(values) is not tuple:
            return person_record(group, layout, cmap) if values is None else values
        if not values[0] or not citizen_nationality(values[4]):
            return record_of(values)
        doses = values[8]
        codes = check_values(values[5], values[1], values[2], values[3], True, doses, today, tables)
        if codes:  # the fingerprint from the values: cheaper than the Record's (record_fingerprint)
            return Checked(record_of(values), codes, fingerprint_values(values))
        found = fingerprint_and_line(values)
        if found is None:
            return Checked(record_of(values), ())
        return Fast(values, *found)

    return person
