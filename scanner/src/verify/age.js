// The age of a signed document (trust list, rule set) against the checkpoint's two limits, as
// verifier/rules_signed.py `freshness`: "old" (a warning) after warnDays, "too_old" (refused)
// after refuseDays, "future" when issued more than 5 minutes after `now` (a wrong clock). No
// cliff at a fixed expiry: the checkpoint keeps working for weeks without a network.
//
//   freshness(issuedAtMs, nowMs, { warnDays: 14, refuseDays: 60 })  // {state: "old", days: 20}

export const DAY_MS = 86400000;
export const CLOCK_SKEW_MS = 5 * 60000;
export const DEFAULT_AGES = Object.freeze({ warnDays: 14, refuseDays: 60 });

/** True for limits the page and the command line accept: 1 <= warn < refuse <= 3650. */
export function validAges({ warnDays, refuseDays }) {
  return Number.isInteger(warnDays) && Number.isInteger(refuseDays) && warnDays >= 1 && warnDays < refuseDays && refuseDays <= 3650;
}

export function freshness(issuedAtMs, nowMs, { warnDays, refuseDays } = DEFAULT_AGES) {
  if (issuedAtMs > nowMs + CLOCK_SKEW_MS) return { state: "future", days: 0 };
  const days = Math.max(0, Math.floor((nowMs - issuedAtMs) / DAY_MS));
  if (days > refuseDays) return { state: "too_old", days };
  if (days > warnDays) return { state: "old", days };
  return { state: "fresh", days };
}
