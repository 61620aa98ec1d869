"""The citizen portal and the health-centre API (issue 12), one FastAPI app.

Served by ``python -m signer serve`` (uvicorn). Data flow: every ledger batch
run registers the records' holders (:mod:`signer.web.holders`: keyed hashes
of ID + date of birth, the phone encrypted); a citizen looks up their record
(ID + date of birth), proves the phone with a one-time code
(:mod:`signer.web.otp`), and gets a session that sees only the certificates
whose ``citizen_hash`` is theirs. Health centres submit records files through
the JSON API (:mod:`signer.web.centre`), which runs the same checks and the
same ledger batch as the command line. See docs/portal.md.
"""
