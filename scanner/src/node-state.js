// Verifier state on disk for Node (the command line): pinned CSCAs in <state>/pinned/*.pem and
// the highest accepted trust-list seq per CSCA in <state>/trustlist-seq.json, the same folder
// and format as the Python verifier (verifier/trust.py), so both refuse the same rollbacks.
// $VNDCC_VERIFIER_STATE, else ~/.local/state/vn-dcc-verifier. Written atomically (temporary
// file + rename); unlike Python there is no flock, so two processes at once may race.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { TrustError } from "./verify/errors.js";

export function defaultStateDir() {
  const env = process.env.VNDCC_VERIFIER_STATE;
  return env ? env : path.join(os.homedir(), ".local", "state", "vn-dcc-verifier");
}

export function nodeState(dir = defaultStateDir()) {
  return {
    async pinned() {
      const folder = path.join(dir, "pinned");
      if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) return [];
      return fs
        .readdirSync(folder)
        .filter((n) => n.endsWith(".pem"))
        .sort()
        .map((n) => ({ where: path.join(folder, n), data: new Uint8Array(fs.readFileSync(path.join(folder, n))) }));
    },
    // key "trustlist" (trustlist-seq.json) or "rules" (rules-seq.json, signed rule sets)
    async checkRollback(anchorId, seq, where, { key = "trustlist", what = "trust list", reason = "trust_list_rollback" } = {}) {
      const seqFile = path.join(dir, `${key}-seq.json`);
      let seen = {};
      try {
        const raw = JSON.parse(fs.readFileSync(seqFile, "utf-8"));
        if (raw && typeof raw === "object" && !Array.isArray(raw)) {
          for (const [k, v] of Object.entries(raw)) if (Number.isInteger(v)) seen[k] = v;
        }
      } catch (err) {
        if (err.code !== "ENOENT") {
          throw new TrustError("state_unreadable", `cannot read verifier state ${seqFile}: ${err.message}`);
        }
      }
      const held = seen[anchorId];
      const n = typeof seq === "bigint" ? Number(seq) : seq;
      if (held !== undefined && n < held) {
        throw new TrustError(reason, `${where}: ${what} sequence ${seq} is older than the accepted ${held} (rollback refused)`);
      }
      if (held === undefined || n > held) {
        seen[anchorId] = n;
        const sorted = Object.fromEntries(Object.keys(seen).sort().map((k) => [k, seen[k]]));
        try {
          fs.mkdirSync(dir, { recursive: true });
          const tmp = path.join(dir, `.${key}-seq.json.${process.pid}.tmp`);
          fs.writeFileSync(tmp, JSON.stringify(sorted, null, 1));
          fs.renameSync(tmp, seqFile);
        } catch (err) {
          throw new TrustError("state_unwritable", `cannot write verifier state ${seqFile}: ${err.message}`);
        }
      }
    },
  };
}
