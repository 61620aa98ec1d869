"""A command-line process's imports without the cyclic garbage collector (issue 13).

    >>> from verifier.startup import imports_without_gc
    >>> with imports_without_gc(freeze=False):
    ...     import json
    >>> import gc; gc.isenabled()
    True

Importing the verifier's modules and libraries creates a few hundred
thousand objects that all live until the process ends; the collector,
triggered by those allocations, walks all of them again and again (about a
tenth of a ``verifier pdf FILE`` process's CPU). Within the block the
collector is off; after it, it is on again as it was, and with
``freeze=True`` (a command-line process only: not for a library import)
everything created so far is moved out of its reach (:func:`gc.freeze`), so
that the verification work that follows, with the collector on, does not
walk the imported modules either. Memory is not at stake: imports make
almost no cyclic garbage.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def imports_without_gc(*, freeze: bool) -> Iterator[None]:
    """The collector off for the block, then restored (and ``freeze`` as above)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()
