"""The readers' fast object construction (signer.records._make_dose/_make_record) makes the constructors' objects."""

from __future__ import annotations

import dataclasses
import pickle

from signer.records import Dose, Record, _make_dose, _make_record, record_fingerprint


def test_fast_dose_and_record_equal_the_constructed_ones() -> None:
    args = ("2021-08-02", "Pfizer", "FK1", 1, 2, "Trạm Y tế")
    dose = _make_dose(*args)
    assert dose == Dose(*args) and hash(dose) == hash(Dose(*args))
    fast = _make_record("R1", "Nguyễn Văn An", "1990-01-02", "M", "VN", "001090000123", (dose,), "Hà Nội",
                        "Phường X", 7, 2, "+84900000123", False)  # fmt: skip
    slow = Record("R1", "Nguyễn Văn An", "1990-01-02", "M", "VN", "001090000123", (Dose(*args),), "Hà Nội",
                  "Phường X", line=7, rows=2, phone="+84900000123")  # fmt: skip
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert record_fingerprint(fast) == record_fingerprint(slow) and fast.to_json() == slow.to_json()
    # every field is set (a field added to Record but not to _make_record fails here)
    assert set(vars(fast)) == {f.name for f in dataclasses.fields(Record)}
    assert set(vars(dose)) == {f.name for f in dataclasses.fields(Dose)}
    assert dataclasses.replace(fast, verified="x") == dataclasses.replace(slow, verified="x")
    assert pickle.loads(pickle.dumps(fast)) == slow  # the workers send records between processes
    try:
        fast.full_name = "x"  # type: ignore[misc]
    except dataclasses.FrozenInstanceError:
        pass
    else:
        raise AssertionError("a fast record must stay frozen")


def test_fast_registry_entry_equals_the_constructed_one() -> None:
    from signer.cleaning.checks import RegistryEntry, registry_entry

    fast = registry_entry("079185001234", "Nguyễn Thị Thanh Hương", "1985-03-14", "F")
    slow = RegistryEntry("079185001234", "Nguyễn Thị Thanh Hương", "1985-03-14", "F")
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert set(vars(fast)) == {f.name for f in dataclasses.fields(RegistryEntry)}
    assert pickle.loads(pickle.dumps(fast)) == slow
