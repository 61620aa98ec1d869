"""The portal's settings: one frozen value, built by ``signer serve`` from its
options and the environment, passed to :func:`signer.web.app.create_app`.

Secrets never live here: the ledger key comes from ``VNDCC_LEDGER_KEY`` or the
SQLite ledger's key file, signing PINs/passphrases from the environment
(docs/portal.md "Deployment").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Environment variable that carries the settings to uvicorn's worker processes.
SETTINGS_ENV = "VNDCC_PORTAL_SETTINGS"


@dataclass(frozen=True)
class PortalSettings:
    #: the ledger: a SQLite file or a postgresql:// URL (the portal's tables live beside it)
    ledger: str
    #: jobs' folders, and the development code sender's outbox
    data_dir: Path
    #: how one-time codes reach phones: "file" (development: data_dir/outbox.jsonl) or
    #: "http" (an SMS gateway at ``sms_gateway_url``; its token from VNDCC_SMS_GATEWAY_TOKEN)
    sender: str = "file"
    sms_gateway_url: str | None = None
    #: served behind TLS (a reverse proxy): adds HSTS; cookies are Secure always
    https: bool = False
    #: one-time code lifetime and signed-in session lifetime (seconds)
    otp_ttl: int = 300
    session_ttl: int = 1800
    #: records files the API accepts (bytes)
    max_upload_bytes: int = 64 * 1024 * 1024
    #: JSON file: per health centre, how its jobs sign (key spec, chain, CRL, TSA): docs/portal.md
    centres_config: Path | None = None
    #: the registry extract (CSV or SQLite index) that API jobs check records against
    registry: Path | None = None
    #: the default language of the pages ("vi" or "en")
    language: str = "vi"
    #: extra values for tests and deployments (rate limits: docs/portal.md)
    limits: dict[str, int] = field(default_factory=dict)

    def to_env(self) -> str:
        data: dict[str, Any] = asdict(self)
        for name in ("data_dir", "centres_config", "registry"):
            data[name] = None if data[name] is None else str(data[name])
        return json.dumps(data)

    @classmethod
    def from_env(cls, text: str) -> PortalSettings:
        data = json.loads(text)
        for name in ("data_dir", "centres_config", "registry"):
            if data.get(name) is not None:
                data[name] = Path(data[name])
        return cls(**data)
