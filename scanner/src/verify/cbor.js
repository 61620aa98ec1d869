// Strict CBOR decoder for untrusted input (RFC 8949), the rules of verifier/strict_cbor.py.
//
//   import { loadsStrict } from "./cbor.js";
//   loadsStrict(Uint8Array.of(0xa2, 1, 2, 3, 4), "cwt_malformed");  // CMap {1 => 2, 3 => 4}
//
// 1. exactly one item; bytes after it: trailing_bytes
// 2. no map holds two equal keys, compared as Python compares them (1, 1.0 and true are one
//    key): duplicate_map_key
// 3. integers within [-2**64, 2**64 - 1]; bignums (tags 2, 3) beyond: integer_out_of_range
// 4. at most MAX_DEPTH nested containers (arrays, maps, tags)
// 5. string references (tags 25, 256) refused; shared values (28, 29) decoded, but the tree
//    may hold no more items than the data has bytes
// Anything else malformed raises CodecError(malformed).
//
// Values: integers are numbers when safe, BigInt beyond; floats are CFloat (so that 1.0 is not
// the integer 1: a float COSE label or alg is refused as in Python); maps are CMap (insertion
// order kept, lookup by Python-equal key); byte strings Uint8Array; dates (tags 0, 1, 100,
// 1004) CDate; other tags CTag; simple values other than false/true/null CSimple; undefined
// (simple 23) is UNDEFINED.

import { CodecError } from "./errors.js";

export const MAX_DEPTH = 16;
export const DUPLICATE_KEY = "duplicate_map_key";
export const TRAILING_BYTES = "trailing_bytes";
export const INTEGER_OUT_OF_RANGE = "integer_out_of_range";
const INT_MAX = (1n << 64n) - 1n;

export class CFloat {
  constructor(value) {
    this.value = value;
  }
}

export class CTag {
  constructor(tag, value) {
    this.tag = tag;
    this.value = value;
  }
}

export class CDate {
  /** A CBOR date or date-time (tags 0, 1, 100, 1004), as the JSON text Python's view gives. */
  constructor(text) {
    this.text = text;
  }
}

export class CSimple {
  constructor(value) {
    this.value = value;
  }
}

export const UNDEFINED = Object.freeze({ undefinedValue: true });

let nanCounter = 0;

/** A text standing for a map key, equal for keys Python's dict takes as one. */
export function keyId(key, depth = 0) {
  if (depth > 64) return `deep:${nanCounter++}`;
  if (typeof key === "number") return Number.isInteger(key) ? `i:${key}` : `f:${key}`;
  if (typeof key === "bigint") return `i:${key}`;
  if (typeof key === "boolean") return key ? "i:1" : "i:0";
  if (typeof key === "string") return `s:${key}`;
  if (key === null) return "null";
  if (key === UNDEFINED) return "undef";
  if (key instanceof Uint8Array) return `b:${hex(key)}`;
  if (key instanceof CFloat) {
    const v = key.value;
    if (Number.isNaN(v)) return `nan:${nanCounter++}`; // NaN equals nothing
    if (Number.isFinite(v) && Number.isInteger(v)) return `i:${BigInt(v)}`;
    return `f:${v}`;
  }
  if (Array.isArray(key)) return `a:[${key.map((k) => keyId(k, depth + 1)).join(",")}]`;
  if (key instanceof CMap) {
    const parts = key.entries.map(([k, v]) => `${keyId(k, depth + 1)}=${keyId(v, depth + 1)}`);
    return `m:{${parts.sort().join(",")}}`;
  }
  if (key instanceof CTag) return `t:${key.tag}:${keyId(key.value, depth + 1)}`;
  if (key instanceof CDate) return `d:${key.text}`;
  if (key instanceof CSimple) return `simple:${key.value}`;
  return `?:${nanCounter++}`;
}

export class CMap {
  constructor() {
    this.entries = [];
    this.index = new Map();
  }
  /** Adds an entry; false if an equal key is already there. */
  add(key, value, id = keyId(key)) {
    if (this.index.has(id)) return false;
    this.index.set(id, value);
    this.entries.push([key, value]);
    return true;
  }
  has(key) {
    return this.index.has(keyId(key));
  }
  /** The value under a key equal to `key`, or undefined. */
  get(key) {
    return this.index.get(keyId(key));
  }
  keys() {
    return this.entries.map((e) => e[0]);
  }
  get size() {
    return this.entries.length;
  }
}

export function hex(bytes) {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function halfToFloat(h) {
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  let v;
  if (exp === 0) v = mant * 2 ** -24;
  else if (exp !== 31) v = (mant + 1024) * 2 ** (exp - 25);
  else v = mant === 0 ? Infinity : NaN;
  return h & 0x8000 ? -v : v;
}

class Decoder {
  constructor(data, malformed) {
    this.data = data;
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.malformed = malformed;
    this.pos = 0;
    this.shared = [];
  }

  fail(message, reason) {
    return new CodecError(reason || this.malformed, message);
  }

  /** [major, argument (BigInt for 8-byte arguments beyond safe, null if indefinite), info] */
  head() {
    const data = this.data;
    if (this.pos >= data.length) throw this.fail("truncated CBOR");
    const initial = data[this.pos++];
    const major = initial >> 5;
    const info = initial & 31;
    if (info < 24) return [major, info, info];
    if (info < 28) {
      const size = 1 << (info - 24);
      if (this.pos + size > data.length) throw this.fail("truncated CBOR");
      let arg;
      if (size === 1) arg = data[this.pos];
      else if (size === 2) arg = this.view.getUint16(this.pos);
      else if (size === 4) arg = this.view.getUint32(this.pos);
      else {
        const big = this.view.getBigUint64(this.pos);
        arg = big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
      }
      this.pos += size;
      return [major, arg, info];
    }
    if (info === 31 && (major === 2 || major === 3 || major === 4 || major === 5 || major === 7)) {
      return [major, null, info];
    }
    throw this.fail("reserved or invalid CBOR additional information");
  }

  bytes(n) {
    if (typeof n === "bigint" || this.pos + n > this.data.length) throw this.fail("truncated CBOR");
    const out = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  string(major, arg) {
    if (arg !== null) return this.bytes(arg);
    const chunks = [];
    for (;;) {
      if (this.pos < this.data.length && this.data[this.pos] === 0xff) {
        this.pos++;
        break;
      }
      const [m, a] = this.head();
      if (m !== major || a === null) throw this.fail("bad chunk in an indefinite-length string");
      chunks.push(this.bytes(a));
    }
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  item(depth) {
    const [major, arg, info] = this.head();
    switch (major) {
      case 0:
        return arg;
      case 1:
        return typeof arg === "bigint" || arg > Number.MAX_SAFE_INTEGER - 1
          ? normInt(-1n - BigInt(arg))
          : -1 - arg;
      case 2:
        return Uint8Array.from(this.string(2, arg));
      case 3: {
        const raw = this.string(3, arg);
        try {
          return utf8.decode(raw);
        } catch {
          throw this.fail("CBOR text is not UTF-8");
        }
      }
      case 7:
        return this.simple(arg, info);
      default:
        break;
    }
    if (depth >= MAX_DEPTH) throw this.fail("CBOR nested too deeply");
    if (major === 6) return this.tag(arg, depth + 1);
    if (major === 4) {
      const out = [];
      for (let n = 0; arg === null || n < arg; n++) {
        if (arg === null && this.pos < this.data.length && this.data[this.pos] === 0xff) {
          this.pos++;
          return out;
        }
        out.push(this.item(depth + 1));
      }
      return out;
    }
    const map = new CMap();
    for (let n = 0; arg === null || n < arg; n++) {
      if (arg === null && this.pos < this.data.length && this.data[this.pos] === 0xff) {
        this.pos++;
        return map;
      }
      const key = this.item(depth + 1);
      const value = this.item(depth + 1); // the value first, then the key's check (as cbor2 6)
      if (!map.add(key, value)) throw this.fail("a CBOR map holds the same key twice", DUPLICATE_KEY);
    }
    return map;
  }

  simple(arg, info) {
    if (arg === null) throw this.fail("unexpected break in CBOR");
    // RFC 8949 section 3.3: a one-byte simple value below 32 is not well-formed (cbor2 refuses it)
    if (info === 24 && arg < 32) throw this.fail("invalid two-byte simple value");
    if (info === 25) return new CFloat(halfToFloat(arg));
    if (info === 26) {
      const v = new DataView(new ArrayBuffer(4));
      v.setUint32(0, arg);
      return new CFloat(v.getFloat32(0));
    }
    if (info === 27) {
      const v = new DataView(new ArrayBuffer(8));
      v.setBigUint64(0, BigInt(arg));
      return new CFloat(v.getFloat64(0));
    }
    if (arg === 20) return false;
    if (arg === 21) return true;
    if (arg === 22) return null;
    if (arg === 23) return UNDEFINED;
    return new CSimple(arg);
  }

  tag(number, depth) {
    if (number === 25 || number === 256) {
      throw this.fail("string references (tags 25, 256) are not accepted");
    }
    if (number === 2 || number === 3) {
      const start = this.pos;
      const [major, arg] = this.head();
      if (major !== 2) {
        this.pos = start;
        this.item(depth); // its own errors first
        throw this.fail("bignum content is not a byte string");
      }
      const raw = this.string(2, arg);
      let n = 0n;
      for (const b of raw) {
        n = (n << 8n) | BigInt(b);
        if (n > INT_MAX) {
          throw this.fail("bignum outside the 64-bit integer range", INTEGER_OUT_OF_RANGE);
        }
      }
      return normInt(number === 2 ? n : -1n - n);
    }
    if (number === 28) {
      const slot = this.shared.length;
      this.shared.push(undefined);
      const value = this.item(depth);
      this.shared[slot] = value;
      return value;
    }
    if (number === 29) {
      const index = this.item(depth);
      if (typeof index !== "number" || index >= this.shared.length) {
        throw this.fail("shared reference to an unknown value");
      }
      const value = this.shared[index];
      if (value === undefined) throw this.fail("shared reference to a value still being decoded");
      return value;
    }
    const value = this.item(depth);
    if (number === 55799) return value; // self-described CBOR: the value itself
    if (number === 0) {
      if (typeof value !== "string") throw this.fail("date-time tag content is not text");
      return new CDate(dateTimeText(value, this));
    }
    if (number === 1) {
      let seconds;
      if (typeof value === "number") seconds = value;
      else if (value instanceof CFloat) seconds = value.value;
      else throw this.fail("epoch tag content is not a number");
      if (!(seconds >= MIN_EPOCH && seconds <= MAX_EPOCH)) throw this.fail("epoch date out of range");
      return new CDate(isoUtc(new Date(seconds * 1000)));
    }
    if (number === 100) {
      if (typeof value !== "number" || !(value >= MIN_DAY && value <= MAX_DAY)) {
        throw this.fail("date tag content is not a day number in range");
      }
      return new CDate(new Date(value * 86400000).toISOString().slice(0, 10));
    }
    if (number === 1004) {
      if (typeof value !== "string" || !validDate(value)) throw this.fail("date tag content is not a date");
      return new CDate(value);
    }
    checkSemanticTag(number, value, this);
    return new CTag(number, value);
  }
}

// Python's datetime range (years 1-9999), which cbor2's date tags must fit.
const MIN_EPOCH = -62135596800;
const MAX_EPOCH = 253402300799;
const MIN_DAY = -719162;
const MAX_DAY = 2932896;
const isInteger = (v) => (typeof v === "number" && Number.isInteger(v)) || typeof v === "bigint";

function validDate(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (y < 1 || mo < 1 || mo > 12 || d < 1) return false;
  const days = new Date(Date.UTC(2000, mo, 0)).getUTCDate(); // days of that month in a leap year
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  return d <= (mo === 2 && !leap ? 28 : days);
}

/** The content checks cbor2 makes when it decodes these tags (anything else it refuses is
 * malformed CBOR to the Python verifier); the values stay CTag (none is JSON). */
function checkSemanticTag(number, value, decoder) {
  const bad = (what) => {
    throw decoder.fail(`tag ${number}: ${what}`);
  };
  switch (number) {
    case 4: // decimal fraction, 5: bigfloat: [exponent, mantissa]
    case 5:
      if (!Array.isArray(value) || value.length !== 2 || !value.every(isInteger)) bad("not [exponent, mantissa]");
      break;
    case 30: // rational
      if (!Array.isArray(value) || value.length !== 2 || !value.every(isInteger) || Number(value[1]) === 0) {
        bad("not [numerator, non-zero denominator]");
      }
      break;
    case 35: // regular expression
      if (typeof value !== "string") bad("not text");
      try {
        new RegExp(value);
      } catch {
        bad("not a regular expression");
      }
      break;
    case 36: // MIME message
      if (typeof value !== "string") bad("not text");
      break;
    case 37: // UUID
      if (!(value instanceof Uint8Array) || value.length !== 16) bad("not 16 bytes");
      break;
    case 258: // set
      if (!Array.isArray(value)) bad("not an array");
      break;
    case 260: // IP address (4 or 16 bytes) or MAC address (6 bytes)
      if (!(value instanceof Uint8Array) || ![4, 6, 16].includes(value.length)) bad("not an address");
      break;
    case 261: {
      // IP network {address: prefix length}
      const ok =
        value instanceof CMap &&
        value.size === 1 &&
        value.entries[0][0] instanceof Uint8Array &&
        [4, 16].includes(value.entries[0][0].length) &&
        isInteger(value.entries[0][1]) &&
        value.entries[0][1] >= 0 &&
        value.entries[0][1] <= value.entries[0][0].length * 8;
      if (!ok) bad("not {address: prefix length}");
      break;
    }
    default:
      break;
  }
}

function normInt(n) {
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

function isoUtc(d) {
  let text = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const ms = d.getUTCMilliseconds();
  text = ms ? text.replace(/\.(\d{3})Z$/, ".$1000Z") : text.replace(/\.\d{3}Z$/, "Z");
  return text;
}

/** Date-time text (as cbor2 reads tag 0: ISO 8601, a zone required) -> the text Python's
 * datetime.isoformat() gives, with Z for UTC (the verifier's JSON view). */
function dateTimeText(text, decoder) {
  const m =
    /^(\d{4})-?(\d{2})-?(\d{2})[T ](\d{2}):?(\d{2})(?::?(\d{2})(?:[.,](\d*))?)?(Z|[+-]\d{2}:?\d{2})$/.exec(text);
  const date = m && `${m[1]}-${m[2]}-${m[3]}`;
  if (!m || !validDate(date)) throw decoder.fail("invalid date-time text");
  const [hh, mm, ss] = [Number(m[4]), Number(m[5]), Number(m[6] || 0)];
  if (hh > 23 || mm > 59 || ss > 59) throw decoder.fail("invalid date-time text");
  const digits = (m[7] || "").slice(0, 6).padEnd(6, "0");
  const frac = /^0+$/.test(digits) ? "" : `.${digits}`;
  let zone = "Z";
  if (m[8] !== "Z") {
    const oh = Number(m[8].slice(1, 3));
    const om = Number(m[8].slice(-2));
    if (oh > 23 || om > 59) throw decoder.fail("invalid date-time offset");
    zone = oh === 0 && om === 0 ? "Z" : `${m[8][0]}${m[8].slice(1, 3)}:${m[8].slice(-2)}`;
  }
  const two = (n) => String(n).padStart(2, "0");
  return `${date}T${two(hh)}:${two(mm)}:${two(ss)}${frac}${zone}`;
}

/** The decoded tree holds at most maxItems items and no more than MAX_DEPTH levels. */
export function itemsWithin(obj, maxItems) {
  let level = [obj];
  let budget = maxItems;
  let depth = 0;
  while (level.length) {
    const children = [];
    for (const item of level) {
      if (item instanceof CMap) {
        for (const [k] of item.entries) children.push(k);
        for (const [, v] of item.entries) children.push(v);
      } else if (Array.isArray(item)) {
        for (const c of item) children.push(c);
      } else if (item instanceof CTag) {
        children.push(item.value);
      }
      if (children.length > budget) return false;
    }
    budget -= children.length;
    if (children.length && depth + 1 > MAX_DEPTH) return false;
    level = children.filter((c) => c instanceof CMap || Array.isArray(c) || c instanceof CTag);
    depth += 1;
  }
  return true;
}

function mayShare(data) {
  for (let i = 0; i + 1 < data.length; i++) {
    if (data[i + 1] === 0x1c && (data[i] === 0xd8 || data[i] === 0x00)) return true;
  }
  return false;
}

/** Decode one untrusted CBOR item under rules 1-5; CodecError otherwise. */
export function loadsStrict(data, malformed) {
  const decoder = new Decoder(data, malformed);
  let obj;
  try {
    obj = decoder.item(0);
  } catch (err) {
    if (err instanceof CodecError) throw err;
    if (err instanceof RangeError) throw new CodecError(malformed, "CBOR nested too deeply");
    throw err;
  }
  if (decoder.pos !== data.length) {
    throw new CodecError(TRAILING_BYTES, "bytes left over after the CBOR item");
  }
  if (mayShare(data) && !itemsWithin(obj, data.length)) {
    throw new CodecError(malformed, "CBOR shared values repeated beyond the data's size");
  }
  return obj;
}
