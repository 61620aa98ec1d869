"""``signer serve``: the citizen portal and the health-centre API under uvicorn.

    python -m signer serve --code-sender dev-file --ledger data/ledger.sqlite --data data/portal
    python -m signer serve --demo            # demo PKI + example records, then serve

Listens on 127.0.0.1:8000 by default; in production put it behind a TLS
reverse proxy and pass ``--https`` (HSTS). Several worker processes:
``--workers N`` (each opens its own ledger connection; rate limits and
sessions live in the database, so they hold across workers).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from signer.web import portal_cli
from signer.web.settings import SETTINGS_ENV, PortalSettings
from verifier.errors import ConfigError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the citizen portal and the health-centre API (uvicorn)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--ledger", metavar="FILE|URL", help="the ledger (default DATA/ledger.sqlite)")
    p.add_argument("--data", type=Path, default=Path("portal-data"), metavar="DIR",
                   help="jobs' folders and the development code outbox (default ./portal-data)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    p.add_argument("--https", action="store_true", help="served behind TLS: send HSTS")
    p.add_argument("--centres", type=Path, metavar="FILE",
                   help="JSON: how each health centre's API jobs sign (docs/portal.md)")
    p.add_argument("--registry", type=Path, metavar="FILE",
                   help="registry extract (CSV or SQLite index) that API jobs check records against")
    p.add_argument("--language", choices=("vi", "en"), default="vi", help="default page language")
    p.add_argument("--limits", type=Path, metavar="FILE.json",
                   help="rate limits and the look-up lock, e.g. {\"lock_seconds\": 600} (docs/portal.md)")
    p.add_argument("--max-upload-mb", type=int, default=64, metavar="N",
                   help="largest records file the API accepts, in MiB (default 64)")
    p.add_argument("--forwarded-allow-ips", metavar="IPS",
                   help="behind a reverse proxy: the proxy's address(es), comma-separated; its "
                   "X-Forwarded-For/-Proto then give the client's address (rate limits, access log)")
    p.add_argument("--code-sender", choices=("dev-file", "http"),
                   help="how one-time codes reach phones: 'http' posts them to an SMS gateway "
                   "(--sms-gateway-url; bearer token from $VNDCC_SMS_GATEWAY_TOKEN); 'dev-file' "
                   "(development only) writes them in clear to DATA/outbox.jsonl; required unless --demo")
    p.add_argument("--sms-gateway-url", metavar="URL",
                   help="with --code-sender http: the gateway's endpoint (https://, or http:// to loopback)")
    p.add_argument("--demo", action="store_true",
                   help="first set up demo data in DATA (demo PKI, example records signed "
                   "through the API's job path, a centre API key, claim codes), then serve")
    p.set_defaults(func=run_serve)
    portal_cli.register(subparsers)  # the `portal` admin group (claim codes, API keys)


def settings_from_args(ns: argparse.Namespace) -> PortalSettings:
    data: Path = ns.data
    return PortalSettings(
        ledger=ns.ledger or str(data / "ledger.sqlite"),
        data_dir=data,
        sender="http" if ns.code_sender == "http" else "file",
        sms_gateway_url=ns.sms_gateway_url,
        https=ns.https,
        centres_config=ns.centres,
        registry=ns.registry,
        language=ns.language,
        max_upload_bytes=ns.max_upload_mb * 1024 * 1024,
        limits=_read_limits(ns.limits),
    )


def _read_limits(path: Path | None) -> dict[str, int]:
    if path is None:
        return {}
    import json

    from signer.web.limits import Limits

    try:
        values = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"--limits {path}: {err}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"--limits {path}: a JSON object of limit names to integers")
    Limits.from_settings(values)  # checked now, not at the first request
    return {str(k): int(v) for k, v in values.items()}


def run_serve(ns: argparse.Namespace) -> int:
    import uvicorn

    if not 1 <= ns.port <= 65535:
        raise ConfigError(f"--port must be 1..65535, not {ns.port}")
    if not 1 <= ns.max_upload_mb <= 100_000:
        raise ConfigError("--max-upload-mb must be 1..100000")
    if ns.workers < 1:
        raise ConfigError("--workers must be at least 1")
    if ns.code_sender is None and not ns.demo:
        raise ConfigError("no one-time code sender chosen: pass --code-sender dev-file to write the codes "
                          "to DATA/outbox.jsonl (development only: they are in clear there)")
    if ns.sms_gateway_url and ns.code_sender != "http":
        raise ConfigError("--sms-gateway-url is used only with --code-sender http")
    settings = settings_from_args(ns)
    if settings.sender == "http":
        from signer.web.senders import http_sender

        http_sender(settings.sms_gateway_url)  # URL and token checked now, not at the first code
    if ns.demo:
        from signer.web.demo import prepare_demo

        settings = prepare_demo(settings, url=f"http://{'[' + ns.host + ']' if ':' in ns.host else ns.host}:{ns.port}")
    os.environ[SETTINGS_ENV] = settings.to_env()
    uvicorn.run(
        "signer.web.app:factory",
        factory=True,
        host=ns.host,
        port=ns.port,
        workers=ns.workers,
        # behind a proxy (docs/portal.md "Deployment"): trust its X-Forwarded-* headers only
        proxy_headers=bool(ns.forwarded_allow_ips),
        forwarded_allow_ips=ns.forwarded_allow_ips or None,
        server_header=False,
        log_level="info",
    )
    return 0
