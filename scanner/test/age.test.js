// The age limits shared by trust lists and signed rule sets on the page (src/verify/age.js),
// the same thresholds as verifier/rules_signed.py `freshness` (tests/verifier/test_rules_signed.py).
import assert from "node:assert/strict";
import test from "node:test";
import { DAY_MS, freshness, validAges } from "../src/verify/age.js";

const issued = Date.UTC(2026, 0, 1);
const at = (days) => issued + days * DAY_MS + 3600000;

test("fresh up to warnDays, old up to refuseDays, then too old", () => {
  const policy = { warnDays: 14, refuseDays: 60 };
  assert.deepEqual(freshness(issued, at(0), policy), { state: "fresh", days: 0 });
  assert.deepEqual(freshness(issued, at(14), policy), { state: "fresh", days: 14 });
  assert.deepEqual(freshness(issued, at(15), policy), { state: "old", days: 15 });
  assert.deepEqual(freshness(issued, at(60), policy), { state: "old", days: 60 });
  assert.deepEqual(freshness(issued, at(61), policy), { state: "too_old", days: 61 });
  assert.equal(freshness(issued, at(61), { warnDays: 14, refuseDays: 90 }).state, "old");
});

test("an issue time after the clock (beyond 5 minutes) is 'future'", () => {
  assert.equal(freshness(issued, issued - 6 * 60000).state, "future");
  assert.equal(freshness(issued, issued - 4 * 60000).state, "fresh");
});

test("limits: 1 <= warn < refuse <= 3650, whole days", () => {
  assert.ok(validAges({ warnDays: 14, refuseDays: 60 }));
  assert.ok(!validAges({ warnDays: 60, refuseDays: 60 }));
  assert.ok(!validAges({ warnDays: 0, refuseDays: 60 }));
  assert.ok(!validAges({ warnDays: 1.5, refuseDays: 60 }));
  assert.ok(!validAges({ warnDays: 1, refuseDays: 4000 }));
});
