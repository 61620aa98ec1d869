"""verifier.certlogic against the official CertLogic test suites (tests/vectors/certlogic/spec),
plus the corners the suites leave open: dates, equality, hostile expressions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from verifier import certlogic
from verifier.certlogic import CertLogicError, DateTime, evaluate, validate
from verifier.errors import PassportError

SPEC = Path(__file__).resolve().parents[1] / "vectors" / "certlogic" / "spec"


def _load(folder: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (p.name, json.loads(p.read_text("utf-8"))) for p in sorted((SPEC / folder).glob("*.json"))
    ]


def _assertions() -> list[Any]:
    out = []
    for name, suite in _load("testSuite"):
        for case in suite["cases"]:
            for i, assertion in enumerate(case["assertions"]):
                skip = "skip" in (
                    suite.get("directive"),
                    case.get("directive"),
                    assertion.get("directive"),
                )
                expr = assertion.get("certLogicExpression", case.get("certLogicExpression"))
                marks = [pytest.mark.skip(reason="directive: skip (in the suite)")] if skip else []
                ident = f"{name}:{case['name']}#{i + 1}"
                out.append(
                    pytest.param(
                        expr, assertion["data"], assertion["expected"], id=ident, marks=marks
                    )
                )
    return out


def _same_json(actual: Any, expected: Any) -> bool:
    return json.dumps(actual, sort_keys=True) == json.dumps(expected, sort_keys=True)


OFFICIAL = _assertions()


def test_suite_is_complete() -> None:
    # 232 assertions in CertLogic 1.3.3's testSuite, 14 of them marked "skip" by the suite
    assert len(OFFICIAL) == 232
    assert sum(bool(p.marks) for p in OFFICIAL) == 14


@pytest.mark.parametrize(("expr", "data", "expected"), OFFICIAL)
def test_official_suite(expr: Any, data: Any, expected: Any) -> None:
    assert _same_json(evaluate(expr, data), expected)


VALIDATION = [
    pytest.param(case["certLogicExpression"], case["issues"], id=f"{name}#{i + 1}")
    for name, suite in _load("validation-testSuite")
    for i, case in enumerate(suite["cases"])
]


@pytest.mark.parametrize(("expr", "issues"), VALIDATION)
def test_official_validation_suite(expr: Any, issues: list[dict[str, Any]]) -> None:
    found = [{"expr": i.expr, "message": i.message} for i in validate(expr)]
    assert found == issues
    # the evaluator checks the expression first: an invalid one never evaluates
    if issues:
        with pytest.raises(CertLogicError):
            evaluate(expr, {})


def _iso(value: Any) -> str:
    assert isinstance(value, DateTime)
    return value.isoformat()


@pytest.mark.parametrize(
    ("text", "amount", "unit", "expected"),
    [
        # spec table "Leap days"
        ("2020-02-29", 1, "day", "2020-03-01T00:00:00.000Z"),
        ("2020-02-29", 1, "month", "2020-03-29T00:00:00.000Z"),
        ("2020-02-29", 1, "year", "2021-03-01T00:00:00.000Z"),
        # Date.setUTCMonth lets the day overflow
        ("2021-01-31", 1, "month", "2021-03-03T00:00:00.000Z"),
        ("2021-03-31", -1, "month", "2021-03-03T00:00:00.000Z"),
        ("2021-12-15", 1, "month", "2022-01-15T00:00:00.000Z"),
        ("2021-01-15", -13, "month", "2019-12-15T00:00:00.000Z"),
        ("2021-06-01T00:00:00+07:00", 40, "hour", "2021-06-02T09:00:00.000Z"),
        # partial dates round up (spec 1.3.2), as dccDateOfBirth
        ("2004", 0, "day", "2004-12-31T00:00:00.000Z"),
        ("2004-02", 0, "day", "2004-02-29T00:00:00.000Z"),
        ("2004-02", 18, "year", "2022-03-01T00:00:00.000Z"),
        # time zone forms and sub-second truncation
        ("2021-06-01T12:00:00+7", 0, "hour", "2021-06-01T05:00:00.000Z"),
        ("2021-06-01T12:00:00-0130", 0, "hour", "2021-06-01T13:30:00.000Z"),
        ("2021-06-01T12:00:00+130", 0, "hour", "2021-06-01T10:30:00.000Z"),
        ("2021-06-01T12:00:00+1:30", 0, "hour", "2021-06-01T10:30:00.000Z"),
        ("2021-06-01T12:00:00.1Z", 0, "hour", "2021-06-01T12:00:00.100Z"),
        ("2021-06-01T12:00:00.123999+00:00", 0, "hour", "2021-06-01T12:00:00.123Z"),
        ("2021-06-01T12:00:00", 0, "hour", "2021-06-01T12:00:00.000Z"),
        ("2021-06-01T24:00:00Z", 0, "hour", "2021-06-02T00:00:00.000Z"),
    ],
)
def test_plus_time(text: str, amount: int, unit: str, expected: str) -> None:
    assert _iso(evaluate({"plusTime": [text, amount, unit]}, None)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2021-02-29",  # not a leap year
        "2021-13-01",
        "2021-09-99",
        "2021-06-01T25:00:00Z",
        "2021-06-01T12:00:00+24:00",
        "2021-06-01 12:00:00Z",
        "２０２１-06-01",  # fullwidth digits are not ASCII digits
        "2021-06-01\n",  # no trailing newline (a `$` in Python would let it through)
        "",
        "yesterday",
    ],
)
def test_invalid_dates_raise(text: str) -> None:
    with pytest.raises(CertLogicError):
        evaluate({"plusTime": [text, 0, "day"]}, None)


def test_dcc_date_of_birth() -> None:
    assert _iso(evaluate({"dccDateOfBirth": ["2004-02"]}, None)) == "2004-02-29T00:00:00.000Z"
    with pytest.raises(CertLogicError):
        evaluate({"dccDateOfBirth": ["2004-02-01T00:00:00Z"]}, None)


def test_strict_equality_and_in_are_javascripts() -> None:
    assert evaluate({"===": [1, 1.0]}, None) is True
    assert evaluate({"===": [True, 1]}, None) is False
    assert evaluate({"in": [1, [True]]}, None) is False
    assert evaluate({"===": [[1], [1]]}, None) is False  # two arrays: identity
    same = {"a": [1]}
    assert evaluate({"===": [{"var": "a"}, {"var": "a"}]}, same) is True
    two_dates = {
        "===": [{"plusTime": ["2021-01-01", 0, "day"]}, {"plusTime": ["2021-01-01", 0, "day"]}]
    }
    assert evaluate(two_dates, None) is False


def test_truthiness_is_certlogics() -> None:
    assert evaluate({"if": [{"var": ""}, "T", "F"]}, {"x": 1}) == "T"
    assert evaluate({"if": [{"var": ""}, "T", "F"]}, 0.0) == "F"
    assert evaluate({"!": [{"var": ""}]}, "0") is False
    with pytest.raises(CertLogicError):  # a date-time is neither truthy nor falsy
        evaluate({"if": [{"plusTime": ["2021-01-01", 0, "day"]}, 1, 2]}, None)
    with pytest.raises(CertLogicError):
        evaluate({"and": [True, {"plusTime": ["2021-01-01", 0, "day"]}]}, None)


def test_type_mismatches_raise() -> None:
    for expr in (
        {"<": [1, "2"]},
        {"+": [1, True]},
        {"after": [1, 2]},
        {"in": ["a", "abc"]},
        {"reduce": ["abc", 1, 0]},
        {"extractFromUVCI": [1, 0]},
        {"plusTime": [{"var": "x"}, 0, "day"]},
    ):
        with pytest.raises(CertLogicError) as info:
            evaluate(expr, {"x": None})
        assert info.value.reason == "evaluation_error"


def test_var_paths() -> None:
    data = {"a": [{"b": "c"}], "1": "one"}
    assert evaluate({"var": "a.0.b"}, data) == "c"
    assert evaluate({"var": "a.-1"}, data) is None
    assert evaluate({"var": "a.0.b.0"}, data) is None  # strings are not drilled into
    assert evaluate({"var": "1"}, data) == "one"


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ({"!==": [1, 2]}, "unknown_operation"),  # not in CertLogic 1.3.3 (nor certlogic-js)
        ({"or": [True, False]}, "unknown_operation"),
        ({"and": [False, {"map": [[1], 1]}]}, "unknown_operation"),  # even where never reached
        ({"var": ["a", 1]}, "invalid_expression"),  # no default values
        ({"if": [True, 1]}, "invalid_expression"),
        ({"plusTime": ["2021-01-01", 1, "week"]}, "invalid_expression"),
        ({"plusTime": ["2021-01-01", {"var": "n"}, "day"]}, "invalid_expression"),
        ({"var": "a..b"}, "invalid_expression"),
        (None, "invalid_expression"),
        (1.5, "invalid_expression"),
    ],
)
def test_invalid_expressions(expr: Any, reason: str) -> None:
    with pytest.raises(CertLogicError) as info:
        evaluate(expr, {"a": {"b": 1}})
    assert info.value.reason == reason
    assert isinstance(info.value, PassportError)


@pytest.mark.parametrize("depth", [certlogic.MAX_DEPTH + 1, 5_000, 50_000])
def test_deep_nesting_is_an_error_not_a_crash(depth: int) -> None:
    expr: Any = True
    for _ in range(depth):
        expr = {"!": [expr]}
    with pytest.raises(CertLogicError) as info:
        evaluate(expr, None)
    assert info.value.reason == "too_deep"
    arrays: Any = 1
    for _ in range(depth):
        arrays = [arrays]
    with pytest.raises(CertLogicError):
        evaluate(arrays, None)


def test_nesting_up_to_the_limit_evaluates() -> None:
    expr: Any = True
    for _ in range(certlogic.MAX_DEPTH - 1):
        expr = {"!": [expr]}
    assert evaluate(expr, None) is ((certlogic.MAX_DEPTH - 1) % 2 == 0)


def test_costly_reduce_is_stopped() -> None:
    items = list(range(1000))
    inner = {"reduce": [items, {"+": [{"var": "accumulator"}, 1]}, 0]}
    outer = {"reduce": [items, {"+": [{"var": "accumulator"}, inner]}, 0]}
    with pytest.raises(CertLogicError) as info:
        evaluate(outer, None)
    assert info.value.reason == "too_costly"


def test_extract_from_uvci() -> None:
    expr = {"extractFromUVCI": [{"var": "ci"}, 1]}
    assert evaluate(expr, {"ci": "URN:UVCI:01:VN:7Q2M9K4D1HX3#K"}) == "VN"
    assert evaluate(expr, {}) is None


def test_absurd_numbers_do_not_escape() -> None:
    digits = "9" * 5000
    assert evaluate({"var": f"a.{digits}"}, {"a": [1]}) is None
    assert evaluate({"var": f"a.{digits}"}, {"a": {"1": 1}}) is None
    big = 10**4000
    with pytest.raises(CertLogicError):
        evaluate({"plusTime": ["2021-01-01", 10**30, "month"]}, None)
    with pytest.raises(CertLogicError) as info:
        evaluate({"<": [{"var": "x"}, "a"]}, {"x": big * big})
    assert "<int>" in info.value.message
