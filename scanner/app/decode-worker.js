// QR decoding off the main thread: zxing-cpp compiled to WebAssembly (npm zxing-wasm), loaded
// from this server (/vendor/zxing/...), never from a CDN. Messages: {id, image: ImageData |
// Blob} -> {id, text | null, error?}.

import { prepareZXingModule, readBarcodes } from "/vendor/zxing/es/reader/index.js";

prepareZXingModule({
  overrides: { locateFile: (path) => `/vendor/zxing/reader/${path}` },
});

// QR, and Aztec as verifier/image.py reads it (hcert's FAQ: "Aztec or QR"; official IE vectors).
// A page may carry other codes beside the certificate (a URL): up to 4 are read and the first
// that holds an HC1 text wins, else the first one (as verifier/image.py).
const OPTIONS = { formats: ["QRCode", "Aztec"], tryHarder: true, tryRotate: true, tryInvert: false, maxNumberOfSymbols: 4 };

self.onmessage = async ({ data }) => {
  try {
    const results = await readBarcodes(data.image, OPTIONS);
    const valid = results.filter((r) => r.isValid && r.text);
    const found = valid.find((r) => r.text.startsWith("HC1:")) || valid[0];
    self.postMessage({ id: data.id, text: found ? found.text : null });
  } catch (err) {
    self.postMessage({ id: data.id, text: null, error: String(err && err.message) });
  }
};
