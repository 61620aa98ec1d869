"""``python -m verifier serve``: the checkpoint scanner page on 127.0.0.1 (issue 11).

    $ python -m verifier serve --trust trustlist.cbor --trust csca.pem --rules verifier/data/rules
    serving the scanner page on http://127.0.0.1:8045/ (Ctrl-C stops)
    $ python -m verifier serve --trust trustlist.cbor --rules verifier/data/rules --bundle out/scanner

Only the standard library's ``http.server``: the page (``scanner/index.html``,
``scanner/app``, the verifier modules in ``scanner/src/verify``), the QR decoder
(``zxing-wasm`` from ``scanner/node_modules``, never a CDN) and the trust files
given with ``--trust`` (``/trust/index.json`` and ``/trust/<name>``), the value sets
and the rule set given with ``--rules`` (``/rules/``: a signed one as it is, else one
bundle), and with ``--authority-url`` the issuing authority's ``trustlist.cbor`` and
``rules.cbor`` fetched when the page asks (``/authority/``: the page's CSP allows its own
origin only, docs/scanner.md "Import by URL"). Anything else is 404. Every response carries a Content-Security-Policy without inline
scripts or ``eval`` (``'wasm-unsafe-eval'`` for the decoder only). The page
verifies in the browser; this server only hands out files, so it binds to
loopback and never sees a scanned certificate.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import mimetypes
import os
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verifier.errors import ConfigError

DEFAULT_PORT = 8045
LOOPBACK = ("127.0.0.1", "::1", "localhost")
_MAX_TRUST_FILE = 32 * 1024 * 1024

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "worker-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self'",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    "Cache-Control": "no-cache",
}
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".webmanifest": "application/manifest+json; charset=utf-8",
    ".wasm": "application/wasm",
}


def default_root() -> Path:
    """``scanner/`` next to this package in a checkout."""
    return Path(__file__).resolve().parents[1] / "scanner"


@dataclass(frozen=True)
class Site:
    """What the server hands out: URL path -> file, the trust files' bytes, and the rule set
    (``/rules/bundle.json``, ``/rules/valuesets.json``) when one is given."""

    files: Mapping[str, Path]
    trust: Mapping[str, bytes]
    rules: Mapping[str, bytes] = field(default_factory=dict)
    #: the issuing authority's folder URL (``--authority-url``), mirrored under /authority/
    authority: str | None = None

    def precache(self) -> bytes:
        """``/app/precache.json``: every app file, for the service worker."""
        paths = ["/", *sorted(p for p in self.files if p != "/sw.js")]
        return json.dumps({"files": paths}).encode("utf-8")

    def trust_index(self) -> bytes:
        return json.dumps({"files": list(self.trust)}).encode("utf-8")

    def authority_index(self) -> bytes:
        return json.dumps({"url": self.authority, "files": list(AUTHORITY_FILES)}).encode("utf-8")


def _rule_files(rules_path: str | None) -> dict[str, bytes]:
    """The value sets rules read (always: an imported rule set needs them too), and the rule
    set: a signed one as it is (``signed.cbor``: the page checks its signature, age and
    rollback), an unsigned folder or JSON file as one bundle (``bundle.json``)."""
    from verifier.rules import bundle, load_rules, value_sets
    from verifier.rules_signed import MAX_SIGNED_BYTES, is_signed_rule_set

    out = {"valuesets.json": json.dumps(value_sets()).encode("utf-8")}
    if rules_path is None:
        return out
    path = Path(rules_path)
    if path.is_file():
        try:
            with path.open("rb") as fh:
                data = fh.read(MAX_SIGNED_BYTES + 1)
        except OSError as err:
            raise ConfigError(f"cannot read {rules_path}: {err.strerror}") from None
        if is_signed_rule_set(data):
            if len(data) > MAX_SIGNED_BYTES:
                raise ConfigError(f"{rules_path}: file is too large")
            out["signed.cbor"] = data
            return out
    out["bundle.json"] = json.dumps(bundle(load_rules(path)), ensure_ascii=False).encode("utf-8")
    return out


#: The issuing authority's files the page asks for under /authority/ (docs/scanner.md).
AUTHORITY_FILES = ("trustlist.cbor", "rules.cbor")
_AUTHORITY_TIMEOUT = 15.0


def authority_url(text: str) -> str:
    """``--authority-url``: an http(s) URL of the folder holding the authority's files."""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(text) > 500:
        raise ConfigError(f"--authority-url: not an http(s) URL: {text[:80]!r}")
    return text if text.endswith("/") else text + "/"


def fetch_authority_file(base: str, name: str, *, timeout: float = _AUTHORITY_TIMEOUT) -> bytes:
    """One of :data:`AUTHORITY_FILES` from the authority (``base`` + name), capped at 32 MiB;
    raises :class:`ConfigError` with one line when it cannot be had. The bytes are not
    trusted here: the page verifies their signature."""
    if name not in AUTHORITY_FILES:
        raise ConfigError(f"{name}: not an authority file")
    url = urllib.parse.urljoin(base, name)
    request = urllib.request.Request(url, headers={"User-Agent": "vn-dcc-scanner"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as res:
            data: bytes = res.read(_MAX_TRUST_FILE + 1)
    except urllib.error.HTTPError as err:
        raise ConfigError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        why = getattr(err, "reason", None) or err
        raise ConfigError(f"{url}: {why}") from None
    if len(data) > _MAX_TRUST_FILE:
        raise ConfigError(f"{url}: larger than {_MAX_TRUST_FILE} bytes")
    if not data:
        raise ConfigError(f"{url}: empty")
    return data


def build_site(
    root: Path,
    trust_paths: Sequence[str],
    rules_path: str | None = None,
    *,
    authority: str | None = None,
) -> Site:
    """The served files; raises :class:`ConfigError` when the page or a trust file is missing."""
    if not (root / "index.html").is_file():
        raise ConfigError(f"{root}: no scanner page (index.html) there; give --root")
    zxing = root / "node_modules" / "zxing-wasm" / "dist"
    if not (zxing / "reader" / "zxing_reader.wasm").is_file():
        raise ConfigError(
            f"{zxing}: the QR decoder is not installed (scripts/setup.sh --dev: npm ci --prefix scanner)"
        )
    files: dict[str, Path] = {"/index.html": root / "index.html", "/sw.js": root / "sw.js"}
    for folder, pattern in (("app", "*"), ("src/verify", "*.js"), ("src/vendor", "*.js")):
        for path in sorted((root / folder).glob(pattern)):
            if path.is_file():
                files[f"/{folder}/{path.name}"] = path
    for rel in ("es/reader/index.js", "es/share.js", "reader/zxing_reader.wasm"):
        files[f"/vendor/zxing/{rel}"] = zxing / rel
    trust: dict[str, bytes] = {}
    for i, raw in enumerate(trust_paths):
        path = Path(raw)
        try:
            data = path.read_bytes()
        except OSError as err:
            raise ConfigError(f"cannot read {raw}: {err.strerror}") from None
        if len(data) > _MAX_TRUST_FILE:
            raise ConfigError(f"{raw}: file is too large")
        trust[f"{i}-{path.name}"] = data
    return Site(
        files=files,
        trust=trust,
        rules=_rule_files(rules_path),
        authority=None if authority is None else authority_url(authority),
    )


class _Handler(http.server.BaseHTTPRequestHandler):
    site: Site
    server_version = "vn-dcc-scanner"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("VNDCC_SERVE_LOG"):
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, content_type: str, *, head: bool) -> None:
        self.send_response(status)
        for name, value in HEADERS.items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.path.split("?")[0] == "/sw.js":
            self.send_header("Service-Worker-Allowed", "/")
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        self.send_header("ETag", etag)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _respond(self, *, head: bool) -> None:
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if path == "/":
            path = "/index.html"
        site = self.site
        if path == "/app/precache.json":
            return self._send(200, site.precache(), _TYPES[".json"], head=head)
        if path == "/trust/index.json":
            return self._send(200, site.trust_index(), _TYPES[".json"], head=head)
        if path.startswith("/trust/") and path[len("/trust/") :] in site.trust:
            body = site.trust[path[len("/trust/") :]]
            return self._send(200, body, "application/octet-stream", head=head)
        if path.startswith("/authority/") and site.authority is not None:
            name = path[len("/authority/") :]
            if name == "index.json":
                return self._send(200, site.authority_index(), _TYPES[".json"], head=head)
            if name in AUTHORITY_FILES:
                try:
                    body = fetch_authority_file(site.authority, name)
                except ConfigError as err:
                    text = f"cannot fetch from the issuing authority: {err}\n".encode()
                    return self._send(502, text, "text/plain; charset=utf-8", head=head)
                return self._send(200, body, "application/octet-stream", head=head)
        if path.startswith("/rules/") and path[len("/rules/") :] in site.rules:
            body = site.rules[path[len("/rules/") :]]
            return self._send(200, body, _TYPES[".json"], head=head)
        file = site.files.get(path)
        if file is None:
            return self._send(404, b"not found\n", "text/plain; charset=utf-8", head=head)
        try:
            body = file.read_bytes()
        except OSError:
            return self._send(404, b"not found\n", "text/plain; charset=utf-8", head=head)
        suffix = file.suffix
        content_type = (
            _TYPES.get(suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        )
        return self._send(200, body, content_type, head=head)

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)


class _Server6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


def make_server(
    site: Site, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT
) -> http.server.ThreadingHTTPServer:
    """A threading HTTP server for ``site`` (not started); loopback hosts only."""
    if host not in LOOPBACK:
        raise ConfigError(
            f"--host {host!r}: the scanner server binds to loopback only (127.0.0.1, ::1)"
        )
    handler = type("Handler", (_Handler,), {"site": site})
    server_class = _Server6 if ":" in host else http.server.ThreadingHTTPServer
    try:
        return server_class((host, port), handler)
    except OSError as err:
        raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror}") from None


def write_bundle(site: Site, target: Path) -> int:
    """The site as static files under ``target`` (any web server, or a phone's home screen):
    the same paths, ``app/precache.json``, ``trust/`` and ``rules/``. ``index.html`` carries
    the CSP as a meta tag too, for servers that cannot set headers. Returns the file count."""
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"{target}: not an empty folder")
    out: dict[str, bytes] = {path: file.read_bytes() for path, file in site.files.items()}
    out["/app/precache.json"] = site.precache()
    out["/trust/index.json"] = site.trust_index()
    out.update({f"/trust/{name}": data for name, data in site.trust.items()})
    out.update({f"/rules/{name}": data for name, data in site.rules.items()})
    if site.authority is not None:  # the operator places the authority's files beside it
        out["/authority/index.json"] = site.authority_index()
    for path, data in out.items():
        dest = target / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    return len(out)


def run_serve(args: argparse.Namespace) -> int:
    root = Path(args.root) if args.root else default_root()
    site = build_site(root, args.trust or [], args.rules, authority=args.authority_url)
    if args.bundle is not None:
        count = write_bundle(site, Path(args.bundle))
        print(f"wrote {count} files to {args.bundle} (a static copy of the scanner page)")
        if site.authority is not None:
            print(
                f"copy {' and '.join(AUTHORITY_FILES)} from {site.authority} into "
                f"{Path(args.bundle) / 'authority'} (e.g. hourly): the page reads them there"
            )
        return 0
    server = make_server(site, host=args.host, port=args.port)
    host, port = str(server.server_address[0]), int(server.server_address[1])
    shown = f"[{host}]" if ":" in host else host
    print(f"serving the scanner page on http://{shown}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.stdout.flush()
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the checkpoint scanner page on 127.0.0.1",
        description="Serve the scanner page (verification runs in the browser) on loopback.",
    )
    parser.add_argument(
        "--trust", action="append", metavar="FILE", help="trust file handed to the page; repeatable"
    )
    parser.add_argument(
        "--rules",
        metavar="DIR_OR_FILE",
        help="rule set the page applies (a folder or a bundle, as verifier qr --rules)",
    )
    parser.add_argument(
        "--authority-url",
        metavar="URL",
        help="the issuing authority's folder (http or https) holding trustlist.cbor and "
        "rules.cbor: mirrored to the page under /authority/ (its CSP allows only its own origin)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"TCP port (default {DEFAULT_PORT}; 0: any free port)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)"
    )
    parser.add_argument(
        "--bundle",
        metavar="DIR",
        help="write the page as static files to DIR (empty or new) instead of serving it",
    )
    parser.add_argument(
        "--root", metavar="DIR", help="the scanner folder (default: scanner/ of this checkout)"
    )
    parser.set_defaults(run=run_serve)
