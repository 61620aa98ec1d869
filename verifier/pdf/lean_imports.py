"""Import pyHanko's validation without its signing half (aiohttp and all).

    >>> from verifier.pdf.lean_imports import defer_signing_packages
    >>> defer_signing_packages()      # before the first ``import pyhanko.sign...``

``pyhanko.sign.validation`` lives under ``pyhanko.sign``, whose
``__init__`` imports the signers, which import the timestamp clients, which
import aiohttp: 0.5 s of a 0.65 s ``verifier pdf`` start, for code an
offline verifier never runs (issue 13); ``pyhanko_certvalidator``'s
``__init__`` likewise (the validator, 40 ms, pulled in by the PDF reader's
use of one helper module). Python runs a package's
``__init__`` before any of its submodules, so this registers the three
packages (``pyhanko.sign``, ``pyhanko.sign.signers``,
``pyhanko.sign.timestamps``) as modules whose ``__init__`` has not run
yet: their submodules import as usual, and the first access to a name the
real ``__init__`` defines (``from pyhanko.sign import PdfSigner``) runs it
then, so code that needs the signing half (the signer, the tests) works
unchanged in the same process. Nothing happens when a package is already
imported.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from types import ModuleType

DEFERRED = (
    "pyhanko.sign",
    "pyhanko.sign.signers",
    "pyhanko.sign.timestamps",
    # pyhanko.pdf_utils.misc imports pyhanko_certvalidator.util, whose package
    # __init__ imports the whole validator (40 ms): the fast path
    # (verifier.pdf.fast) reads the PDF without validating with it
    "pyhanko_certvalidator",
)
#: Re-entrant: a deferred __init__ that runs may touch another deferred package (pyhanko.sign ->
#: pyhanko.sign.signers -> pyhanko.sign.timestamps) in the same thread; a plain Lock deadlocked there.
_LOCK = threading.RLock()


def _deferred(name: str) -> ModuleType | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return None
    module = importlib.util.module_from_spec(spec)
    state = {"ran": False}

    def __getattr__(attr: str) -> object:
        # ``from pyhanko.sign import attributes`` asks the package for a submodule
        # first: import the submodule alone, as Python would for a package whose
        # __init__ had run, instead of running the __init__ from inside one of
        # the modules it imports (a circular import that fails half-way)
        if not attr.startswith("__") and importlib.util.find_spec(f"{name}.{attr}") is not None:
            return importlib.import_module(f"{name}.{attr}")
        with _LOCK:
            if not state["ran"]:
                state["ran"] = True
                del module.__dict__["__getattr__"]
                spec.loader.exec_module(module)  # type: ignore[union-attr]
        try:
            return module.__dict__[attr]
        except KeyError:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}") from None

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module


def defer_signing_packages() -> None:
    """Register the signing packages of pyHanko as not yet initialised (idempotent)."""
    with _LOCK:
        if DEFERRED[0] in sys.modules:
            return
        import pyhanko  # noqa: F401  (the parent must exist)

        for name in DEFERRED:
            if name in sys.modules:
                continue
            module = _deferred(name)
            if module is None:
                return
            sys.modules[name] = module
            parent, _, child = name.rpartition(".")
            if parent:
                setattr(sys.modules[parent], child, module)
