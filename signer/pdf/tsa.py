"""RFC 3161 client: signature timestamps for PAdES B-T/B-LT (ETSI EN 319 142-1 section 5.3).

    >>> from signer.pdf.tsa import HttpTimestamper
    >>> tsa = HttpTimestamper("http://127.0.0.1:3180/")            # doctest: +SKIP
    >>> token_der = tsa.timestamp(signature_value)                  # doctest: +SKIP

:meth:`HttpTimestamper.timestamp` asks the TSA for a TimeStampToken whose
message imprint is SHA-256 of the given bytes (for a signature timestamp:
the SignerInfo's signature value, RFC 5652 section 11.4 / ETSI EN 319 122-1
section 5.3), with a random nonce and certReq set, over HTTP POST
(RFC 3161 section 3.4). The reply is checked before it is used: status
granted, a token whose imprint and nonce are ours. One persistent
HTTP/1.1 connection is kept per client (re-opened once if the server
closed it), so a signing run pays one round trip per passport.
Failures raise :class:`~verifier.errors.KeyBackendError` with a one-line
message: a run never silently falls back to a signature without timestamp.
"""

from __future__ import annotations

import hashlib
import http.client
import secrets
import socket
import threading
import urllib.parse
from typing import Protocol

from asn1crypto import cms, parser, tsp
from cryptography import x509

from verifier.errors import ConfigError, KeyBackendError

MAX_REPLY_BYTES = 256 * 1024


class Timestamper(Protocol):
    """Anything that returns a DER TimeStampToken over SHA-256 of ``data``."""

    def timestamp(self, data: bytes) -> bytes: ...


class HttpTimestamper:
    """A TSA reached over HTTP(S); thread-safe (one connection, used under a lock)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"--tsa-url: not an http(s) URL: {url!r}")
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _post(self, body: bytes) -> bytes:
        headers = {"Content-Type": "application/timestamp-query", "Accept": "application/timestamp-reply"}
        for attempt in (1, 2):
            conn = self._connection()
            try:
                if conn.sock is None:  # headers and body go out as two sends: no Nagle delay
                    conn.connect()
                    if conn.sock is not None:
                        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.request("POST", self._path, body, headers)
                resp = conn.getresponse()
                data = resp.read(MAX_REPLY_BYTES + 1)
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                self._conn = None
                if attempt == 2:
                    raise KeyBackendError(
                        f"timestamp authority {self.url} unreachable ({type(err).__name__})"
                    ) from None
                continue
            if resp.status != 200:
                raise KeyBackendError(f"timestamp authority {self.url} answered HTTP {resp.status}")
            ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/timestamp-reply":
                raise KeyBackendError(f"timestamp authority {self.url}: unexpected reply type {ctype!r}")
            if len(data) > MAX_REPLY_BYTES:
                raise KeyBackendError(f"timestamp authority {self.url}: reply too large")
            return data
        raise AssertionError("unreachable")

    def timestamp(self, data: bytes) -> bytes:
        """DER TimeStampToken (ContentInfo) over SHA-256 of ``data``."""
        digest = hashlib.sha256(data).digest()
        nonce = secrets.randbits(63) + 1
        req = tsp.TimeStampReq({
            "version": "v1",
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest},
            "nonce": nonce,
            "cert_req": True,
        }).dump()
        with self._lock:
            reply = self._post(req)
        try:
            status_info, token = split_response(reply)
            status = status_info["status"].native
            if status not in ("granted", "granted_with_mods"):
                text = "; ".join(status_info["status_string"].native or ())
                raise KeyBackendError(
                    f"timestamp authority {self.url} refused the request ({status}: {text})"
                )
            if token is None:
                raise KeyBackendError(f"timestamp authority {self.url}: granted without a token")
            info = token["content"]["encap_content_info"]["content"].parsed
            imprint = info["message_imprint"]
            ok = (
                imprint["hash_algorithm"]["algorithm"].native == "sha256"
                and imprint["hashed_message"].native == digest
                and info["nonce"].native == nonce
            )
            der: bytes = token.dump()
        except KeyBackendError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError):
            raise KeyBackendError(f"timestamp authority {self.url}: malformed reply") from None
        if not ok:
            raise KeyBackendError(
                f"timestamp authority {self.url}: the token is not for this request (imprint/nonce)"
            )
        return der


def split_response(der: bytes) -> tuple[tsp.PKIStatusInfo, cms.ContentInfo | None]:
    """(status, token or None) of a DER TimeStampResp (RFC 3161 2.4.2).

    asn1crypto's ``TimeStampResp`` cannot read a reply without a token (a
    rejection), so the outer SEQUENCE is split here.
    """
    _cls, _method, tag, _header, contents, _trailer = parser.parse(der, strict=True)
    if tag != 16:
        raise ValueError("TimeStampResp is not a SEQUENCE")
    parts: list[bytes] = []
    pos = 0
    while pos < len(contents) and len(parts) < 3:
        _c, _m, _t, header, body, trailer = parser.parse(contents[pos:])
        size = len(header) + len(body) + len(trailer)
        parts.append(contents[pos : pos + size])
        pos += size
    if not 1 <= len(parts) <= 2 or pos != len(contents):
        raise ValueError("TimeStampResp has the wrong number of elements")
    status = tsp.PKIStatusInfo.load(parts[0])
    token = cms.ContentInfo.load(parts[1]) if len(parts) == 2 else None
    return status, token


def token_certificates(token_der: bytes) -> list[x509.Certificate]:
    """The certificates a TimeStampToken carries (the TSA's, with certReq)."""
    token = cms.ContentInfo.load(token_der)
    out = []
    for choice in token["content"]["certificates"] or ():
        if choice.name == "certificate":
            out.append(x509.load_der_x509_certificate(choice.chosen.dump()))
    return out
