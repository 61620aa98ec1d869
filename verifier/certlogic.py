"""CertLogic: the EU's specified subset of JsonLogic, evaluated in pure Python.

    >>> from verifier.certlogic import evaluate
    >>> rule = {"if": [{"var": "payload.v.0"}, {"===": [{"var": "payload.v.0.dn"}, 2]}, True]}
    >>> evaluate(rule, {"payload": {"v": [{"dn": 2}]}})
    True
    >>> evaluate({"not-before": [{"plusTime": ["2021-02-28", 1, "day"]},
    ...                          {"plusTime": ["2020-02-29", 1, "year"]}]}, None)
    True
    >>> evaluate({"all": [1]}, None)
    Traceback (most recent call last):
    ...
    verifier.certlogic.CertLogicError: unrecognised operator: "all"

Specification: CertLogic 1.3.3 (ehn-dcc-development/dgc-business-rules,
``certlogic/specification/README.md``); the behaviour the spec leaves to
"JavaScript's" is that of the reference implementation certlogic-js, so the
browser (certlogic-js) and this module agree on every rule:

* The expression is checked as a whole before anything is evaluated
  (:func:`validate`, the checks of certlogic-js's validator, spec section
  "Validator"); an invalid expression (unknown operation, wrong arity, bad
  ``var`` path) raises :class:`CertLogicError` whatever the data. Unknown
  operations in a branch the data never reaches therefore fail too: a rule
  that is not CertLogic is never half-evaluated.
* Truthy/falsy are CertLogic's (section "Truthy and falsy values"), not
  Python's: a date-time is neither, and ``if``/``and``/``!`` on a value that
  is neither raise.
* ``===`` and ``in`` are JavaScript's strict equality: strings, numbers,
  booleans and ``null`` by value; arrays, objects and date-times by identity.
* Date-times are :class:`DateTime` (milliseconds since the epoch, UTC), made
  only by ``plusTime`` and ``dccDateOfBirth``; month and year arithmetic is
  that of ``Date.setUTCMonth``/``setUTCFullYear`` (2020-02-29 plus one year
  is 2021-03-01). Strings that are not valid dates, which the spec leaves
  undefined, raise.
* Numbers: integers as JavaScript sees them (``2.0`` is an integer).

Not in CertLogic 1.3.3, and so refused here as by certlogic-js: the
operations ``!==``, ``or``, ``map`` and the other JsonLogic ones (unknown
operation), ``var`` with a default value (invalid expression); a ``reduce``
lambda sees only ``current`` and ``accumulator``, not the outer data.

Hostile expressions: nesting deeper than :data:`MAX_DEPTH` and evaluations of
more than :data:`MAX_STEPS` sub-expressions raise :class:`CertLogicError`
(the 194 rules of dgc-business-rules-testdata nest at most 15 levels and take
at most 38 steps on their tests).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from verifier.errors import PassportError

__all__ = [
    "ENGINE",
    "SPEC_VERSION",
    "CertLogicError",
    "DateTime",
    "Issue",
    "dcc_date_of_birth",
    "evaluate",
    "is_falsy",
    "is_truthy",
    "plus_time",
    "validate",
]

#: The ``Engine`` and highest ``EngineVersion`` of Gateway rules this module runs.
ENGINE: Final = "CERTLOGIC"
SPEC_VERSION: Final = "1.3.3"
#: Deepest nesting of expressions (objects and arrays) accepted.
MAX_DEPTH: Final = 100
#: Most sub-expressions one evaluation may evaluate (reduce multiplies them).
MAX_STEPS: Final = 200_000

TIME_UNITS: Final = ("year", "month", "day", "hour")
_INFIX: Final = frozenset(
    ("===", "and", ">", "<", ">=", "<=", "in", "+", "after", "before", "not-after", "not-before")
)
_COMPARISONS: Final = frozenset(
    ("<", ">", "<=", ">=", "after", "before", "not-after", "not-before")
)
_UVCI_PREFIX: Final = "URN:UVCI:"
_UVCI_SEPARATORS: Final = re.compile(r"[/#:]")
_VAR_PATH: Final = re.compile(r"[^.]+(?:\.[^.]+)*")
_JS_INT_PREFIX: Final = re.compile(r"[ \t\n\r\v\f\u00a0\ufeff]*([+-]?[0-9]+)")

_MS_PER_DAY: Final = 86_400_000
#: ECMAScript TimeClip: a Date holds at most 8.64e15 ms either side of the epoch.
_MAX_TIME_MS: Final = 8_640_000_000_000_000


class CertLogicError(PassportError):
    """An invalid CertLogic expression, or one that cannot be evaluated on this data.

    ``reason`` is machine-readable: ``invalid_expression``, ``unknown_operation``,
    ``evaluation_error`` (a type mismatch found while evaluating), ``too_deep``
    or ``too_costly``.
    """

    def __init__(self, message: str, *, reason: str = "evaluation_error") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True, eq=False)
class DateTime:
    """A CertLogic date-time: milliseconds since 1970-01-01T00:00:00Z.

    ``eq=False``: two date-times are ``===`` only when they are the same
    object, as two JavaScript ``Date`` objects are.
    """

    epoch_ms: int

    def isoformat(self) -> str:
        """``YYYY-MM-DDThh:mm:ss.sssZ``, as JavaScript's ``toISOString``."""
        days, ms = divmod(self.epoch_ms, _MS_PER_DAY)
        year, month, day = _civil_from_days(days)
        seconds, millis = divmod(ms, 1000)
        minutes, sec = divmod(seconds, 60)
        hours, minute = divmod(minutes, 60)
        text = f"{year:04d}" if 0 <= year <= 9999 else f"{year:+07d}"
        return f"{text}-{month:02d}-{day:02d}T{hours:02d}:{minute:02d}:{sec:02d}.{millis:03d}Z"

    def __repr__(self) -> str:
        return f"DateTime({self.isoformat()!r})"


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem found by :func:`validate`: the offending sub-expression and why."""

    expr: Any
    message: str
    reason: str = "invalid_expression"


# --------------------------------------------------------------------------
# values


def is_int(value: object) -> bool:
    """JavaScript's ``Number.isInteger`` on a JSON value (``True`` is no number)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and value.is_integer()


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_truthy(value: object) -> bool:
    """CertLogic truthy: ``true``, non-empty string/array/object, non-zero number."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str | list | dict):
        return len(value) > 0
    if _is_number(value):
        return bool(value != 0)
    return False


def is_falsy(value: object) -> bool:
    """CertLogic falsy: ``false``, ``null``, ``""``, ``0``, ``[]``, ``{}``."""
    if value is None:
        return True
    if isinstance(value, bool):
        return not value
    if isinstance(value, str | list | dict):
        return len(value) == 0
    if _is_number(value):
        return bool(value == 0)
    return False


def _boolsiness(value: object) -> bool | None:
    if is_truthy(value):
        return True
    if is_falsy(value):
        return False
    return None


def _strict_equals(left: object, right: object) -> bool:
    """JavaScript ``===`` on evaluated CertLogic values."""
    if left is None or right is None:
        return left is right
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    return left is right


def show(value: object) -> str:
    """A value for a message: date-times in ISO form, anything long cut."""
    try:
        text = value.isoformat() if isinstance(value, DateTime) else repr(value)
    except (ValueError, RecursionError):  # ints beyond Python's 4300 digits, absurd nesting
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------------
# dates (proleptic Gregorian calendar on integers, as ECMAScript's MakeDay)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (month 1..12)."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return _days_from_civil(year, month + 1, 1) - _days_from_civil(year, month, 1)


def _make_date(epoch_ms: int, text: str) -> DateTime:
    if abs(epoch_ms) > _MAX_TIME_MS:
        raise CertLogicError(f"date-time out of range: {text!r}")
    return DateTime(epoch_ms)


_YEAR: Final = re.compile(r"([0-9]{4})")
_YEAR_MONTH: Final = re.compile(r"([0-9]{4})-([0-9]{2})")
_DATE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATE_TIME: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+?)?"
    r"(Z|([+-])([0-9]{1,2}):?([0-9]{2})?)?"
)


def _checked_date(text: str, year: int, month: int, day: int) -> int:
    if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        raise CertLogicError(f"not a valid date: {text!r}")
    return _days_from_civil(year, month, day)


def _round_up_partial_date(text: str) -> DateTime | None:
    """``YYYY`` -> YYYY-12-31, ``YYYY-MM`` -> its last day (midnight UTC); else None."""
    if m := _YEAR.fullmatch(text):
        days = _days_from_civil(int(m[1]), 12, 31)
        return _make_date(days * _MS_PER_DAY, text)
    if m := _YEAR_MONTH.fullmatch(text):
        year, month = int(m[1]), int(m[2])
        days = _checked_date(text, year, month, 1) + _days_in_month(year, month) - 1
        return _make_date(days * _MS_PER_DAY, text)
    return None


def _date_from_string(text: str) -> DateTime:
    """The date(-time) formats of spec section "Offset date-time (plusTime)"."""
    if m := _DATE.fullmatch(text):
        days = _checked_date(text, int(m[1]), int(m[2]), int(m[3]))
        return _make_date(days * _MS_PER_DAY, text)
    m = _DATE_TIME.fullmatch(text)
    if m is None:
        raise CertLogicError(f"not an allowed date or date-time format: {text!r}")
    days = _checked_date(text, int(m[1]), int(m[2]), int(m[3]))
    hour, minute, second = int(m[4]), int(m[5]), int(m[6])
    millis = int((m[7] or ".")[1:4].ljust(3, "0"))  # decimals beyond the 3rd are dropped
    if hour == 24 and minute == second == millis == 0:
        pass  # ISO 8601 / ECMAScript: 24:00:00 is the end of the day
    elif hour > 23 or minute > 59 or second > 59:
        raise CertLogicError(f"not a valid time: {text!r}")
    offset_min = 0
    if m[8] is not None and m[8] != "Z":
        off_hours, off_minutes = int(m[10]), int(m[11] or "0")
        if off_hours > 23 or off_minutes > 59:
            raise CertLogicError(f"not a valid time zone offset: {text!r}")
        offset_min = (off_hours * 60 + off_minutes) * (-1 if m[9] == "-" else 1)
    ms = days * _MS_PER_DAY + ((hour * 60 + minute - offset_min) * 60 + second) * 1000 + millis
    return _make_date(ms, text)


def plus_time(text: str, amount: int, unit: str) -> DateTime:
    """``plusTime``: parse ``text`` and add ``amount`` years, months, days or hours.

    Month and year steps keep the day of the month and let it overflow, as
    ``Date.setUTCMonth``/``setUTCFullYear`` do (2021-01-31 plus one month is
    2021-03-03); days and hours are exact (no DST, no leap seconds).
    """
    start = _round_up_partial_date(text) or _date_from_string(text)
    if amount == 0:
        return start
    if unit == "hour":
        return _make_date(start.epoch_ms + amount * 3_600_000, text)
    if unit == "day":
        return _make_date(start.epoch_ms + amount * _MS_PER_DAY, text)
    if unit not in ("month", "year"):
        raise CertLogicError(f"unknown time unit {unit!r}", reason="invalid_expression")
    days, time_of_day = divmod(start.epoch_ms, _MS_PER_DAY)
    year, month, day = _civil_from_days(days)
    if unit == "year":
        year += amount
    else:
        year_steps, month0 = divmod(month - 1 + amount, 12)
        year, month = year + year_steps, month0 + 1
    if abs(year) > 300_000:
        raise CertLogicError(f"date-time out of range: {text!r} plus {amount} {unit}s")
    days = _days_from_civil(year, month, 1) + day - 1
    return _make_date(days * _MS_PER_DAY + time_of_day, text)


def dcc_date_of_birth(text: str) -> DateTime:
    """``dccDateOfBirth``: the last date consistent with ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``."""
    partial = _round_up_partial_date(text)
    if partial is not None:
        return partial
    if _DATE.fullmatch(text):
        return _date_from_string(text)
    raise CertLogicError(f"can't parse {text!r} as an EU DCC date of birth")


def extract_from_uvci(uvci: str | None, index: int) -> str | None:
    """Fragment ``index`` of a UCI split on ``/``, ``#``, ``:`` (prefix ``URN:UVCI:`` dropped)."""
    if uvci is None or index < 0:
        return None
    fragments = _UVCI_SEPARATORS.split(uvci.removeprefix(_UVCI_PREFIX))
    return fragments[index] if index < len(fragments) else None


# --------------------------------------------------------------------------
# validation (the checks of certlogic-js's validator, with its messages)


def _is_literal(expr: object) -> bool:
    return isinstance(expr, str | bool) or is_int(expr)


def validate(expr: Any) -> list[Issue]:
    """Problems that make ``expr`` an invalid CertLogic expression (empty: valid).

    The messages are those of the official validation test suite.
    """
    issues: list[Issue] = []
    try:
        _validate(expr, issues, 0)
    except (_TooDeep, RecursionError):
        message = f"expression nested deeper than {MAX_DEPTH} levels"
        issues.insert(0, Issue(None, message, "too_deep"))
    return issues


class _TooDeep(Exception):
    pass


def _validate(expr: Any, issues: list[Issue], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _TooDeep

    def add(message: str) -> None:
        issues.append(Issue(expr, message))

    def sub(values: list[Any]) -> None:
        for value in values:
            _validate(value, issues, depth + 1)

    if _is_literal(expr):
        return
    if _is_number(expr):
        add(f"{expr} is a non-integer number")
        return
    if isinstance(expr, list):
        sub(expr)
        return
    if not isinstance(expr, dict):
        add("invalid CertLogic expression")
        return
    if len(expr) != 1:
        add(f"expression object must have exactly one key, but it has {len(expr)}")
        return
    ((operator, values),) = expr.items()
    if operator == "var":
        if not isinstance(values, str):
            add('not of the form { "var": "<path>" }')
        elif values != "" and not _VAR_PATH.fullmatch(values):
            add(f"data access path doesn't have a valid format: {values}")
        return
    if not isinstance(values, list):
        add('operation not of the form { "<operator>": [ <values...> ] }')
        return
    count = len(values)
    if operator in ("if", "reduce"):
        if count != 3:
            add(
                f'an "{operator}"-operation must have exactly 3 values/operands, but it has {count}'
            )
        sub(values[:3])
    elif operator in _INFIX:
        if operator == "and":
            if count < 2:
                add(f'an "and" operation must have at least 2 operands, but it has {count}')
            sub(values)
        elif operator in _COMPARISONS:
            if not 2 <= count <= 3:
                add(
                    f'an operation with operator "{operator}" must have 2 or 3 operands, '
                    f"but it has {count}"
                )
            sub(values[:3])
        else:
            if count != 2:
                add(
                    f'an operation with operator "{operator}" must have 2 operands, '
                    f"but it has {count}"
                )
            sub(values[:2])
    elif operator == "!":
        if count != 1:
            add(
                f"a !-operation (logical not/negation) must have exactly 1 operand, but it has {count}"
            )
        else:
            sub(values)
    elif operator == "plusTime":
        if count != 3:
            add(f'a "plusTime"-operation must have exactly 3 values/operands, but it has {count}')
        sub(values[:1])
        if count > 1 and not is_int(values[1]):
            add(
                f'"amount" argument (#2) of "plusTime" must be an integer, but it is: {values[1]!r}'
            )
        if count > 2 and values[2] not in TIME_UNITS:
            add(
                f'"unit" argument (#3) of "plusTime" must be a string equal to one of '
                f"{', '.join(TIME_UNITS)}, but it is: {values[2]!r}"
            )
    elif operator == "extractFromUVCI":
        if count != 2:
            add(
                f'an "extractFromUVCI"-operation must have exactly 2 values/operands, but it has {count}'
            )
        sub(values[:1])
        if count > 1 and not is_int(values[1]):
            add(
                f'"index" argument (#2) of "extractFromUVCI" must be an integer, but it is: {values[1]!r}'
            )
    elif operator == "dccDateOfBirth":
        if count != 1:
            add(
                f'a "dccDateOfBirth"-operation must have exactly 1 value/operand, but it has {count}'
            )
        sub(values[:1])
    else:
        issues.append(Issue(expr, f'unrecognised operator: "{operator}"', "unknown_operation"))


# --------------------------------------------------------------------------
# evaluation


def evaluate(expr: Any, data: Any) -> Any:
    """Evaluate a CertLogic expression on a data context (JSON values).

    Returns a JSON value or a :class:`DateTime`. Raises :class:`CertLogicError`
    for an invalid expression (checked first, as a whole) or a type mismatch
    found while evaluating (spec: "Introduction").
    """
    issues = validate(expr)
    if issues:
        raise CertLogicError(issues[0].message, reason=issues[0].reason)
    try:
        return _Evaluation().run(expr, data, 0)
    except RecursionError:
        raise CertLogicError("evaluation nested too deeply", reason="too_deep") from None


class _Evaluation:
    """One evaluation; counts steps so a hostile ``reduce`` cannot run for hours."""

    __slots__ = ("steps",)

    def __init__(self) -> None:
        self.steps = 0

    def run(self, expr: Any, data: Any, depth: int) -> Any:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise CertLogicError(
                f"evaluation takes more than {MAX_STEPS} steps", reason="too_costly"
            )
        if depth > MAX_DEPTH:
            raise CertLogicError(f"evaluation nested deeper than {MAX_DEPTH}", reason="too_deep")
        if _is_literal(expr):
            return expr
        if isinstance(expr, list):
            return [self.run(item, data, depth + 1) for item in expr]
        if not isinstance(expr, dict) or len(expr) != 1:
            raise CertLogicError(
                f"invalid CertLogic expression: {show(expr)}", reason="invalid_expression"
            )
        ((operator, values),) = expr.items()
        if operator == "var":
            return _access(data, values)
        if not isinstance(values, list) or not values:
            raise CertLogicError(
                'operation not of the form { "<operator>": [ <values...> ] }',
                reason="invalid_expression",
            )
        sub = depth + 1
        if operator == "if":
            guard = self.run(values[0], data, sub)
            truth = _boolsiness(guard)
            if truth is None:
                raise CertLogicError(
                    f"if-guard evaluates to something neither truthy, nor falsy: {show(guard)}"
                )
            return self.run(values[1] if truth else values[2], data, sub)
        if operator == "and":
            result: Any = True
            for operand in values:
                result = self.run(operand, data, sub)
                truth = _boolsiness(result)
                if truth is None:
                    raise CertLogicError(
                        'all operands of an "and" operation must be either truthy or falsy'
                    )
                if not truth:
                    return result
            return result
        if operator == "!":
            operand = self.run(values[0], data, sub)
            truth = _boolsiness(operand)
            if truth is None:
                raise CertLogicError(
                    f"operand of ! evaluates to something neither truthy, nor falsy: {show(operand)}"
                )
            return not truth
        if operator == "reduce":
            return self._reduce(values, data, sub)
        if operator == "plusTime":
            text = self.run(values[0], data, sub)
            if not isinstance(text, str):
                raise CertLogicError(
                    f'date argument (#1) of "plusTime" must be a string, not {show(text)}'
                )
            return plus_time(text, int(values[1]), values[2])
        if operator == "dccDateOfBirth":
            text = self.run(values[0], data, sub)
            if not isinstance(text, str):
                raise CertLogicError(
                    f'operand of "dccDateOfBirth" must be a string, not {show(text)}'
                )
            return dcc_date_of_birth(text)
        if operator == "extractFromUVCI":
            uvci = self.run(values[0], data, sub)
            if uvci is not None and not isinstance(uvci, str):
                raise CertLogicError(
                    '"UVCI" argument (#1) of "extractFromUVCI" must be either a string or null'
                )
            return extract_from_uvci(uvci, int(values[1]))
        operation = _BINARY.get(operator)
        if operation is None:
            raise CertLogicError(f'unrecognised operator: "{operator}"', reason="unknown_operation")
        return operation(operator, [self.run(v, data, sub) for v in values])

    def _reduce(self, values: list[Any], data: Any, depth: int) -> Any:
        operand = self.run(values[0], data, depth)
        accumulator = self.run(values[2], data, depth)
        if operand is None:
            return accumulator
        if not isinstance(operand, list):
            raise CertLogicError(
                f"operand of reduce evaluated to a non-null non-array: {show(operand)}"
            )
        for current in operand:
            accumulator = self.run(
                values[1], {"accumulator": accumulator, "current": current}, depth
            )
        return accumulator


def _access(data: Any, path: str) -> Any:
    """``var``: drill into ``data`` along a dotted path; anything missing is ``null``."""
    if path == "":
        return data
    value = data
    for fragment in path.split("."):
        if value is None:
            return None
        number = _JS_INT_PREFIX.match(fragment)
        if number and len(number[1]) > 15:  # beyond any index (and int()'s digit limit)
            number = None
            if isinstance(value, list):
                return None
        if isinstance(value, list):
            index = int(number[1]) if number else -1
            value = value[index] if 0 <= index < len(value) else None
        elif isinstance(value, dict):
            # JavaScript reads obj[parseInt(fragment)] for a numeric fragment
            value = value.get(str(int(number[1])) if number else fragment)
        else:
            return None
    return value


def _int_operands(operator: str, values: list[Any]) -> list[int | float]:
    if not all(is_int(v) for v in values):
        raise CertLogicError(
            f'all operands of "{operator}" must be integers, not {", ".join(map(show, values))}'
        )
    return values


def _date_operands(operator: str, values: list[Any]) -> list[int]:
    if not all(isinstance(v, DateTime) for v in values):
        raise CertLogicError(
            f'all operands of "{operator}" must be date-times (plusTime, dccDateOfBirth), '
            f"not {', '.join(map(show, values))}"
        )
    return [v.epoch_ms for v in values]


_ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}
_DATE_ORDER: Final = {"before": "<", "after": ">", "not-after": "<=", "not-before": ">="}


def _compare(operator: str, values: list[Any]) -> bool:
    if operator in _DATE_ORDER:
        numbers: list[Any] = _date_operands(operator, values)
        test = _ORDER[_DATE_ORDER[operator]]
    else:
        numbers = _int_operands(operator, values)
        test = _ORDER[operator]
    return all(test(numbers[i], numbers[i + 1]) for i in range(len(numbers) - 1))


def _in(_: str, values: list[Any]) -> bool:
    needle, haystack = values
    if not isinstance(haystack, list):
        raise CertLogicError(
            f'right-hand side of an "in" operation must be an array, not {show(haystack)}'
        )
    return any(_strict_equals(needle, item) for item in haystack)


def _plus(operator: str, values: list[Any]) -> Any:
    left, right = _int_operands(operator, values)
    return left + right


_BINARY: Final[dict[str, Callable[[str, list[Any]], Any]]] = {
    "===": lambda _, v: _strict_equals(v[0], v[1]),
    "in": _in,
    "+": _plus,
    **dict.fromkeys(_COMPARISONS, _compare),
}
