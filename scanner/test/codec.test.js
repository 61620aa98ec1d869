// Unit tests of the JavaScript codec (node --test scanner/test/; run from pytest by
// tests/scanner/test_js_unit.py): base45, zlib, the strict CBOR decoder, COSE_Sign1 layouts.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { deflateSync } from "node:zlib";
import test from "node:test";
import { fileURLToPath } from "node:url";
import { b45decode, b45encode, qrTextFromFile, stripPrefix } from "../src/verify/base45.js";
import { CDate, CFloat, CMap, CTag, loadsStrict, MAX_DEPTH } from "../src/verify/cbor.js";
import { decodeSign1, sigStructure } from "../src/verify/cose.js";
import { CodecError } from "../src/verify/errors.js";
import { decompress } from "../src/verify/zlib.js";

const bytes = (h) => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ""), "hex"));
const text = (b) => new TextDecoder().decode(b);
const reason = (fn) => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CodecError, `not a CodecError: ${err}`);
    return err.reason;
  }
  return null;
};
const cbor = (h) => loadsStrict(bytes(h), "malformed");
const cborReason = (h) => reason(() => cbor(h));

test("base45: RFC 9285 examples", () => {
  assert.equal(b45encode(new TextEncoder().encode("AB")), "BB8");
  assert.equal(b45encode(new TextEncoder().encode("Hello!!")), "%69 VD92EX0");
  assert.equal(b45encode(new TextEncoder().encode("base-45")), "UJCLQE7W581");
  assert.equal(text(b45decode("QED8WEX0")), "ietf!");
  assert.equal(b45decode("").length, 0);
});

test("base45: invalid texts", () => {
  for (const bad of ["GGW", "ZZZ", "A", "ABCD", "qed8wex0", "QED8WEX0\n", "Ä00"]) {
    assert.equal(reason(() => b45decode(bad)), "base45_invalid", bad);
  }
  assert.deepEqual([...b45decode("FGW")], [255, 255]);
});

test("prefix and QR files", () => {
  assert.equal(reason(() => stripPrefix("hc1:ABC")), "prefix_missing");
  assert.equal(reason(() => stripPrefix(" HC1:ABC")), "prefix_missing");
  assert.equal(reason(() => stripPrefix(`HC1:${"0".repeat(9000)}`)), "too_long");
  assert.equal(stripPrefix(`HC1:${"0".repeat(8188)}`).length, 8188);
  const enc = (s) => new TextEncoder().encode(s);
  assert.equal(qrTextFromFile(enc("HC1:X\n")), "HC1:X");
  assert.equal(qrTextFromFile(enc("HC1:X\r\n")), "HC1:X");
  assert.equal(qrTextFromFile(enc("HC1:X\n\n")), "HC1:X\n");
  assert.equal(qrTextFromFile(enc("HC1:X\r")), "HC1:X\r");
  assert.equal(qrTextFromFile(Uint8Array.of(0xef, 0xbb, 0xbf, ...enc("HC1:X"))), "HC1:X");
});

test("zlib: inflate, truncated, bomb", async () => {
  const data = deflateSync(Buffer.from("hello ".repeat(100)));
  assert.equal(text(await decompress(data)), "hello ".repeat(100));
  await assert.rejects(decompress(data.subarray(0, data.length - 3)), (e) => e.reason === "zlib_invalid");
  await assert.rejects(decompress(Uint8Array.of(1, 2, 3)), (e) => e.reason === "zlib_invalid");
  await assert.rejects(decompress(new Uint8Array()), (e) => e.reason === "zlib_invalid");
  const bomb = deflateSync(Buffer.alloc(200000));
  await assert.rejects(decompress(bomb), (e) => e.reason === "zlib_too_large");
  assert.equal((await decompress(deflateSync(Buffer.alloc(128 * 1024)))).length, 128 * 1024);
});

test("cbor: values", () => {
  const m = cbor("a3 01 02 63 616263 f5 20 f93c00");
  assert.ok(m instanceof CMap);
  assert.equal(m.get(1), 2);
  assert.equal(m.get("abc"), true);
  assert.ok(m.get(-1) instanceof CFloat && m.get(-1).value === 1);
  assert.equal(cbor("1bffffffffffffffff"), (1n << 64n) - 1n);
  assert.equal(cbor("3bffffffffffffffff"), -(1n << 64n));
  assert.equal(cbor("1b001fffffffffffff"), Number.MAX_SAFE_INTEGER);
  assert.equal(cbor("c249010000000000000000".replace("c249010000000000000000", "c2480100000000000000")), 1n << 56n);
  assert.equal(cbor("c34106"), -7);
  assert.equal(cbor("c2 54 0000000000000000000000000000000000000005"), 5); // leading zeros
  assert.deepEqual(cbor("9f 01 02 ff"), [1, 2]);
  assert.equal(cbor("7f 61 61 61 62 ff"), "ab");
  assert.ok(cbor("c0 74 323032312d30352d32355431303a32373a31355a") instanceof CDate);
  assert.equal(cbor("c0 74 323032312d30352d32355431303a32373a31355a").text, "2021-05-25T10:27:15Z");
  assert.equal(cbor("c1 1a 60acd8a3").text, "2021-05-25T10:59:47Z");
  assert.ok(cbor("d86f 01") instanceof CTag);
  assert.equal(cbor("d9d9f7 01"), 1); // self-described CBOR
});

test("cbor: duplicate keys compare as Python compares them", () => {
  for (const h of ["a2 01 00 01 00", "a2 01 00 18 01 00", "a2 01 00 f5 00", "a2 01 00 f93c00 00", "a2 61 61 00 61 61 00",
    "a2 82 01 02 00 82 01 02 00", "a1 00 a2 01 00 01 00", "bf 01 00 01 00 ff", "a2 c2 41 01 00 01 00"]) {
    assert.equal(cborReason(h), "duplicate_map_key", h);
  }
  for (const h of ["a2 01 00 02 00", "a2 41 61 00 61 61 00", "a2 f4 00 f5 00", "a2 f97e00 00 f97e00 00"]) {
    assert.equal(cborReason(h), null, h);
  }
});

test("cbor: trailing bytes, integers, depth, references", () => {
  assert.equal(cborReason("01 00"), "trailing_bytes");
  assert.equal(cborReason("a0 a0"), "trailing_bytes");
  assert.equal(cborReason("c2 49 010000000000000000"), "integer_out_of_range");
  assert.equal(cborReason("c3 49 010000000000000000"), "integer_out_of_range");
  assert.equal(cborReason("c2 48 ffffffffffffffff"), null);
  assert.equal(cborReason("c2 01"), "malformed"); // bignum of no byte string
  assert.equal(cborReason("81".repeat(MAX_DEPTH) + "01"), null);
  assert.equal(cborReason("81".repeat(MAX_DEPTH + 1) + "01"), "malformed");
  assert.equal(cborReason("c6".repeat(MAX_DEPTH + 1) + "01"), "malformed");
  assert.equal(cborReason("d819 00"), "malformed"); // stringref
  assert.equal(cborReason("d90100 80"), "malformed"); // stringref namespace
  assert.equal(cborReason("d81c 98 28" + "d81d00".repeat(40)), "malformed"); // shared cycle
  assert.equal(cborReason("82 d81c 81 01 d81d 00"), null); // one shared value used twice: small
  assert.ok(cbor("f8 20") instanceof Object); // simple value 32: well-formed
  for (const h of ["", "18", "5a ffffffff 00", "62 61", "62 c328", "ff", "1c", "9f 01", "a1 01", "f8", "fc", "f8 01", "f8 1f"]) {
    assert.notEqual(cborReason(h), null, h);
  }
});

test("cose: tag layouts and crit", () => {
  // protected {1: -7, 4: h'01'}, unprotected {}, payload h'', signature h''
  const body = "84 46 a2 01 26 04 41 01 a0 40 40";
  const ok = (h) => decodeSign1(bytes(h));
  assert.equal(ok(`d2 ${body}`).alg, -7);
  assert.equal(ok(body).alg, -7);
  assert.equal(ok(`d83d d2 ${body}`).alg, -7);
  assert.equal(ok(`d812 ${body}`).alg, -7);
  for (const h of [`d83d ${body}`, `d2 d2 ${body}`, `d83d d83d d2 ${body}`, `d9d9f7 d2 ${body}`, `d1 ${body}`]) {
    assert.equal(reason(() => ok(h)), "cose_wrong_tag", h);
  }
  assert.equal(reason(() => ok(`d2 ${body} 00`)), "trailing_bytes");
  assert.equal(reason(() => ok("d2 83 40 a0 40")), "cose_malformed");
  assert.equal(reason(() => ok("d2 84 43 a1 f5 26 a0 40 40")), "cose_malformed"); // label true
  const crit = (p) => `d2 84 ${p} a0 40 40`;
  assert.equal(ok(crit("4a a3 01 26 02 82 01 04 04 41 01")).alg, -7);
  assert.equal(reason(() => ok(crit("47 a2 01 26 02 81 18 21"))), "crit_unsupported");
  assert.equal(reason(() => ok(crit("45 a2 01 26 02 80"))), "crit_malformed");
  assert.equal(reason(() => ok(crit("45 a2 01 26 02 04"))), "crit_malformed");
  assert.equal(reason(() => ok(crit("46 a2 01 26 02 81 04"))), "crit_malformed"); // kid absent
  assert.equal(reason(() => ok("d2 84 43 a1 01 26 a1 02 81 01 40 40")), "crit_malformed"); // unprotected
});

test("cose: Sig_structure", () => {
  const s = sigStructure(bytes("a10126"), bytes("a0"));
  assert.equal(Buffer.from(s).toString("hex"), "846a5369676e61747572653143a101264041a0");
});

test("the precompiled schema is up to date", () => {
  const tool = fileURLToPath(new URL("../tools/build-schema.mjs", import.meta.url));
  execFileSync(process.execPath, [tool, "--check"], { stdio: "pipe" });
});

test("the vendored certlogic-js module is up to date and evaluates as the package", async () => {
  const tool = fileURLToPath(new URL("../tools/build-certlogic.mjs", import.meta.url));
  execFileSync(process.execPath, [tool, "--check"], { stdio: "pipe" });
  const { evaluate } = await import("../src/vendor/certlogic.js");
  const { createRequire } = await import("node:module");
  const pkg = createRequire(import.meta.url)("certlogic-js");
  const logic = { and: [{ "<": [{ var: "a" }, 3] }, { "in": ["x", { var: "b" }] }, { after: [{ plusTime: ["2021-06-01", 1, "day"] }, { plusTime: [{ var: "d" }, 0, "day"] }] }] };
  const data = { a: 2, b: ["x"], d: "2021-06-01T12:00:00Z" };
  assert.equal(evaluate(logic, data), pkg.evaluate(logic, data));
  assert.equal(evaluate(logic, data), true);
});
