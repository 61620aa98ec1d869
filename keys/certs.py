"""X.509 building blocks of the national DCC PKI: CSCA -> DSC.

    >>> import datetime as dt
    >>> from keys.certs import new_private_key, make_csca, make_dsc
    >>> now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    >>> ca_key = new_private_key("ec-p256")
    >>> csca = make_csca(ca_key, country="VN", name="Demo CSCA", now=now)
    >>> dsc_key = new_private_key("ec-p256")
    >>> dsc = make_dsc(csca, ca_key, dsc_key.public_key(), name="Demo DSC", now=now)
    >>> dsc.issuer == csca.subject
    True

Pure functions: keys and the clock are passed in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from verifier.errors import ConfigError

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

# hcert 1.x section 5.1.1: extended key usage of a DSC limits the DCC types.
EKU_TEST = ObjectIdentifier("1.3.6.1.4.1.1847.2021.1.1")
EKU_VACCINATION = ObjectIdentifier("1.3.6.1.4.1.1847.2021.1.2")
EKU_RECOVERY = ObjectIdentifier("1.3.6.1.4.1.1847.2021.1.3")
EKU_BY_TYPE = {"t": EKU_TEST, "v": EKU_VACCINATION, "r": EKU_RECOVERY}

#: This project's trust-list-signer EKU. An OID under the UUID arc 2.25
#: (ITU-T X.667), so it needs no registration; documented in docs/trust-list.md.
EKU_TRUST_LIST_SIGNER = ObjectIdentifier("2.25.214375089251405394580617312245409632127")

KEY_TYPES = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072")

#: Where the national CSCA publishes its CRL: the DSC's CRL distribution point
#: (RFC 5280 section 4.2.1.13; the EU DCC / WHO GDHCN DSC template says it
#: SHOULD be there). Validators that look for revocation data by the
#: certificate's own pointer find the CRL a passport embeds under it; offline
#: nothing is fetched. ``make_dsc(crl_url=...)`` sets another (an http URL or
#: a file URI); ``None`` leaves the extension out.
DEFAULT_CRL_URL = "http://pki.dcc.moh.gov.vn/crl/csca.crl"


def new_private_key(key_type: str) -> PrivateKey:
    """Generate a software key: ec-p256 (ES256), ec-p384, rsa-2048 (PS256), rsa-3072."""
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type in ("rsa-2048", "rsa-3072"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    raise ConfigError(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")


def _name(common_name: str, country: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, country)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _hash_for(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384()
    return hashes.SHA256()


def make_csca(
    key: PrivateKey,
    *,
    country: str,
    name: str,
    now: dt.datetime,
    days: int = 365 * 15,
    organization: str | None = "Ministry of Health",
) -> x509.Certificate:
    """Self-signed Country Signing CA certificate (long-lived, path length 0)."""
    subject = _name(name, country, organization)
    pub = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(pub)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
        .sign(key, _hash_for(key))
    )


def _leaf(
    csca: x509.Certificate,
    csca_key: PrivateKey,
    public_key: PublicKey,
    *,
    name: str,
    now: dt.datetime,
    days: int,
    ekus: Sequence[ObjectIdentifier],
    organization: str | None,
    serial: int | None,
    non_repudiation: bool = False,
    crl_url: str | None = None,
    ca_issuers_url: str | None = None,
) -> x509.Certificate:
    country = csca.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value
    not_after = min(now + dt.timedelta(days=days), csca.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name, str(country), organization))
        .issuer_name(csca.subject)
        .public_key(public_key)
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=non_repudiation,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(csca.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    if crl_url:
        builder = builder.add_extension(
            x509.CRLDistributionPoints([
                x509.DistributionPoint(
                    full_name=[x509.UniformResourceIdentifier(crl_url)],
                    relative_name=None, reasons=None, crl_issuer=None,
                )
            ]),
            critical=False,
        )  # fmt: skip
    if ca_issuers_url:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess([
                x509.AccessDescription(
                    x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
                    x509.UniformResourceIdentifier(ca_issuers_url),
                )
            ]),
            critical=False,
        )  # fmt: skip
    return builder.sign(csca_key, _hash_for(csca_key))


def make_dsc(
    csca: x509.Certificate,
    csca_key: PrivateKey,
    public_key: PublicKey,
    *,
    name: str,
    now: dt.datetime,
    days: int = 365 * 2,
    types: Sequence[str] = ("v",),
    organization: str | None = None,
    serial: int | None = None,
    pdf_signing: bool = True,
    crl_url: str | None = DEFAULT_CRL_URL,
    ca_issuers_url: str | None = None,
) -> x509.Certificate:
    """Document Signer Certificate for a health centre.

    ``types`` picks the hcert EKUs (``v`` vaccination, ``t`` test, ``r``
    recovery). With ``pdf_signing`` the same key also signs the PDF
    passport: the DSC then carries the emailProtection EKU (what NSS, hence
    ``pdfsig``, asks of a document signer) and the key usage
    nonRepudiation (contentCommitment) next to digitalSignature, which
    pyHanko's default policy and most PDF validators expect of a document
    signature. The EU DCC DSC template (eHealth Network, Technical
    Specifications Volume 1 section 5; WHO GDHCN "Certificate Governance")
    asks for digitalSignature "at minimum" and lets EKU hold other OIDs
    (non-critical, to be ignored when unknown), so both stay within it.
    ``crl_url`` (default :data:`DEFAULT_CRL_URL`) is the CRL distribution
    point, ``ca_issuers_url`` an optional authority information access
    (caIssuers: where the CSCA certificate can be fetched).
    """
    ekus = [EKU_BY_TYPE[t] for t in types]
    if pdf_signing:
        ekus.append(ExtendedKeyUsageOID.EMAIL_PROTECTION)
    return _leaf(
        csca,
        csca_key,
        public_key,
        name=name,
        now=now,
        days=days,
        ekus=ekus,
        organization=organization,
        serial=serial,
        non_repudiation=pdf_signing,
        crl_url=crl_url,
        ca_issuers_url=ca_issuers_url,
    )


def make_trust_list_signer(
    csca: x509.Certificate,
    csca_key: PrivateKey,
    public_key: PublicKey,
    *,
    now: dt.datetime,
    days: int = 365 * 3,
) -> x509.Certificate:
    """Certificate for the key that signs trust lists (EKU_TRUST_LIST_SIGNER)."""
    return _leaf(
        csca,
        csca_key,
        public_key,
        name="DCC Trust List Signer",
        now=now,
        days=days,
        ekus=[EKU_TRUST_LIST_SIGNER],
        organization=None,
        serial=None,
    )
