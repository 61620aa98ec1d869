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
from typing import Any

from signer.records import PersonValues, Record, person_record, person_values, record_of

from .checks import check_values, citizen_nationality
from .tables import Tables

_sha256 = hashlib.sha256


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

    __slots__ = ("codes", "record")

    def __init__(self, record: Record, codes: tuple[str, ...]):
        self.record = record
        self.codes = codes


def fingerprint_values(values: PersonValues) -> str | None:
    """:func:`signer.records.record_fingerprint` of :func:`signer.records.record_of` (values),
    for the usual record (format "B"); None when it needs the "J" form (a count, number or length above 255)."""
    texts = list(values[:8])
    numbers: list[int] = []
    doses = values[8]
    for date, vaccine, lot, number, series, site in doses:
        texts += (date, vaccine, lot, site)
        numbers += (number, series)
    try:
        header = bytes((len(doses), *numbers, *map(len, texts)))
    except ValueError:
        return None
    return _sha256(b"B" + header + "".join(texts).encode("utf-8", "surrogatepass")).hexdigest()


def fast_reader(today: dt.date, tables: Tables) -> Any:
    """The ``person`` of :func:`signer.records.read_records_range`: a :class:`Fast` item or the full path's item."""
    from .run import values_line  # run imports this module

    def person(group: Any, layout: Any, cmap: Any) -> Any:
        values = person_values(group, layout, cmap)
        if type(values) is not tuple:
            return person_record(group, layout, cmap) if values is None else values
        if not values[0] or not citizen_nationality(values[4]):
            return record_of(values)
        doses = values[8]
        codes = check_values(values[5], values[1], values[2], values[3], True, doses, today, tables)
        if codes:
            return Checked(record_of(values), codes)
        fingerprint = fingerprint_values(values)
        if fingerprint is None:
            return Checked(record_of(values), ())
        # person_values gives every text as str and every dose number as int: line_of's types, unchecked
        return Fast(values, fingerprint, values_line(values[:8], doses, values[11], fingerprint))

    return person
