// End-to-end test of the scanner page in headless Chromium (playwright-core, Debian's
// /usr/bin/chromium) with a fake camera playing a .y4m of a signed QR code. Driven by
// tests/scanner/test_page.py: argv[2] is a JSON config
//   {url, chromium, scenarios: [{name, y4m, profile?, screenshot?}], offline: {y4m, text}, lang}
// and one JSON object with the outcomes is printed: {scenarios: {name: {valid, reasons}},
// offline: {...}, csp_violations: [...]}.

import { chromium } from "playwright-core";

const config = JSON.parse(process.argv[2]);
const BASE_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
];
const TIMEOUT = 30000;

async function launch(y4m) {
  return chromium.launch({
    executablePath: config.chromium,
    headless: true,
    args: [...BASE_ARGS, `--use-file-for-fake-video-capture=${y4m}`],
  });
}

async function openPage(browser, violations) {
  const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
  await context.grantPermissions(["camera"], { origin: config.url });
  const page = await context.newPage();
  page.on("console", (msg) => {
    if (/Content.Security.Policy|Refused to/i.test(msg.text())) violations.push(msg.text());
  });
  page.on("pageerror", (err) => violations.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => out.console.push(msg.text()));
  await page.goto(config.url);
  await page.waitForSelector("body[data-ready=true]", { timeout: TIMEOUT });
  if (config.lang) {
    const current = await page.getAttribute("html", "lang");
    if (current !== config.lang) await page.click("#lang");
  }
  return { context, page };
}

async function verdictOf(page) {
  await page.waitForSelector("#verdict:not([hidden])", { timeout: TIMEOUT });
  return page.evaluate(() => {
    const box = document.getElementById("verdict");
    return {
      valid: box.dataset.valid === "true",
      reasons: box.dataset.reasons ? box.dataset.reasons.split(" ") : [],
      title: document.getElementById("verdict-title").textContent,
      text: box.innerText,
    };
  });
}

const out = { scenarios: {}, offline: null, csp_violations: [], console: [] };
for (const s of config.scenarios) {
  const browser = await launch(s.y4m);
  try {
    const { page } = await openPage(browser, out.csp_violations);
    const trustStatus = await page.textContent("#trust-status");
    if (s.profile) await page.selectOption("#profile", s.profile);
    const started = Date.now();
    await page.click("#start-camera");
    const verdict = await verdictOf(page);
    verdict.ms = Date.now() - started;
    verdict.trust_status = trustStatus;
    if (s.screenshot) await page.screenshot({ path: s.screenshot });
    out.scenarios[s.name] = verdict;
  } catch (err) {
    out.scenarios[s.name] = { error: String(err && err.message) };
  } finally {
    await browser.close();
  }
}

if (config.offline) {
  const browser = await launch(config.offline.y4m);
  try {
    const { context, page } = await openPage(browser, out.csp_violations);
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
    });
    await page.reload();
    await page.waitForSelector("body[data-ready=true]", { timeout: TIMEOUT });
    const controlled = await page.evaluate(() => Boolean(navigator.serviceWorker.controller));
    await context.setOffline(true);
    await page.reload();
    await page.waitForSelector("body[data-ready=true]", { timeout: TIMEOUT });
    const trustStatus = await page.textContent("#trust-status");
    out.step = `offline reloaded, trust: ${trustStatus}`;
    await page.fill("#qr-text", config.offline.text);
    await page.press("#qr-text", "Enter");
    const wedge = await verdictOf(page);
    await page.click("#verdict");
    await page.click("#start-camera");
    const camera = await verdictOf(page);
    out.offline = { controlled, trust_status: trustStatus, wedge, camera };
  } catch (err) {
    out.offline = { error: String(err && err.message), step: out.step };
  } finally {
    await browser.close();
  }
}
process.stdout.write(`${JSON.stringify(out)}\n`);
