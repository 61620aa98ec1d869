// zlib inflate (RFC 1950) through DecompressionStream("deflate"), capped against zlib bombs,
// as verifier.codec.decompress: zlib_invalid for a bad or truncated stream, zlib_too_large
// beyond MAX_DECOMPRESSED bytes.

import { CodecError } from "./errors.js";

export const MAX_DECOMPRESSED = 128 * 1024;

export async function decompress(data, limit = MAX_DECOMPRESSED) {
  let stream;
  try {
    stream = new DecompressionStream("deflate");
  } catch (err) {
    throw new Error(`DecompressionStream unavailable: ${err}`);
  }
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  const written = writer.write(data).then(() => writer.close()).catch(() => {});
  const chunks = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > limit) {
        reader.cancel().catch(() => {});
        throw new CodecError("zlib_too_large", `decompressed data exceeds ${limit} bytes`);
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof CodecError) throw err;
    throw new CodecError("zlib_invalid", `not a valid zlib stream (${err && err.message})`);
  }
  await written;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
