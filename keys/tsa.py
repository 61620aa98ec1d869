"""The national PKI's time-stamping authority (RFC 3161): key, certificate, responder, HTTP.

    >>> import datetime as dt
    >>> from keys import tsa
    >>> # cert = tsa.init_tsa(pki_dir, csca_passphrase=b"...", now=now)
    >>> # authority = tsa.load_tsa(pki_dir, csca_passphrase=b"...")
    >>> # reply_der = authority.respond(request_der, now=now)   # pure: TimeStampResp DER
    >>> # server = tsa.make_server(authority, host="127.0.0.1", port=3180, clock=clock)

The TSA key is created by ``init_tsa`` and saved encrypted with the CSCA
passphrase (like the trust-list signer: same national operator); its
certificate is issued by the CSCA with keyUsage digitalSignature and the
extended key usage id-kp-timeStamping marked critical (RFC 3161 section
2.3). Its revocation is published in the CSCA's CRL like every DSC.

:meth:`TimeStampAuthority.respond` turns a DER ``TimeStampReq`` into a DER
``TimeStampResp`` (RFC 3161 section 2.4) for a given ``now``: the token is
a CMS SignedData over a TSTInfo (policy, message imprint copied from the
request, serial, genTime, accuracy 1 s, the request's nonce, the TSA name)
with the signed attributes content type, message digest and ESS
signing-certificate-v2 (RFC 5816). The TSA certificate is included when the
request asks for it (certReq). Requests it cannot honour get a ``rejection``
status with the RFC's failure info (badAlg, badRequest, badDataFormat,
unacceptedPolicy, unacceptedExtension), never an exception.

:func:`make_server` serves it over HTTP (RFC 3161 section 3.4: POST
``application/timestamp-query`` -> ``application/timestamp-reply``) with the
standard library's threading HTTP server; ``python -m keys tsa-serve``
binds it to loopback by default.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from asn1crypto import algos, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keys import pki
from keys.certs import PrivateKey, PublicKey
from keys.software import load_certificate_file
from verifier.errors import ConfigError

#: This project's TSA policy (TSTInfo.policy), an OID under the UUID arc 2.25.
TSA_POLICY = "2.25.94310651424302651745512069212306717455"
TSA_KEY_TYPES = ("ec-p256", "rsa-2048")
MAX_REQUEST_BYTES = 64 * 1024
_HASHES = {"sha256": 32, "sha384": 48, "sha512": 64}
_INDEX_CERT, _INDEX_KEY = "tsa_cert", "tsa_key"


# -- certificate and key in the PKI directory ---------------------------------


def make_tsa_certificate(
    csca: x509.Certificate,
    csca_key: PrivateKey,
    public_key: PublicKey,
    *,
    now: dt.datetime,
    days: int = 365 * 5,
    name: str = "DCC Time-Stamping Authority",
) -> x509.Certificate:
    """TSA certificate: digitalSignature, EKU id-kp-timeStamping only and critical (RFC 3161 2.3)."""
    country = csca.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, str(country)),
        x509.NameAttribute(NameOID.COMMON_NAME, name),
    ])
    key_usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    csca_public = csca.public_key()
    hash_alg = (
        hashes.SHA384()
        if isinstance(csca_key, ec.EllipticCurvePrivateKey) and csca_key.key_size > 256
        else hashes.SHA256()
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(csca.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=days), csca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(csca_public),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(csca_key, hash_alg)
    )


def init_tsa(
    pki_dir: Path,
    *,
    csca_passphrase: bytes,
    now: dt.datetime,
    key_type: str = "ec-p256",
    days: int = 365 * 5,
) -> x509.Certificate:
    """Create (or renew) the TSA key and certificate; the key is encrypted with the CSCA passphrase."""
    if now.tzinfo is None:
        raise ConfigError("now must be timezone-aware")
    if key_type not in TSA_KEY_TYPES:
        raise ConfigError(f"the TSA key must be one of {', '.join(TSA_KEY_TYPES)}")
    if days <= 0:
        raise ConfigError("days must be positive")
    return pki.create_operator_key(
        pki_dir,
        prefix="tsa",
        csca_passphrase=csca_passphrase,
        key_type=key_type,
        certify=lambda csca, csca_key, public: make_tsa_certificate(
            csca, csca_key, public, now=now, days=days
        ),
        record=lambda index, cert_rel, key_rel: replace(
            index, extra={**index.extra, _INDEX_CERT: cert_rel, _INDEX_KEY: key_rel}
        ),
        now=now,
    )


def _revoked_serials(index: pki.PkiIndex) -> set[str]:
    return {str(r.get("serial")) for r in index.extra.get("revoked_certs", ())}


def revoke_tsa(pki_dir: Path, *, now: dt.datetime, reason: str = "unspecified") -> x509.Certificate:
    """Mark the current TSA certificate revoked at ``now``; the next ``issue-crl`` lists it."""
    if now.tzinfo is None:
        raise ConfigError("now must be timezone-aware")
    if reason not in pki.REVOCATION_REASONS:
        raise ConfigError(f"unknown revocation reason {reason!r}")
    with pki._locked(pki_dir):
        index = pki.load_index(pki_dir)
        cert_rel = index.extra.get(_INDEX_CERT)
        if not isinstance(cert_rel, str):
            raise ConfigError("no time-stamping authority yet; run init-tsa first")
        cert = load_certificate_file(pki_dir / cert_rel)
        serial = f"{cert.serial_number:x}"
        if serial in _revoked_serials(index):
            raise ConfigError(f"the TSA certificate {serial} is already revoked")
        record = {"what": "tsa", "serial": serial, "revoked_at": pki._iso(now), "reason": reason}
        revoked = [*index.extra.get("revoked_certs", ()), record]
        pki._save(pki_dir, replace(index, extra={**index.extra, "revoked_certs": revoked}))
    return cert


def load_tsa(pki_dir: Path, *, csca_passphrase: bytes) -> TimeStampAuthority:
    """The PKI's TSA (key decrypted with the CSCA passphrase); refuses a revoked one."""
    index = pki.load_index(pki_dir)
    cert_rel, key_rel = index.extra.get(_INDEX_CERT), index.extra.get(_INDEX_KEY)
    if not isinstance(cert_rel, str) or not isinstance(key_rel, str):
        raise ConfigError("no time-stamping authority yet; run init-tsa first")
    cert = load_certificate_file(pki_dir / cert_rel)
    if f"{cert.serial_number:x}" in _revoked_serials(index):
        raise ConfigError("the TSA certificate is revoked; run init-tsa for a new one")
    key = pki._load_key(pki_dir, key_rel, csca_passphrase, "TSA")
    return TimeStampAuthority(
        key=key, certificate=cert, chain=(pki.csca_certificate(pki_dir),)
    )


# -- the responder ------------------------------------------------------------


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _rejection(fail: str, text: str) -> bytes:
    status = tsp.PKIStatusInfo({
        "status": "rejection",
        "status_string": [text],
        "fail_info": tsp.PKIFailureInfo({fail}),
    })
    # TimeStampResp without a token (asn1crypto's class insists on one)
    return _tlv(0x30, status.dump())


@dataclass(frozen=True)
class TimeStampAuthority:
    """An RFC 3161 TSA: its key and certificate (chain: the CSCA, not sent in tokens)."""

    key: PrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    policy: str = TSA_POLICY

    def respond(self, request: bytes, *, now: dt.datetime, serial: int | None = None) -> bytes:
        """DER TimeStampResp for a DER TimeStampReq at ``now`` (RFC 3161 2.4.2); never raises."""
        try:
            req = tsp.TimeStampReq.load(request)
            version = req["version"].native
            imprint = req["message_imprint"]
            hash_alg = imprint["hash_algorithm"]["algorithm"].native
            hashed = imprint["hashed_message"].native
            policy = req["req_policy"].native
            nonce = req["nonce"].native
            cert_req = bool(req["cert_req"].native)
            extensions = req["extensions"].native
        except (ValueError, TypeError, KeyError):
            return _rejection("bad_data_format", "not a DER TimeStampReq")
        if version != "v1":
            return _rejection("bad_request", "only version 1 requests are supported")
        if hash_alg not in _HASHES:
            return _rejection("bad_alg", "message imprint hash must be SHA-256, SHA-384 or SHA-512")
        if not isinstance(hashed, bytes) or len(hashed) != _HASHES[hash_alg]:
            return _rejection("bad_data_format", "message imprint length does not match its hash")
        if policy is not None and policy != self.policy:
            return _rejection("unaccepted_policy", "unknown TSA policy")
        if extensions:
            return _rejection("unaccepted_extension", "no request extensions are supported")
        if not self.certificate.not_valid_before_utc <= now <= self.certificate.not_valid_after_utc:
            # a token signed outside the TSA certificate's validity never validates
            return _rejection("time_not_available", "the TSA certificate is not valid at this time")
        token = self.token(imprint.dump(), now=now, nonce=nonce, cert_req=cert_req, serial=serial)
        return _tlv(0x30, _GRANTED + token)

    def token(
        self, imprint_der: bytes, *, now: dt.datetime, nonce: int | None = None,
        cert_req: bool = True, serial: int | None = None,
    ) -> bytes:
        """DER TimeStampToken (CMS SignedData over TSTInfo, RFC 3161 2.4.2) for a MessageImprint.

        Written directly as DER from parts prepared once per TSA (about 20x
        faster than building the asn1crypto objects each time); the tests
        check the result with pyHanko's validator and the request checks of
        :mod:`signer.pdf.tsa`, and ``openssl ts -verify`` accepts it.
        """
        if now.tzinfo is None:
            raise ConfigError("now must be timezone-aware")
        f = self._fixed
        gen_time = now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%SZ").encode("ascii")
        tst = _tlv(0x30, b"".join((
            b"\x02\x01\x01",  # version v1
            f.policy,
            imprint_der,
            _int(serial if serial is not None else secrets.randbits(63) + 1),
            _tlv(0x18, gen_time),
            b"\x30\x03\x02\x01\x01",  # accuracy: 1 second
            _int(nonce) if nonce is not None else b"",
            f.tsa_name,
        )))
        digest = _tlv(0x30, _OID_MESSAGE_DIGEST + _tlv(0x31, _tlv(0x04, hashlib.sha256(tst).digest())))
        attrs = f.attr_content_type + digest + f.attr_signing_cert
        signature = self._sign(_tlv(0x31, attrs))
        signer_info = _tlv(0x30, b"".join((
            b"\x02\x01\x01", f.sid, f.digest_alg, _tlv(0xA0, attrs), f.sig_alg,
            _tlv(0x04, signature),
        )))
        encap = _tlv(0x30, _OID_TST_INFO + _tlv(0xA0, _tlv(0x04, tst)))
        signed_data = _tlv(0x30, b"".join((
            b"\x02\x01\x03", _tlv(0x31, f.digest_alg), encap,
            _tlv(0xA0, f.cert) if cert_req else b"", _tlv(0x31, signer_info),
        )))
        return _tlv(0x30, _OID_SIGNED_DATA + _tlv(0xA0, signed_data))

    @cached_property
    def _fixed(self) -> _Fixed:
        cert = asn1_x509.Certificate.load(_der(self.certificate))
        ess = tsp.SigningCertificateV2({"certs": [{"cert_hash": hashlib.sha256(cert.dump()).digest()}]})
        ec_key = isinstance(self.key, ec.EllipticCurvePrivateKey)
        sig_alg = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa" if ec_key else "sha256_rsa"})
        issuer_serial = cert.issuer.dump() + core.Integer(cert.serial_number).dump()
        return _Fixed(
            policy=core.ObjectIdentifier(self.policy).dump(),
            tsa_name=_tlv(0xA0, _tlv(0xA4, cert.subject.dump())),
            sid=_tlv(0x30, issuer_serial),
            digest_alg=algos.DigestAlgorithm({"algorithm": "sha256"}).dump(),
            sig_alg=sig_alg.dump(),
            cert=cert.dump(),
            attr_content_type=_tlv(0x30, _OID_CONTENT_TYPE + _tlv(0x31, _OID_TST_INFO)),
            attr_signing_cert=_tlv(0x30, _OID_SIGNING_CERT_V2 + _tlv(0x31, ess.dump())),
        )

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return self.key.sign(data, ec.ECDSA(hashes.SHA256()))
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        raise ConfigError("the TSA key must be EC or RSA")


@dataclass(frozen=True)
class _Fixed:
    """DER parts of every token of one TSA."""

    policy: bytes
    tsa_name: bytes
    sid: bytes
    digest_alg: bytes
    sig_alg: bytes
    cert: bytes
    attr_content_type: bytes
    attr_signing_cert: bytes


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def _int(n: int) -> bytes:
    """DER INTEGER, two's complement, minimal length (a request's nonce may be negative)."""
    return _tlv(0x02, n.to_bytes(((n if n >= 0 else ~n).bit_length() + 8) // 8, "big", signed=True))


def _oid(dotted: str) -> bytes:
    der: bytes = core.ObjectIdentifier(dotted).dump()
    return der


_OID_SIGNED_DATA = _oid("1.2.840.113549.1.7.2")
_OID_TST_INFO = _oid("1.2.840.113549.1.9.16.1.4")
_OID_CONTENT_TYPE = _oid("1.2.840.113549.1.9.3")
_OID_MESSAGE_DIGEST = _oid("1.2.840.113549.1.9.4")
_OID_SIGNING_CERT_V2 = _oid("1.2.840.113549.1.9.16.2.47")
_GRANTED = b"\x30\x03\x02\x01\x00"  # PKIStatusInfo { status granted }


# -- HTTP (RFC 3161 section 3.4) ------------------------------------------------


def make_server(
    authority: TimeStampAuthority,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Callable[[], dt.datetime],
) -> ThreadingHTTPServer:
    """A threading HTTP server answering RFC 3161 requests; call ``serve_forever()``.

    ``clock`` gives the time of each token (the real clock in ``tsa-serve``;
    a fixed time in tests). Port 0 picks a free port (``server.server_address``).
    """

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: one connection per signer
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms ACK wait

        def do_POST(self) -> None:
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            try:
                length = int(self.headers.get("Content-Length") or "-1")
            except ValueError:
                length = -1
            if ctype != "application/timestamp-query":
                self._reply(415, b"expected application/timestamp-query\n", "text/plain")
                return
            if not 0 < length <= MAX_REQUEST_BYTES:
                self._reply(413 if length > 0 else 411, b"bad Content-Length\n", "text/plain")
                return
            body = self.rfile.read(length)
            self._reply(200, authority.respond(body, now=clock()), "application/timestamp-reply")

        def do_GET(self) -> None:
            self._reply(405, b"POST an application/timestamp-query\n", "text/plain")

        def _reply(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            if code != 200:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # requests carry only hashes; stay quiet

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
