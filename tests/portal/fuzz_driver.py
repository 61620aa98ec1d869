"""schemathesis over the health-centre API, run by tests/portal/test_api_fuzz.py
with the fuzz venv's Python (.venv-fuzz, requirements/fuzz.txt): a plain HTTP
client of a real `signer serve` on loopback. It never imports the project, so
schemathesis's own pins (jsonschema-rs, hypothesis) never meet the product's.

    .venv-fuzz/bin/python tests/portal/fuzz_driver.py CONFIG.json

CONFIG: {"url", "keys": {"A": key, "B": key}, "job": id, "result_file": name,
"examples": n}. Prints one JSON object: {"operations": [labels], "seen": {label:
[statuses]}, "calls": {label: n}, "documented": [[path, who, status]], "failures": [text]}; exits 1
when any check failed.
"""

from __future__ import annotations

import json
import secrets
import sys
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@schemathesis.serializer("text/csv", "application/x-ndjson")
def _text_body(ctx: Any, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def main(config: dict[str, Any]) -> int:
    url, keys = config["url"], config["keys"]
    schema = schemathesis.openapi.from_url(url + "/api/v1/openapi.json").include(path_regex="^/api/v1/")
    operations = [result.ok() for result in schema.get_all_operations()]
    out: dict[str, Any] = {"operations": [op.label for op in operations], "seen": {}, "documented": [],
                           "failures": []}  # fmt: skip

    # Every operation, each with generated requests (schema-valid; the invalid inputs
    # are tests/portal/test_api.py's hostile cases).
    def fuzz(operation: Any) -> None:
        @given(case=operation.as_strategy())
        @settings(max_examples=config["examples"], deadline=None, suppress_health_check=list(HealthCheck),
                  derandomize=True, database=None)  # fmt: skip
        def run(case: Any) -> None:
            headers = {"Authorization": f"Bearer {keys['A']}"}
            if case.method == "POST" and case.path == "/api/v1/jobs":
                headers["Idempotency-Key"] = secrets.token_hex(8)  # each example a new submission
            response = case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)
            out["seen"].setdefault(operation.label, []).append(response.status_code)

        try:
            run()
        except Exception as err:  # a failed check: schemathesis's report, for the test's message
            out["failures"].append(f"{operation.label}: {type(err).__name__}: {str(err)[:3000]}")

    for operation in operations:
        fuzz(operation)

    # Every GET of a finished job (and a 404 for the other centre) as the schema documents it.
    job, name = config["job"], config["result_file"]
    calls = [
        ("/api/v1/jobs/{job_id}", {"job_id": job}, {}),
        ("/api/v1/jobs/{job_id}/errors", {"job_id": job}, {}),
        ("/api/v1/jobs/{job_id}/results", {"job_id": job}, {}),
        ("/api/v1/jobs/{job_id}/reconciliation", {"job_id": job}, {"format": "json"}),
        ("/api/v1/jobs/{job_id}/reconciliation", {"job_id": job}, {}),
        ("/api/v1/jobs/{job_id}/results/{name}", {"job_id": job, "name": name}, {}),
    ]
    for path, params, query in calls:
        case = schema[path]["GET"].Case(path_parameters=params, query=query)
        for who in ("A", "B"):
            try:
                response = case.call_and_validate(
                    base_url=url, headers={"Authorization": f"Bearer {keys[who]}"}, checks=CHECKS
                )
                out["documented"].append([path, who, response.status_code])
            except Exception as err:
                out["failures"].append(f"GET {path} as {who}: {type(err).__name__}: {str(err)[:3000]}")
    out["calls"] = {label: len(codes) for label, codes in out["seen"].items()}
    out["seen"] = {label: sorted(set(codes)) for label, codes in out["seen"].items()}
    print(json.dumps(out))
    return 1 if out["failures"] else 0


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        sys.exit(main(json.load(fh)))
