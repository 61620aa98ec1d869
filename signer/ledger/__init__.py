"""The issuance ledger (issue 10): what was issued to whom, exactly once, with an audit trail.

    >>> import tempfile, pathlib
    >>> from signer.ledger import Ledger
    >>> ledger = Ledger.open(str(pathlib.Path(tempfile.mkdtemp()) / "ledger.sqlite"), actor="doctest")
    >>> ledger.counts()
    {}
    >>> ledger.close()

SQLite by default (a file), PostgreSQL for a ``postgresql://`` URL. Modules:
:mod:`~signer.ledger.db` (connection, transactions), :mod:`~signer.ledger.migrate`
(numbered SQL files), :mod:`~signer.ledger.secret` (the key and keyed
hashes), :mod:`~signer.ledger.store` (rows, states, events, queries),
:mod:`~signer.ledger.audit` (``ledger verify``). See docs/ledger.md.
"""

from signer.ledger.store import Certificate, Change, FileEntry, Ledger, LedgerConflict, Reservation

__all__ = ["Certificate", "Change", "FileEntry", "Ledger", "LedgerConflict", "Reservation"]
