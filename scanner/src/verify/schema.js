// EU DCC JSON schema 1.3.x validation (verifier/schema.py): the official combined schema,
// precompiled by ajv (dcc-schema.js, made by scanner/tools/build-schema.mjs), formats not
// asserted, patterns applied. Decoded CBOR is first turned into the JSON the schema sees:
// CBOR dates back to text (hcert 1.x 2.6.4; Sweden writes `sc` as tag 0); bytes, other tags,
// undefined and maps with non-text keys fail wherever the schema looks at them.

import { CDate, CFloat, CMap, CSimple, CTag, UNDEFINED } from "./cbor.js";
import validate from "./dcc-schema.js";

export const NOT_JSON = "payload holds values JSON cannot represent (bytes, tags or non-text keys)";
const MAX_PROBLEMS = 5;

/** What a value JSON cannot hold becomes for the schema: a value of no JSON type, so any
 * keyword that looks at it fails (type, enum, const), and an unconstrained position (an extra
 * property) passes. That is what jsonschema-rs does in the Python verifier: it converts a
 * value only where a keyword reaches it (a byte string as an extra property is accepted, as
 * the date of birth it is not). A map with a non-text key is such a value as a whole. */
const NOT_JSON_VALUE = Symbol("not JSON");

function setKey(obj, key, value) {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** The DCC as the schema sees it (numbers as numbers; NaN and infinities as null, as
 * jsonschema-rs converts them). */
function schemaView(value, depth = 0) {
  if (depth > 64) return NOT_JSON_VALUE;
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  if (value instanceof CFloat) return Number.isFinite(value.value) ? value.value : null;
  if (value instanceof CDate) return value.text;
  if (Array.isArray(value)) return value.map((v) => schemaView(v, depth + 1));
  if (value instanceof CMap) {
    const out = {};
    for (const [k, v] of value.entries) {
      if (typeof k !== "string") return NOT_JSON_VALUE;
      setKey(out, k, schemaView(v, depth + 1));
    }
    return out;
  }
  return NOT_JSON_VALUE; // bytes, tags, simple values, undefined
}

function holdsNotJson(v, depth = 0) {
  if (v === NOT_JSON_VALUE) return true;
  if (depth > 64 || v === null || typeof v !== "object") return false;
  return Object.values(v).some((x) => holdsNotJson(x, depth + 1));
}

/** Schema problems of a decoded DCC (empty: valid). Never throws. */
export function schemaProblems(dcc) {
  try {
    const view = schemaView(dcc);
    if (validate(view)) return [];
    if (holdsNotJson(view)) return [NOT_JSON];
    return (validate.errors || [])
      .slice(0, MAX_PROBLEMS)
      .map((e) => `${e.instancePath || "/"} ${e.message}`);
  } catch (err) {
    return [`payload could not be validated (${err.name})`];
  }
}

function base64(bytes) {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 8192) bin += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return btoa(bin);
}

function pyFloatText(v) {
  if (Number.isNaN(v)) return "nan";
  return v > 0 ? "inf" : "-inf";
}

/** Best-effort JSON view of decoded CBOR for the verdict's payload (verifier.result.jsonable):
 * bytes as base64, non-text keys as text; BigInt kept exact (written by toJson). */
export function jsonable(value, depth = 0) {
  if (depth > 64) return null;
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number" || typeof value === "bigint") return value;
  if (value instanceof CFloat) return Number.isFinite(value.value) ? value.value : pyFloatText(value.value);
  if (value instanceof CDate) return value.text;
  if (value instanceof Uint8Array) return base64(value);
  if (Array.isArray(value)) return value.map((v) => jsonable(v, depth + 1));
  if (value instanceof CMap) {
    const out = {};
    for (const [k, v] of value.entries) setKey(out, keyText(k, depth), jsonable(v, depth + 1));
    return out;
  }
  if (value === UNDEFINED) return "undefined";
  if (value instanceof CSimple) return String(value.value);
  if (value instanceof CTag) return `CBORTag(${value.tag}, ${pyRepr(value.value, 0, true)})`;
  return "?";
}

function pyQuote(text, prefix) {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = "";
  for (const ch of text) {
    const c = ch.codePointAt(0);
    if (ch === "\\" || ch === quote) out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f || (prefix === "b" && c > 0x7f)) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else if (c >= 0x80 && c < 0xa0) out += `\\x${c.toString(16)}`;
    else out += ch;
  }
  return `${prefix}${quote}${out}${quote}`;
}

function pyFloatRepr(v) {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? "nan" : v > 0 ? "inf" : "-inf";
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e16 || a < 1e-4)) {
    return v.toExponential().replace(/e([+-])(\d)$/, "e$10$2");
  }
  if (Object.is(v, -0)) return "-0.0";
  const text = String(v);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

/** Python's repr of a decoded value, as str(CBORTag(...)) shows its content; cbor2 6 decodes
 * what is inside a tag as tuples and frozendicts. */
function pyRepr(value, depth = 0, inTag = false) {
  if (depth > 32) return "...";
  if (value === null) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (typeof value === "string") return pyQuote(value, "");
  if (value instanceof Uint8Array) return pyQuote(String.fromCharCode(...value), "b");
  if (value instanceof CFloat) return pyFloatRepr(value.value);
  if (Array.isArray(value)) {
    const items = value.map((v) => pyRepr(v, depth + 1, inTag));
    if (!inTag) return `[${items.join(", ")}]`;
    return items.length === 1 ? `(${items[0]},)` : `(${items.join(", ")})`;
  }
  if (value instanceof CMap) {
    const body = `{${value.entries.map(([k, v]) => `${pyRepr(k, depth + 1, inTag)}: ${pyRepr(v, depth + 1, inTag)}`).join(", ")}}`;
    return inTag ? `frozendict(${body})` : body;
  }
  if (value instanceof CTag) return `CBORTag(${value.tag}, ${pyRepr(value.value, depth + 1, true)})`;
  if (value instanceof CSimple) return `CBORSimpleValue(${value.value})`;
  if (value === UNDEFINED) return "undefined";
  return "?";
}

function keyText(key, depth) {
  if (typeof key === "string") return key;
  const v = jsonable(key, depth + 1);
  if (typeof v === "string") return v;
  return pyJsonDumps(key, depth + 1);
}

/** json.dumps(jsonable(value)) as Python writes it (", " and ": ", floats with their ".0"):
 * the text of a map key that is not text. */
function pyJsonDumps(value, depth = 0) {
  if (depth > 64) return "null";
  if (value instanceof CFloat) {
    return Number.isFinite(value.value) ? pyFloatRepr(value.value) : JSON.stringify(pyFloatText(value.value));
  }
  if (Array.isArray(value)) return `[${value.map((v) => pyJsonDumps(v, depth + 1)).join(", ")}]`;
  if (value instanceof CMap) {
    return `{${value.entries.map(([k, v]) => `${JSON.stringify(keyText(k, depth))}: ${pyJsonDumps(v, depth + 1)}`).join(", ")}}`;
  }
  return toJson(jsonable(value, depth + 1));
}

/** JSON text with BigInt written as exact digits. */
export function toJson(value, indent) {
  const marks = new Map();
  let n = 0;
  const text = JSON.stringify(
    value,
    (_, v) => {
      if (typeof v === "bigint") {
        const mark = `\u0000big${n++}\u0000`;
        marks.set(mark, v.toString());
        return mark;
      }
      return v;
    },
    indent,
  );
  return marks.size ? text.replace(/"\\u0000big\d+\\u0000"/g, (m) => marks.get(JSON.parse(m))) : text;
}

/** Is the DCC (raw or converted) holding a group key? */
export function hasKey(dcc, key) {
  return dcc instanceof CMap ? dcc.has(key) : Object.prototype.hasOwnProperty.call(dcc, key);
}
