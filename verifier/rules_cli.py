"""``python -m verifier rules ...`` and the ``--rules`` option of ``verifier qr``.

    $ python -m verifier rules test tests/vectors/certlogic/rules
    $ python -m verifier rules list --rules verifier/data/rules
    $ python -m verifier rules check --country VN --profile booster --payload dcc.json
    $ python -m verifier rules bundle verifier/data/rules -o rules-vn.json
    $ python -m verifier qr --trust tl.cbor --rules verifier/data/rules --profile booster 'HC1:...'

``rules test DIR`` (issue 11, command-line contract, kept exactly): runs every
``<country>/<rule id>/rule.json`` under DIR against its ``tests/*.json``, prints
one line per disagreement, ends with ``N passed, M failed``; exit 0 only when
M is 0, 2 for unreadable or malformed rule and test files. A test agrees when
the rule's ``Logic`` evaluates, on ``{"payload", "external"}`` of the test,
to exactly ``expected`` (an evaluation error never agrees) and the test's
``validationClock``, if any, lies in the rule's [ValidFrom, ValidTo): the
checks of the reference runner (dgc-business-rules-testdata,
``tooling/src/run-all-tests.tsx``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path
from types import MappingProxyType
from typing import Any

from verifier import certlogic
from verifier.errors import ConfigError
from verifier.result import Reason, Stage, Verdict, VerdictError, jsonable
from verifier.rules import (
    MAX_RULE_FILE_BYTES,
    Outcome,
    RuleFormatError,
    RuleSet,
    RulesReport,
    bundle,
    check_certificate,
    default_rules_path,
    load_rules,
    parse_rule,
    read_json,
)
from verifier.rules_signed import (
    AgePolicy,
    Freshness,
    RuleSetInfo,
    anchors_from_files,
    is_signed_rule_set,
    load_signed_rules,
)
from verifier.util import parse_iso_time, write_atomic

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
DEFAULT_COUNTRY = "VN"
_MAX_TESTS_PER_RULE = 10_000


# --------------------------------------------------------------------------
# rules test DIR


def _show(value: Any) -> str:
    if isinstance(value, certlogic.DateTime):
        return value.isoformat()
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _same(actual: Any, expected: Any) -> bool:
    """JSON equality without Python's True == 1."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(map(_same, actual, expected))
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            _same(actual[k], expected[k]) for k in actual
        )
    return (type(actual) is type(expected) and actual == expected) or (
        certlogic.is_int(actual) and certlogic.is_int(expected) and actual == expected
    )


def _agrees(actual: Any, expected: Any) -> bool:
    try:
        return _same(actual, expected)
    except RecursionError:  # an absurdly nested "expected" in a hostile test file
        return False


def run_rule_test(rule_obj: Any, test: Any, *, source: str) -> str | None:
    """Why one test disagrees with its rule (one line), or None when it agrees."""
    rule = parse_rule(rule_obj, source=source)
    if not isinstance(test, dict) or "expected" not in test:
        raise RuleFormatError(f"{source}: a rule test needs an expected result")
    external = test.get("external", {})
    if not isinstance(external, dict):
        raise RuleFormatError(f"{source}: external must be an object")
    clock = external.get("validationClock")
    if isinstance(clock, str):
        try:
            at = certlogic.plus_time(clock, 0, "day").epoch_ms
        except certlogic.CertLogicError:
            return f"validationClock {clock!r} is not a date-time"
        start = int(rule.valid_from.timestamp() * 1000)
        end = int(rule.valid_to.timestamp() * 1000)
        if not start <= at < end:
            return f"validationClock {clock} is outside the rule's validity [ValidFrom, ValidTo)"
    # no payload: JavaScript's undefined, which `var` reads as null
    data = {"payload": test.get("payload"), "external": external}
    try:
        actual = certlogic.evaluate(rule.logic, data)
    except certlogic.CertLogicError as err:
        return f"expected {_show(test['expected'])}, got error {err.reason}: {err.message}"
    if not _agrees(actual, test["expected"]):
        return f"expected {_show(test['expected'])}, got {_show(actual)}"
    return None


def run_rule_tests(root: Path) -> tuple[int, list[str]]:
    """``(passed, disagreement lines)`` for every rule test under ``root``."""
    if not root.is_dir():
        raise ConfigError(f"{root}: not a folder")
    rule_files = sorted(root.glob("*/*/rule.json"))
    if not rule_files:
        raise ConfigError(f"{root}: no <country>/<rule id>/rule.json")
    passed, failures = 0, []
    for rule_file in rule_files:
        rule_obj = read_json(rule_file)
        parse_rule(rule_obj, source=str(rule_file))  # a bad rule file is exit 2 even without tests
        tests = sorted((rule_file.parent / "tests").glob("*.json"))[:_MAX_TESTS_PER_RULE]
        for test_file in tests:
            problem = run_rule_test(
                rule_obj, read_json(test_file, limit=MAX_RULE_FILE_BYTES), source=str(test_file)
            )
            if problem is None:
                passed += 1
            else:
                failures.append(f"{test_file}: {problem}".replace("\n", "\\n"))
    return passed, failures


def run_test(args: argparse.Namespace) -> int:
    passed, failures = run_rule_tests(Path(args.dir))
    for line in failures:
        print(line)
    print(f"{passed} passed, {len(failures)} failed")
    return EXIT_OK if not failures else EXIT_FAILED


# --------------------------------------------------------------------------
# rules list / rules check


def _load(args: argparse.Namespace) -> RuleSet:
    return load_rules(Path(args.rules) if args.rules else default_rules_path())


def _profile(rule_set: RuleSet, args: argparse.Namespace) -> str | None:
    name: str | None = args.profile
    if name is None:
        name = rule_set.default_profiles.get(args.country)
    if name == "all":
        return None
    return name


def run_list(args: argparse.Namespace) -> int:
    rule_set = _load(args)
    for rule in sorted(rule_set.rules, key=lambda r: (r.country, r.identifier, r.version_key)):
        if args.country and rule.country != args.country:
            continue
        print(
            f"{rule.identifier}  v{rule.version}  {rule.certificate_type}  "
            f"{rule.valid_from:%Y-%m-%d}..{rule.valid_to:%Y-%m-%d}  {rule.description(args.lang)}"
        )
    for (country, name), profile in sorted(rule_set.profiles.items()):
        if args.country and country != args.country:
            continue
        default = " (default)" if rule_set.default_profiles.get(country) == name else ""
        print(f"profile {country}/{name}{default}: {', '.join(sorted(profile.rules))}")
    return EXIT_OK


def run_check(args: argparse.Namespace) -> int:
    rule_set = _load(args)
    at: dt.datetime = args.at or dt.datetime.now(dt.UTC)
    obj = read_json(Path(args.payload))
    if not isinstance(obj, dict):
        raise ConfigError(f"{args.payload}: expected the DCC payload (a JSON object)")
    if isinstance(obj.get("payload"), dict):  # the whole `verifier qr --json` output
        obj = obj["payload"]
    dcc = obj.get("hcert", obj)  # its payload ({iss, iat, exp, hcert}) or the bare DCC
    report = check_certificate(
        rule_set,
        dcc if isinstance(dcc, dict) else {},
        country=args.country,
        profile=_profile(rule_set, args),
        at=at,
        exp=obj.get("exp"),
        iat=obj.get("iat"),
        issuer_country=obj.get("iss") if isinstance(obj.get("iss"), str) else None,
    )
    if args.json:
        out = {"passed": report.passed, "refusal": report.refusal, "rules": report.to_list()}
        print(json.dumps(out, ensure_ascii=False))
    else:
        for r in report.results:
            extra = f" ({r.reason}: {r.message})" if r.result is not Outcome.PASSED else ""
            print(f"{r.rule.identifier}  {r.result}{extra}")
        if report.refusal:
            print(f"refused: no rule of {args.country} applies ({report.refusal})")
        print("passed" if report.passed else "not passed")
    return EXIT_OK if report.passed else EXIT_FAILED


def run_bundle(args: argparse.Namespace) -> int:
    rule_set = load_rules(Path(args.dir))
    text = json.dumps(bundle(rule_set), ensure_ascii=False, indent=1) + "\n"
    try:
        write_atomic(Path(args.output), text.encode("utf-8"), durable=False)
    except OSError as err:
        raise ConfigError(f"cannot write {args.output}: {err.strerror}") from None
    print(f"{args.output}: {len(rule_set.rules)} rules, {len(rule_set.profiles)} profiles")
    return EXIT_OK


def _add_selection(parser: argparse.ArgumentParser, *, rules_required: bool) -> None:
    parser.add_argument(
        "--rules",
        required=rules_required,
        metavar="DIR_OR_FILE",
        help="rule set: a folder of <country>/<rule id>/rule.json, or a JSON file of rules"
        + ("" if rules_required else " (default: the shipped VN rules)"),
    )
    parser.add_argument(
        "--country",
        default=DEFAULT_COUNTRY,
        type=lambda s: s.upper(),
        metavar="CC",
        help=f"country of arrival whose rules apply (default {DEFAULT_COUNTRY})",
    )
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="policy profile of profiles.json (default: its default profile; 'all': every rule)",
    )


def register(subparsers: Any) -> None:
    """Add the ``rules`` command (``test``, ``list``, ``check``)."""
    parser = subparsers.add_parser("rules", help="business rules (CertLogic): test, list, check")
    actions = parser.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    test = actions.add_parser("test", help="run every rule's tests under DIR")
    test.add_argument("dir", metavar="DIR")
    test.set_defaults(run=run_test)
    listing = actions.add_parser("list", help="list rules and profiles")
    _add_selection(listing, rules_required=False)
    listing.add_argument("--lang", choices=("en", "vi"), default="en")
    listing.set_defaults(run=run_list, country=None)
    check = actions.add_parser("check", help="run the rules on a DCC payload (JSON)")
    _add_selection(check, rules_required=False)
    check.add_argument(
        "--payload", required=True, metavar="FILE", help="DCC JSON (or qr --json payload)"
    )
    check.add_argument(
        "--at", type=_parse_at, metavar="ISO-8601", help="validation clock (default now)"
    )
    check.add_argument("--json", action="store_true")
    check.set_defaults(run=run_check)
    show = actions.add_parser(
        "show", help="check a signed rule set against the trust anchors and show its age"
    )
    show.add_argument("file", metavar="FILE")
    show.add_argument(
        "--trust", action="append", required=True, metavar="FILE",
        help="CSCA certificate the rule set's signer chains to (or pin it); repeatable",
    )  # fmt: skip
    show.add_argument("--at", type=_parse_at, metavar="ISO-8601", help="the time (default now)")
    add_age_arguments(show)
    show.set_defaults(run=run_show)
    bundling = actions.add_parser("bundle", help="write a rule folder as one JSON file")
    bundling.add_argument("dir", metavar="DIR")
    bundling.add_argument("-o", "--output", required=True, metavar="FILE")
    bundling.set_defaults(run=run_bundle)


def _parse_at(text: str) -> dt.datetime:
    try:
        return parse_iso_time(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--at: ")) from None


# --------------------------------------------------------------------------
# verifier qr --rules


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {text[:20]!r}") from None
    if not 1 <= value <= 3650:
        raise argparse.ArgumentTypeError(f"must be 1 to 3650 days, got {text[:20]}")
    return value


def add_age_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--rules-warn-days`` and ``--rules-max-age-days`` (a signed rule set's age)."""
    default = AgePolicy()
    parser.add_argument(
        "--rules-warn-days", type=_days, default=default.warn_days, metavar="N",
        help=f"warn when a signed rule set is more than N days old (default {default.warn_days})",
    )  # fmt: skip
    parser.add_argument(
        "--rules-max-age-days", type=_days, default=default.refuse_days, metavar="N",
        help="refuse a signed rule set more than N days old "
        f"(default {default.refuse_days}; more than --rules-warn-days)",
    )  # fmt: skip


def add_qr_arguments(parser: argparse.ArgumentParser) -> None:
    """``--rules``, ``--country``, ``--profile`` on ``verifier qr``."""
    group = parser.add_argument_group("business rules (CertLogic), after the cryptographic checks")
    group.add_argument(
        "--rules",
        metavar="DIR_OR_FILE",
        help="rule set to apply: a folder, a JSON bundle, or a signed rule set "
        "(checked against the --trust CSCAs)",
    )
    add_age_arguments(group)
    group.add_argument(
        "--country",
        default=DEFAULT_COUNTRY,
        type=lambda s: s.upper(),
        metavar="CC",
        help=f"country of arrival (default {DEFAULT_COUNTRY})",
    )
    group.add_argument(
        "--profile", metavar="NAME", help="policy profile (default: the country's default)"
    )


def load_rules_from_args(
    args: argparse.Namespace, *, now: dt.datetime | None = None, report: bool = False
) -> RuleSet | None:
    """The ``--rules`` rule set, or None; checks ``--profile`` too (ConfigError: exit 2).

    A signed rule set is verified against the CSCAs among ``--trust`` and the pinned ones,
    with rollback and age (``--rules-warn-days``, ``--rules-max-age-days``); with
    ``report`` one line on stderr gives its age, and a warning when it is old.
    """
    if getattr(args, "rules", None) is None:
        return None
    path = Path(args.rules)
    if path.is_file() and _signed(path):
        when = now or getattr(args, "at", None) or dt.datetime.now(dt.UTC)
        rule_set = _load_signed(args, path, when, report=report)
    else:
        rule_set = load_rules(path)
    name = _profile(rule_set, args)
    if name is not None:
        rule_set.profile(args.country, name)
    return rule_set


def _signed(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return is_signed_rule_set(fh.read(1))
    except OSError:
        return False


def _policy(args: argparse.Namespace) -> AgePolicy:
    default = AgePolicy()
    return AgePolicy(
        warn_days=getattr(args, "rules_warn_days", default.warn_days),
        refuse_days=getattr(args, "rules_max_age_days", default.refuse_days),
    )


def _load_signed(
    args: argparse.Namespace, path: Path, now: dt.datetime, *, report: bool
) -> RuleSet:
    policy = _policy(args)
    anchors = anchors_from_files(getattr(args, "trust", None) or [])
    rule_set, info, state = load_signed_rules(path, anchors=anchors, now=now, policy=policy)
    if report:
        for line in _age_lines(info, state, policy, now):
            print(line, file=sys.stderr)
    return rule_set


def _age_lines(
    info: RuleSetInfo, state: Freshness, policy: AgePolicy, now: dt.datetime
) -> list[str]:
    lines = [f"note: {info.describe(now)}"]
    if state is Freshness.OLD:
        lines.append(
            f"warning: the rule set is more than {policy.warn_days} days old (refused after "
            f"{policy.refuse_days}); get a newer one from the issuing authority"
        )
    elif state is Freshness.FUTURE:
        lines.append(
            "warning: the rule set was issued after the verification time "
            f"({info.issued_at:%Y-%m-%d %H:%M}Z): is the clock (or --at) right?"
        )
    return lines


def run_show(args: argparse.Namespace) -> int:
    """``rules show --trust CSCA.pem FILE``: what a signed rule set holds, and its age."""
    now: dt.datetime = args.at or dt.datetime.now(dt.UTC)
    path = Path(args.file)
    if not (path.is_file() and _signed(path)):
        raise ConfigError(f"{args.file}: not a signed rule set (keys sign-rules makes one)")
    policy = _policy(args)
    anchors = anchors_from_files(args.trust)
    rule_set, info, state = load_signed_rules(path, anchors=anchors, now=now, policy=policy)
    for line in _age_lines(info, state, policy, now):
        print(line.removeprefix("note: "))
    for rule in sorted(rule_set.rules, key=lambda r: (r.country, r.identifier)):
        print(f"  {rule.identifier}  v{rule.version}  {rule.certificate_type}")
    return EXIT_OK


def apply_rules(
    verdict: Verdict, rule_set: RuleSet | None, args: argparse.Namespace, now: dt.datetime
) -> Verdict:
    """``verdict`` with the rule results (``rules``) and the ``rules`` check; unchanged without rules."""
    if rule_set is None:
        return verdict
    payload = verdict.payload
    dcc = jsonable(payload.get("hcert")) if payload is not None else None
    if payload is None or not isinstance(dcc, dict):
        return dataclasses.replace(verdict, rules=())
    profile = _profile(rule_set, args)
    report = check_certificate(
        rule_set,
        dcc,
        country=args.country,
        profile=profile,
        at=now,
        exp=payload.get("exp"),
        iat=payload.get("iat"),
        issuer_country=payload.get("iss") if isinstance(payload.get("iss"), str) else None,
    )
    return with_report(verdict, report)


def with_report(verdict: Verdict, report: RulesReport) -> Verdict:
    """Fold a :class:`RulesReport` into a verdict: a rule not passed makes it invalid (stage ``rules``)."""
    errors = list(verdict.errors)
    for r in report.results:
        if r.result is Outcome.FAILED:
            errors.append(
                VerdictError(Stage.RULES, Reason.RULE_FAILED, f"{r.rule.identifier}: {r.message}")
            )
        elif r.result is Outcome.OPEN:
            errors.append(
                VerdictError(
                    Stage.RULES, Reason.RULE_OPEN, f"{r.rule.identifier}: {r.reason}: {r.message}"
                )
            )
    if report.refusal:
        kind = report.certificate_type or "unknown type of"
        errors.append(
            VerdictError(
                Stage.RULES,
                Reason.NO_RULES,
                f"no rule of {report.country}"
                + (f" (profile {report.profile})" if report.profile else "")
                + f" applies to a {kind} certificate: refused",
            )
        )
    passed = report.passed
    return dataclasses.replace(
        verdict,
        valid=verdict.valid and passed,
        stage_failed=verdict.stage_failed or (None if passed else str(Stage.RULES)),
        errors=tuple(errors),
        checks=MappingProxyType({**verdict.checks, str(Stage.RULES): passed}),
        rules=tuple(report.to_list()),
    )
