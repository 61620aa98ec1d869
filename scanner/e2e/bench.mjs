// Speed of the page on this machine (issue 11): scan-to-verdict from a camera frame (frame
// grab, QR decoding in the worker, verification) and the decode alone, median and p95 over N
// frames of the fake camera; prints one JSON line. Run through bench/scanner.py, which makes
// the .y4m and the server (tests/scanner/fake_camera.py) and prints the ratio:
//   .venv/bin/python bench/scanner.py --frames 200
// docs/scanner.md has the figures.

import { chromium } from "playwright-core";

const config = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: config.chromium,
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    `--use-file-for-fake-video-capture=${config.y4m}`,
  ],
});
try {
  const context = await browser.newContext();
  await context.grantPermissions(["camera"], { origin: config.url });
  const page = await context.newPage();
  await page.goto(config.url);
  await page.waitForSelector("body[data-ready=true]");
  const result = await page.evaluate(async (frames) => {
    const { verifyQrText } = await import("/src/verify/hc1.js");
    const { loadTrust, memoryState } = await import("/src/verify/trust.js");
    const { files } = await (await fetch("/trust/index.json")).json();
    const trustFiles = [];
    for (const name of files) {
      trustFiles.push({ where: name, data: new Uint8Array(await (await fetch(`/trust/${encodeURIComponent(name)}`)).arrayBuffer()) });
    }
    const store = await loadTrust(trustFiles, { now: new Date(), state: memoryState() });
    const stream = await navigator.mediaDevices.getUserMedia({ video: true });
    const video = document.createElement("video");
    video.muted = true;
    video.srcObject = stream;
    await video.play();
    const worker = new Worker("/app/decode-worker.js", { type: "module" });
    let id = 0;
    const decode = (image) =>
      new Promise((resolve) => {
        const mine = ++id;
        worker.onmessage = ({ data }) => data.id === mine && resolve(data.text);
        worker.postMessage({ id: mine, image });
      });
    const canvas = new OffscreenCanvas(video.videoWidth, video.videoHeight);
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    const grab = () => {
      ctx.drawImage(video, 0, 0);
      return ctx.getImageData(0, 0, canvas.width, canvas.height);
    };
    await decode(grab()); // warm-up: the WebAssembly module compiles once
    const decodeMs = [];
    const totalMs = [];
    let valid = 0;
    for (let i = 0; i < frames; i++) {
      const t0 = performance.now();
      const image = grab();
      const t1 = performance.now();
      const text = await decode(image);
      const t2 = performance.now();
      const verdict = await verifyQrText(text, store, { now: new Date(), qr: true });
      const t3 = performance.now();
      decodeMs.push(t2 - t1);
      totalMs.push(t3 - t0);
      if (verdict.valid) valid++;
    }
    const stats = (xs) => {
      const s = [...xs].sort((a, b) => a - b);
      return { median: s[Math.floor(s.length / 2)], p95: s[Math.floor(s.length * 0.95)] };
    };
    return { frames, valid, width: canvas.width, height: canvas.height, decode: stats(decodeMs), scan_to_verdict: stats(totalMs) };
  }, config.frames || 200);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await browser.close();
}
