/**
 * {@link VerifyingStream}: passes bytes through while hashing them, and errors (naming the
 * digest) when they exceed the expected size or do not hash to the expected digest, so a consumer
 * that commits only after the stream closed never commits unverified bytes. {@link verifying}
 * does the same as a byte stream, reading into its reader's buffers.
 *
 * @module
 */
import { Digester, tryParseDigest } from "../oci/digest.ts";
import { type ViewReader, viewReader, viewSourceStream } from "./byte_streams.ts";
import { ClientError } from "./errors.ts";

/** Hashes bytes as they pass and checks them against `digest` and, when known (≥ 0), `size`. */
function checker(
  digest: string,
  size: number,
  options: { onBytes?: (n: number) => void; hash?: boolean },
) {
  const parsed = tryParseDigest(digest);
  if (!parsed) throw new ClientError("invalid", `unsupported digest ${digest}`);
  const digester = options.hash === false ? undefined : new Digester(parsed.algorithm);
  let received = 0;
  return {
    /** Take `chunk`; throws once more than `size` bytes came. */
    add(chunk: Uint8Array): void {
      digester?.update(chunk);
      received += chunk.byteLength;
      if (size >= 0 && received > size) {
        throw new ClientError(
          "digest-mismatch",
          `${digest}: more than the expected ${size} bytes received`,
        );
      }
      options.onBytes?.(chunk.byteLength);
    },
    /** At the end: throws unless the size and the digest match. */
    end(): void {
      if (size >= 0 && received !== size) {
        throw new ClientError(
          "digest-mismatch",
          `${digest}: ${received} bytes received, ${size} expected`,
        );
      }
      const actual = digester?.peek().value;
      if (actual !== undefined && actual !== parsed.value) {
        throw new ClientError("digest-mismatch", `digest mismatch for ${digest}: got ${actual}`);
      }
    },
  };
}

/** A pass-through that verifies size and digest; the error surfaces before the stream closes. */
export class VerifyingStream extends TransformStream<Uint8Array, Uint8Array> {
  /** Verify against `digest` and, when known (≥ 0), `size`. */
  constructor(digest: string, size: number, options: { onBytes?: (n: number) => void } = {}) {
    const check = checker(digest, size, options);
    super({
      transform(chunk, controller) {
        check.add(chunk);
        controller.enqueue(chunk);
      },
      flush() {
        check.end();
      },
    });
  }
}

/**
 * `source` verified against `digest` and, when known (≥ 0), `size`, as a byte stream that reads
 * into its reader's buffers (BYOB) all the way down: the error, naming the digest, comes before
 * the end of the stream. With `hash: false` only the size is checked (for a consumer that checks
 * the digest itself).
 */
export function verifying(
  source: ReadableStream<Uint8Array>,
  digest: string,
  size: number,
  options: { onBytes?: (n: number) => void; hash?: boolean } = {},
): ReadableStream<Uint8Array> {
  const check = checker(digest, size, options);
  let reader: ViewReader | undefined;
  return viewSourceStream({
    async read(view) {
      reader ??= viewReader(source);
      const result = await reader.read(view);
      if (result.done) check.end();
      else check.add(result.value);
      return result;
    },
    async cancel(reason) {
      await (reader ?? source).cancel(reason);
    },
  });
}
