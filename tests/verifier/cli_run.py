"""Shared by the verifier tests: the CLI in-process, and vector generator scripts loaded by path."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
import types
from pathlib import Path


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``python -m verifier ARGV`` in-process: (exit code, stdout, stderr)."""
    from verifier import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as exit_:  # argparse usage errors
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


def load_script(path: Path, name: str) -> types.ModuleType:
    """Import a script that is not in a package (tests/vectors/*/make_vectors.py)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module
