/**
 * Content digests: parsing `algorithm:encoded`, and incremental hashing while bytes stream.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { OciError } from "./errors.ts";

/** Hash algorithms berth stores content under, with the length of their hex encoding. */
export const ALGORITHMS = { sha256: 64, sha512: 128 } as const;

/** A supported digest algorithm. */
export type Algorithm = keyof typeof ALGORITHMS;

/** The default algorithm for content berth digests itself. */
export const DEFAULT_ALGORITHM: Algorithm = "sha256";

/** A parsed, validated digest. */
export interface Digest {
  /** The algorithm, e.g. `sha256`. */
  readonly algorithm: Algorithm;
  /** Lower-case hex encoding of the hash. */
  readonly hex: string;
  /** `algorithm:hex`. */
  readonly value: string;
}

const GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const HEX = /^[a-f0-9]+$/;

/** Whether `algorithm` is one berth supports. */
export function isAlgorithm(algorithm: string): algorithm is Algorithm {
  return Object.hasOwn(ALGORITHMS, algorithm);
}

/** Parse a digest string, or throw an {@link OciError} of kind `digest`. */
export function parseDigest(input: string): Digest {
  const digest = tryParseDigest(input);
  if (!digest) {
    throw new OciError(
      "digest",
      "invalid digest: expected sha256:<64 hex> or sha512:<128 hex>",
      { digest: input.slice(0, 200) },
    );
  }
  return digest;
}

/** Parse a digest string, or return `undefined` when it is malformed or unsupported. */
export function tryParseDigest(input: string): Digest | undefined {
  if (input.length > 200 || !GRAMMAR.test(input)) return undefined;
  const colon = input.indexOf(":");
  const algorithm = input.slice(0, colon);
  const hex = input.slice(colon + 1);
  if (!isAlgorithm(algorithm) || hex.length !== ALGORITHMS[algorithm] || !HEX.test(hex)) {
    return undefined;
  }
  return { algorithm, hex, value: input };
}

/** Build a {@link Digest} from an algorithm and a hex string already known to be valid. */
export function makeDigest(algorithm: Algorithm, hex: string): Digest {
  return { algorithm, hex, value: `${algorithm}:${hex}` };
}

/** Digest a whole byte array (manifests and other small documents). */
export function digestBytes(bytes: Uint8Array, algorithm: Algorithm = DEFAULT_ALGORITHM): Digest {
  return makeDigest(algorithm, createHash(algorithm).update(bytes).digest("hex"));
}

/** An incremental hasher that also counts bytes. */
export class Digester {
  /** The algorithm in use. */
  readonly algorithm: Algorithm;
  #hash: Hash;
  #size = 0;

  /** Start a hasher for `algorithm`. */
  constructor(algorithm: Algorithm = DEFAULT_ALGORITHM) {
    this.algorithm = algorithm;
    this.#hash = createHash(algorithm);
  }

  /** Bytes fed so far. */
  get size(): number {
    return this.#size;
  }

  /** Feed bytes. */
  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.#size += chunk.byteLength;
  }

  /** The digest of what was fed so far, leaving the hasher usable. */
  peek(): Digest {
    return makeDigest(this.algorithm, this.#hash.copy().digest("hex"));
  }
}
