"""The README's Python API example and its issue-10 walk-through run as
written, and its commands exist."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text("utf-8")


def test_readme_python_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(blocks) == 1
    proc = subprocess.run(
        [sys.executable, "-c", blocks[0]], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("URN:UVCI:01:VN:")
    assert "NGUYEN" in proc.stdout


def test_readme_opens_with_the_two_commands() -> None:
    first = re.search(r"```sh\n(.*?)```", README, flags=re.S)
    assert first is not None
    lines = [ln.split("#")[0].strip() for ln in first.group(1).splitlines() if ln.strip()]
    assert lines == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    for script in ("scripts/demo.sh", "scripts/test.sh", "scripts/setup.sh"):
        assert os.access(ROOT / script, os.X_OK)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci


def walk_through() -> tuple[str, str]:
    """The walk-through's two sh blocks: the one the test runs, and the Celery one."""
    section = README.split("## Walk-through", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2
    return blocks[0], blocks[1]


@pytest.mark.slow
def test_readme_walk_through_runs_as_written(tmp_path: Path) -> None:
    """Batch with kill and resume, correction, revocation in the verifier's
    verdict, commune ZIPs, re-issuance: the README's commands, in order, in
    one bash (only the output folder moved into tmp_path)."""
    script, _ = walk_through()
    work = tmp_path / "walk"
    assert script.count("W=/tmp/vn-dcc-walk;") == 1
    script = script.replace("W=/tmp/vn-dcc-walk;", f"W={work};")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VNDCC_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
        check=False,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    batches = re.findall(r"^batch: (\d+) record\(s\): (.*)$", proc.stdout, flags=re.M)
    if "killed (exit 137)" not in output:  # the run finished before the kill: its summary comes first
        first = batches.pop(0)
        assert first[1].endswith("0 skipped as already issued, 0 refused"), output[-4000:]
        assert batches and batches[0][1].startswith("0 issued"), output[-4000:]  # the re-run issues nothing
    assert len(batches) == 3, output[-4000:]  # the resumed run, the correction, the re-issuance
    total = int(batches[0][0])
    assert total > 500
    assert batches[0][1].endswith("0 refused")
    if "killed (exit 137)" in output:  # the kill landed (unless the run took under 2 s; see above for when it did)
        assert re.search(rf"{total} record\(s\): \d+ issued", proc.stdout)
    assert batches[1][1].startswith(f"1 issued (1 superseding an earlier certificate), {total - 1} skipped")
    assert batches[2][1].startswith(f"{total} issued ({total - 1} superseding an earlier certificate, {total} re-issued)")
    assert re.search(r"^ledger ok: \d+ event\(s\)", proc.stdout, flags=re.M)
    assert '"state": "superseded"\n"state": "written"' in proc.stdout
    assert "Reason: this certificate has been revoked" in proc.stdout
    assert "uvci_revoked" in proc.stdout
    assert proc.stdout.count("exit 1\n") == 2
    verdicts = [ln for ln in proc.stdout.splitlines() if ln in ("VALID", "INVALID")]
    assert verdicts == ["INVALID", "VALID"]  # revoked, then its re-issued certificate
    assert "commune ZIPs:" in proc.stdout
    # what the walk-through leaves: every record once, files = ledger = manifest
    from tests.ledger.helpers import check_consistent

    records = [ln for ln in (work / "checks" / "verified.jsonl").read_text("utf-8").splitlines() if ln]
    ids = [re.search(r'"record_id": "([^"]*)"', ln).group(1) for ln in records]  # type: ignore[union-attr]
    check_consistent(str(work / "ledger.sqlite"), work / "out", ids, extra={"communes"})
    communes = sorted(p.name for p in (work / "out" / "communes").iterdir())
    assert len([n for n in communes if n.endswith(".zip")]) > 1
    assert [n for n in communes if not n.endswith(".zip")] == [".batch"], communes  # nothing a killed run left


def test_readme_celery_block_uses_the_real_options() -> None:
    """The Celery block is not run here (tests/ledger/test_celery.py runs the
    same commands with throwaway servers); its signer commands must parse."""
    _, celery = walk_through()
    from signer.cli import build_parser

    commands = re.findall(r"python -m signer ([^\n]*(?:\\\n[^\n]*)*)", celery.replace("\\\n", " "))
    assert [c.split()[0] for c in commands] == ["ledger", "worker", "batch"]
    for command in commands:
        text = re.sub(r"\$\{[^}]*\}|\$[A-Za-z_]\w*", "X", command.split(" #")[0].split(">")[0])
        build_parser().parse_args(shlex.split(text))  # exits 2 on an unknown option
