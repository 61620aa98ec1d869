#!/usr/bin/env node
// Command line of the browser verifier under Node 20 (started by scripts/verify-js), with the
// contract of `python -m verifier` (verifier/cli.py):
//
//   verify-js qr --trust FILE [--trust FILE...] [--at ISO] [--json] (--qr-file FILE | 'HC1:...')
//   verify-js rules test DIR
//
// qr exit codes: 0 valid, 1 invalid, 2 usage, configuration (trust material) or internal
// error; with --json one JSON object, the verdict of verifier/result.py. rules test: one line
// per disagreement, then `N passed, M failed`; exit 0 only when M is 0, 2 for bad rule files.

import fs from "node:fs";
import { qrTextFromFile } from "./src/verify/base45.js";
import { TrustError } from "./src/verify/errors.js";
import { RuleFormatError } from "./src/verify/rules.js";
import { verifyQrText } from "./src/verify/hc1.js";
import { toJson } from "./src/verify/schema.js";
import { loadTrust } from "./src/verify/trust.js";
import { nodeState } from "./src/node-state.js";
import { DEFAULT_AGES, validAges } from "./src/verify/age.js";
import { ageLines, loadSignedRules } from "./src/verify/signed-rules.js";

const EXIT_VALID = 0;
const EXIT_INVALID = 1;
const EXIT_ERROR = 2;
const MAX_QR_FILE = 64 * 1024;
const PROG = "verify-js";

class UsageError extends Error {}

function usage(command, message) {
  process.stderr.write(`${PROG} ${command}: error: ${message} (see --help)\n`);
  return EXIT_ERROR;
}

const QR_HELP = `usage: ${PROG} qr --trust FILE [--trust FILE ...] [--at ISO-8601] [--json] [--lang {en,vi}]
              [--rules DIR_OR_FILE] [--country CC] [--profile NAME]
              [--rules-warn-days N] [--rules-max-age-days N] (--qr-file FILE | 'HC1:...')
Verify an EU DCC HC1 QR offline. Exit 0 valid, 1 invalid, 2 error.`;

/** ISO-8601 with or without fractional seconds and zone; no zone means UTC (verifier.util). */
export function parseAt(text) {
  const m = /^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?)?\s*(Z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)?\s*$/.exec(text);
  const bad = () => new UsageError(`argument --at: ${JSON.stringify(text.slice(0, 64))} is not an ISO-8601 date-time (e.g. 2026-06-01T12:00:00Z)`);
  if (!m) throw bad();
  const [, y, mo, d, h = "0", mi = "0", s = "0", frac = "", zone = "Z"] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), Number(frac.padEnd(3, "0").slice(0, 3)));
  const check = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (check.getUTCMonth() !== Number(mo) - 1 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) throw bad();
  let offset = 0;
  if (zone !== "Z") {
    const z = /^([+-])(\d{2}):?(\d{2})?:?(\d{2})?$/.exec(zone);
    offset = (z[1] === "-" ? -1 : 1) * (Number(z[2]) * 3600 + Number(z[3] || 0) * 60 + Number(z[4] || 0)) * 1000;
    if (Number(z[2]) > 23) throw bad();
  }
  let when = ms - offset;
  if (frac.length > 3) when += Number(`0.${frac.slice(3)}`); // sub-millisecond kept as a fraction
  if (!(when >= 0 && when < Date.UTC(3000, 0, 1))) {
    throw new UsageError(`argument --at: ${JSON.stringify(text.slice(0, 64))} is not between 1970-01-01 and 2999-12-31 (UTC)`);
  }
  return new Date(when);
}

function parseQrArgs(argv) {
  const args = { trust: [], at: null, json: false, lang: "en", text: null, qrFile: null, rules: null, country: "VN", profile: null, ...DEFAULT_AGES };
  const days = (name, text) => {
    const n = Number(text);
    if (!/^\s*[0-9]+\s*$/.test(text)) throw new UsageError(`argument ${name}: not a whole number of days: '${text.slice(0, 20)}'`);
    if (!(n >= 1 && n <= 3650)) throw new UsageError(`argument ${name}: must be 1 to 3650 days, got ${text.slice(0, 20)}`);
    return n;
  };
  const value = (i, name) => {
    if (i + 1 >= argv.length) throw new UsageError(`argument ${name}: expected one argument`);
    return argv[i + 1];
  };
  let positional = [];
  let onlyPositional = false;
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    if (onlyPositional || !a.startsWith("-") || a === "-") {
      positional.push(a);
      continue;
    }
    if (a === "--") {
      onlyPositional = true;
      continue;
    }
    let inline = null;
    const eq = a.indexOf("=");
    if (a.startsWith("--") && eq > 0) {
      inline = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const take = () => (inline !== null ? inline : value(i++, a));
    switch (a) {
      case "-h":
      case "--help":
        process.stdout.write(`${QR_HELP}\n`);
        process.exit(0);
        break;
      case "--trust":
        args.trust.push(take());
        break;
      case "--at":
        args.at = parseAt(take());
        break;
      case "--json":
        args.json = true;
        break;
      case "--lang":
        args.lang = take();
        if (!["en", "vi"].includes(args.lang)) throw new UsageError(`argument --lang: invalid choice: '${args.lang}' (choose from 'en', 'vi')`);
        break;
      case "--qr-file":
        if (args.qrFile !== null || args.text !== null) throw new UsageError("argument --qr-file: not allowed with argument text");
        args.qrFile = take();
        break;
      case "--image":
        throw new UsageError("argument --image: not supported by the JavaScript verifier (decode the QR with the page)");
      case "--rules":
        args.rules = take();
        break;
      case "--profile":
        args.profile = take();
        break;
      case "--rules-warn-days":
        args.warnDays = days(a, take());
        break;
      case "--rules-max-age-days":
        args.refuseDays = days(a, take());
        break;
      case "--country":
        args.country = take().toUpperCase();
        break;
      default:
        if (/^-\d/.test(a)) {
          positional.push(argv[i]);
          break;
        }
        throw new UsageError(`unrecognized arguments: ${argv[i]}`);
    }
  }
  if (positional.length > 1) throw new UsageError(`unrecognized arguments: ${positional.slice(1).join(" ")}`);
  if (positional.length === 1) {
    if (args.qrFile !== null) throw new UsageError("argument text: not allowed with argument --qr-file");
    args.text = positional[0];
  }
  if (!args.trust.length) throw new UsageError("the following arguments are required: --trust");
  if (args.text === null && args.qrFile === null) {
    throw new UsageError("one of the arguments 'HC1:...' --qr-file --image is required");
  }
  return args;
}

function readQrFile(file) {
  let data;
  try {
    if (file === "-") data = fs.readFileSync(0);
    else {
      const fd = fs.openSync(file, "r");
      try {
        const buf = Buffer.alloc(MAX_QR_FILE + 1);
        const n = fs.readSync(fd, buf, 0, buf.length, null);
        data = buf.subarray(0, n);
      } finally {
        fs.closeSync(fd);
      }
    }
  } catch (err) {
    throw new TrustError("unreadable", `cannot read ${file}: ${err.code === "ENOENT" ? "No such file or directory" : err.message}`);
  }
  return qrTextFromFile(new Uint8Array(data.subarray(0, MAX_QR_FILE + 1)));
}

function readTrustFile(file) {
  try {
    return { where: file, data: new Uint8Array(fs.readFileSync(file)) };
  } catch (err) {
    const why = err.code === "ENOENT" ? "No such file or directory" : err.code === "EISDIR" ? "Is a directory" : err.message;
    throw new TrustError("trust_file_unreadable", `cannot read ${file}: ${why}`);
  }
}

function human(verdict) {
  if (verdict.valid) return "VALID";
  const lines = [`INVALID (stage ${verdict.stage_failed})`];
  for (const e of verdict.errors) lines.push(`  ${e.stage}: ${e.reason}: ${e.message}`);
  return lines.join("\n");
}

async function runQr(argv) {
  let args;
  try {
    args = parseQrArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) return usage("qr", err.message);
    throw err;
  }
  const now = args.at ?? new Date();
  if (!validAges(args)) {
    throw new TrustError("usage", `rule-set ages: need 1 <= warn days < refuse days <= 3650, got ${args.warnDays} and ${args.refuseDays}`);
  }
  const files = args.trust.map(readTrustFile);
  const state = nodeState();
  let trust = null;
  let rules = null;
  if (args.rules !== null) {
    // issue 11: --rules (exit 2 if unusable or the profile is unknown), as rules_cli; a signed
    // rule set is checked against the trust anchors, its age and rollback
    const { loadRules, readRuleFile, valueSets, evaluate } = await import("./src/node-rules.js");
    const { profileName } = await import("./src/verify/rules.js");
    let ruleSet;
    const signed = readRuleFile(args.rules);
    if (signed !== null) {
      trust = await loadTrust(files, { now, state });
      const policy = { warnDays: args.warnDays, refuseDays: args.refuseDays };
      const loaded = await loadSignedRules(signed, args.rules, { anchors: trust.anchors, now, state, policy });
      for (const line of ageLines(loaded.info, loaded.age, policy, now)) process.stderr.write(`${line}\n`);
      ruleSet = loaded.ruleSet;
    } else {
      ruleSet = loadRules(args.rules);
    }
    const profile = profileName(ruleSet, args.country, args.profile);
    if (profile !== null) ruleSet.profile(args.country, profile);
    rules = { ruleSet, profile, valueSets: valueSets(), evaluate };
  }
  const text = args.text !== null ? args.text : readQrFile(args.qrFile);
  if (trust === null) trust = await loadTrust(files, { now, state });
  let verdict = await verifyQrText(text, trust, { now });
  if (rules !== null) {
    const { applyRules } = await import("./src/verify/rules.js");
    verdict = applyRules(verdict, rules.ruleSet, { country: args.country, profile: rules.profile, now, valueSets: rules.valueSets, evaluate: rules.evaluate });
  }
  process.stdout.write(`${args.json ? toJson(verdict) : human(verdict)}\n`);
  if (verdict.errors.some((e) => e.reason === "internal_error")) return EXIT_ERROR;
  return verdict.valid ? EXIT_VALID : EXIT_INVALID;
}

async function runRules(argv) {
  if (argv[0] !== "test" || argv.length !== 2 || argv[1].startsWith("-")) {
    if (argv.includes("-h") || argv.includes("--help")) {
      process.stdout.write(`usage: ${PROG} rules test DIR\n`);
      return EXIT_VALID;
    }
    return usage("rules", "usage: rules test DIR");
  }
  const { runRuleTests, RuleFormatError } = await import("./src/rules-test.js");
  try {
    const [passed, failures] = runRuleTests(argv[1]);
    for (const line of failures) process.stdout.write(`${line}\n`);
    process.stdout.write(`${passed} passed, ${failures.length} failed\n`);
    return failures.length ? 1 : 0;
  } catch (err) {
    if (err instanceof RuleFormatError) {
      process.stderr.write(`error: ${err.message}\n`);
      return EXIT_ERROR;
    }
    throw err;
  }
}

async function main(argv) {
  const [command, ...rest] = argv;
  try {
    if (command === "qr") return await runQr(rest);
    if (command === "rules") return await runRules(rest);
    if (command === "-h" || command === "--help") {
      process.stdout.write(`usage: ${PROG} {qr,rules} ...\n`);
      return EXIT_VALID;
    }
    return usage("", `argument COMMAND: invalid choice: ${JSON.stringify(command ?? "")} (choose from 'qr', 'rules')`);
  } catch (err) {
    if (err instanceof TrustError || err instanceof RuleFormatError) {
      process.stderr.write(`error: ${err.message}\n`);
      return EXIT_ERROR;
    }
    process.stderr.write(`internal error: ${err && err.name}: ${err && err.message}\n`);
    return EXIT_ERROR;
  }
}

process.exitCode = await main(process.argv.slice(2));
