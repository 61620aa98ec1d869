// base45 (RFC 9285) and the HC1 text stages, as verifier/codec.py.
//
//   b45decode("QED8WEX0")  // Uint8Array of "ietf!"

import { CodecError } from "./errors.js";

export const HC1_PREFIX = "HC1:";
export const MAX_QR_TEXT = 8 * 1024;
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
const VALUES = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) VALUES[ALPHABET.charCodeAt(i)] = i;

function invalid(message = "not valid base45 (RFC 9285)") {
  return new CodecError("base45_invalid", message);
}

export function b45encode(bytes) {
  let out = "";
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    let n = bytes[i] * 256 + bytes[i + 1];
    for (let k = 0; k < 3; k++) {
      out += ALPHABET[n % 45];
      n = Math.floor(n / 45);
    }
  }
  if (bytes.length % 2) {
    const n = bytes[bytes.length - 1];
    out += ALPHABET[n % 45] + ALPHABET[Math.floor(n / 45)];
  }
  return out;
}

export function b45decode(text) {
  const n = text.length;
  const values = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? VALUES[c] : -1;
    if (v < 0) throw invalid();
    values[i] = v;
  }
  const full = n - (n % 3);
  if (n % 3 === 1) throw invalid("base45 text has a dangling character");
  const out = new Uint8Array((full / 3) * 2 + (n % 3 === 2 ? 1 : 0));
  let o = 0;
  for (let i = 0; i < full; i += 3) {
    const v = values[i] + 45 * values[i + 1] + 2025 * values[i + 2];
    if (v > 0xffff) throw invalid();
    out[o++] = v >> 8;
    out[o++] = v & 0xff;
  }
  if (n % 3 === 2) {
    const v = values[full] + 45 * values[full + 1];
    if (v > 0xff) throw invalid();
    out[o] = v;
  }
  return out;
}

function codePoints(text) {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) i++;
    }
    n++;
  }
  return n;
}

/** Removes the HC1: context identifier; CodecError too_long / prefix_missing. */
export function stripPrefix(text) {
  if (text.length > MAX_QR_TEXT && codePoints(text) > MAX_QR_TEXT) {
    throw new CodecError("too_long", `QR text longer than ${MAX_QR_TEXT} characters`);
  }
  if (!text.startsWith(HC1_PREFIX)) {
    throw new CodecError("prefix_missing", "text does not start with the HC1: prefix");
  }
  return text.slice(HC1_PREFIX.length);
}

/** The QR text a file holds (verifier.hc1.qr_text_from_file): UTF-8, a byte-order mark
 * dropped, one final LF or CR LF dropped, nothing else; bad bytes become U+FFFD. */
export function qrTextFromFile(bytes) {
  let end = bytes.length;
  if (end >= 2 && bytes[end - 2] === 0x0d && bytes[end - 1] === 0x0a) end -= 2;
  else if (end >= 1 && bytes[end - 1] === 0x0a) end -= 1;
  return new TextDecoder("utf-8").decode(bytes.subarray(0, end));
}
