// A minimal DER reader for what the verifier needs from X.509 certificates and CRLs
// (RFC 5280): kid, public key (SPKI), validity, EKU, basicConstraints, keyUsage, serial,
// issuer and subject names, country, and the signed part with its signature for chain checks.
// Lenient as asn1crypto is (the Python verifier's fallback): some official EU test DSCs are
// not strict DER.

export class DerError extends Error {}

export function readTlv(data, pos, end = data.length) {
  if (pos + 2 > end) throw new DerError("truncated DER");
  const first = data[pos];
  let tag = first & 0x1f;
  let p = pos + 1;
  if (tag === 0x1f) {
    tag = 0;
    for (;;) {
      if (p >= end) throw new DerError("truncated DER tag");
      const b = data[p++];
      tag = tag * 128 + (b & 0x7f);
      if (!(b & 0x80)) break;
    }
  }
  if (p >= end) throw new DerError("truncated DER");
  let len = data[p++];
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError("unsupported DER length");
    if (p + n > end) throw new DerError("truncated DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + data[p++];
  }
  if (p + len > end) throw new DerError("DER value runs past its container");
  return {
    cls: first >> 6,
    constructed: (first & 0x20) !== 0,
    tag,
    start: pos,
    contentStart: p,
    end: p + len,
    content: data.subarray(p, p + len),
    raw: data.subarray(pos, p + len),
  };
}

export function children(data, node) {
  const out = [];
  let p = node.contentStart;
  while (p < node.end) {
    const c = readTlv(data, p, node.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

function expect(node, cls, tag, what) {
  if (node.cls !== cls || node.tag !== tag) throw new DerError(`${what}: unexpected DER tag`);
  return node;
}

export function oidText(bytes) {
  const parts = [];
  let value = 0n;
  for (let i = 0; i < bytes.length; i++) {
    value = (value << 7n) | BigInt(bytes[i] & 0x7f);
    if (!(bytes[i] & 0x80)) {
      if (parts.length === 0) {
        const first = value < 80n ? value / 40n : 2n;
        parts.push(first, value - first * 40n);
      } else parts.push(value);
      value = 0n;
    }
  }
  return parts.join(".");
}

function intValue(bytes) {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  if (bytes.length && bytes[0] & 0x80) n -= 1n << BigInt(8 * bytes.length);
  return n;
}

function asciiText(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

/** UTCTime or GeneralizedTime -> milliseconds since the epoch. */
export function timeValue(node) {
  const text = asciiText(node.content);
  let m;
  if (node.tag === 23) {
    m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?Z$/.exec(text);
    if (!m) throw new DerError("bad UTCTime");
    const yy = Number(m[1]);
    return Date.UTC(yy < 50 ? 2000 + yy : 1900 + yy, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] || 0));
  }
  if (node.tag === 24) {
    m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(\.\d+)?Z$/.exec(text);
    if (!m) throw new DerError("bad GeneralizedTime");
    const d = new Date(0);
    d.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
    d.setUTCHours(Number(m[4]), Number(m[5]), Number(m[6] || 0), m[7] ? Math.floor(Number(m[7]) * 1000) : 0);
    return d.getTime();
  }
  throw new DerError("not a time");
}

const OID = {
  ecPublicKey: "1.2.840.10045.2.1",
  rsaEncryption: "1.2.840.113549.1.1.1",
  rsaPss: "1.2.840.113549.1.1.10",
  p256: "1.2.840.10045.3.1.7",
  p384: "1.3.132.0.34",
  p521: "1.3.132.0.35",
  ed25519: "1.3.101.112",
  eku: "2.5.29.37",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  country: "2.5.4.6",
};
export const CURVES = { [OID.p256]: "P-256", [OID.p384]: "P-384", [OID.p521]: "P-521" };

/** The public key of a SubjectPublicKeyInfo: {kind: "ec"|"rsa"|"ed25519"|"other", ...}. */
export function parseSpki(data, node) {
  const [algNode, bits] = children(data, node);
  const algParts = children(data, algNode);
  const algOid = oidText(algParts[0].content);
  const spki = node.raw;
  if (algOid === OID.ecPublicKey) {
    const curveOid = algParts[1] && algParts[1].tag === 6 ? oidText(algParts[1].content) : null;
    return { kind: "ec", curve: CURVES[curveOid] || curveOid || "unknown", spki };
  }
  if (algOid === OID.rsaEncryption || algOid === OID.rsaPss) {
    const keyBytes = bits.content.subarray(1);
    const seq = readTlv(keyBytes, 0);
    const [nNode, eNode] = children(keyBytes, seq);
    const n = intValue(nNode.content);
    const e = intValue(eNode.content);
    return { kind: "rsa", pss: algOid === OID.rsaPss, n, e, bits: n.toString(2).length, spki };
  }
  if (algOid === OID.ed25519) return { kind: "ed25519", spki };
  return { kind: "other", oid: algOid, spki };
}

/** An X.509 certificate's fields; throws DerError when it cannot be read. */
export function parseCertificate(der) {
  const cert = expect(readTlv(der, 0), 0, 16, "certificate");
  if (cert.end !== der.length) throw new DerError("bytes after the certificate");
  const [tbs, sigAlg, sigValue] = children(der, cert);
  expect(tbs, 0, 16, "tbsCertificate");
  const parts = children(der, tbs);
  let i = 0;
  if (parts[i].cls === 2 && parts[i].tag === 0) i++; // version
  const serial = intValue(expect(parts[i++], 0, 2, "serial").content);
  i++; // signature algorithm
  const issuer = expect(parts[i++], 0, 16, "issuer");
  const validity = children(der, expect(parts[i++], 0, 16, "validity"));
  const subject = expect(parts[i++], 0, 16, "subject");
  const spkiNode = expect(parts[i++], 0, 16, "subjectPublicKeyInfo");
  let ekus = null;
  let isCa = false;
  let digitalSignature = null;
  for (; i < parts.length; i++) {
    if (parts[i].cls !== 2 || parts[i].tag !== 3) continue;
    const extsSeq = readTlv(der, parts[i].contentStart, parts[i].end);
    for (const ext of children(der, extsSeq)) {
      const fields = children(der, ext);
      const oid = oidText(fields[0].content);
      const valueNode = fields[fields.length - 1];
      const value = valueNode.content;
      if (oid === OID.eku) {
        const seq = readTlv(value, 0);
        ekus = new Set(children(value, seq).map((c) => oidText(c.content)));
      } else if (oid === OID.basicConstraints) {
        const seq = readTlv(value, 0);
        const items = children(value, seq);
        isCa = items.length > 0 && items[0].tag === 1 && items[0].content[0] !== 0;
      } else if (oid === OID.keyUsage) {
        const bits = readTlv(value, 0).content;
        digitalSignature = bits.length > 1 && (bits[1] & 0x80) !== 0;
      }
    }
  }
  let country = null;
  for (const rdn of children(der, subject)) {
    for (const attr of children(der, rdn)) {
      const [type, val] = children(der, attr);
      if (oidText(type.content) === OID.country) country = new TextDecoder().decode(val.content);
    }
  }
  let key;
  let keyError = null;
  try {
    key = parseSpki(der, spkiNode);
  } catch (err) {
    key = null;
    keyError = err;
  }
  return {
    der,
    serial,
    issuer: issuer.raw,
    subject: subject.raw,
    notBefore: timeValue(validity[0]),
    notAfter: timeValue(validity[1]),
    key,
    keyError,
    ekus,
    isCa,
    digitalSignature,
    country,
    tbs: tbs.raw,
    sigAlg: parseAlgorithm(der, sigAlg),
    signature: sigValue.content.subarray(1),
  };
}

function parseAlgorithm(data, node) {
  const parts = children(data, node);
  return { oid: oidText(parts[0].content), params: parts[1] || null, data };
}

/** A DER CRL: {issuer, tbs, sigAlg, signature, revoked: [{serial, at}]}. */
export function parseCrl(der) {
  const crl = expect(readTlv(der, 0), 0, 16, "CRL");
  const [tbs, sigAlg, sigValue] = children(der, crl);
  const parts = children(der, tbs);
  let i = 0;
  if (parts[i].cls === 0 && parts[i].tag === 2) i++; // version
  i++; // signature algorithm
  const issuer = expect(parts[i++], 0, 16, "issuer");
  i++; // thisUpdate
  if (i < parts.length && (parts[i].tag === 23 || parts[i].tag === 24) && parts[i].cls === 0) i++;
  const revoked = [];
  if (i < parts.length && parts[i].cls === 0 && parts[i].tag === 16) {
    for (const entry of children(der, parts[i])) {
      const [serial, when] = children(der, entry);
      revoked.push({ serial: intValue(serial.content), at: timeValue(when) });
    }
  }
  return {
    issuer: issuer.raw,
    tbs: tbs.raw,
    sigAlg: parseAlgorithm(der, sigAlg),
    signature: sigValue.content.subarray(1),
    revoked,
  };
}
