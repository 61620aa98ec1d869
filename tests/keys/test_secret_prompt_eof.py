"""A new secret abandoned at its confirmation prompt is a clear error, not a traceback."""

from __future__ import annotations

import pytest

from keys.secrets import new_secret_twice
from verifier.errors import KeyBackendError


@pytest.mark.parametrize("stop", [EOFError, KeyboardInterrupt])
def test_eof_or_ctrl_c_at_the_second_prompt(stop: type[BaseException]) -> None:
    answers = iter(["first"])

    def prompt(_: str) -> str:
        for answer in answers:
            return answer
        raise stop

    with pytest.raises(KeyBackendError, match="no passphrase given"):
        new_secret_twice("X", what="passphrase", environ={}, is_tty=lambda: True, prompt=prompt)
