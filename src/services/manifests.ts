/**
 * Manifests: resolve tags, validate and store pushes (exact bytes), serve and delete.
 *
 * @module
 */
import { RegistryError } from "../errors.ts";
import { type Digest, digestBytes } from "../oci/digest.ts";
import { type ParsedManifest, parseManifest } from "../oci/manifest.ts";
import { isValidTag, parseReference, type Reference, tryParseReference } from "../oci/names.ts";
import type { Store } from "../storage/store.ts";
import type { BlobGuard } from "./blob_guard.ts";
import type { PolicyService, RetentionAction } from "./policies.ts";
import { concatBytes } from "../bytes.ts";

/** A stored manifest. */
export interface StoredManifest {
  /** Its digest. */
  digest: Digest;
  /** Its media type (what `Content-Type` answers with). */
  mediaType: string;
  /** Its exact bytes. */
  bytes: Uint8Array<ArrayBuffer>;
  /** What validation learnt of it. */
  parsed: ParsedManifest;
}

/** Options of the manifest service. */
export interface ManifestOptions {
  /** Largest manifest accepted, in bytes. */
  maxBytes: number;
  /** Accept indexes whose children are not in the repository. */
  sparseIndexes: boolean;
  /** Coordinates with garbage collection: blobs a push names are used, not collected. */
  guard?: BlobGuard;
  /** Memory budget of the cache of manifests read or pushed, in bytes (0: no cache). */
  cacheBytes: number;
  /** Immutable tags and retention (src/services/policies.ts). */
  policies?: PolicyService;
}

/** Options of a manifest push. */
export interface PutOptions {
  /** More tags to point at the manifest (the `?tag=` query parameters of OCI 1.1). */
  tags?: string[];
}

/** Result of a manifest push. */
export interface PutResult {
  /** The manifest's digest. */
  digest: Digest;
  /** The subject it refers to, when any. */
  subject?: Digest;
  /** The query tags applied (what `OCI-Tag` answers with), in request order, once each. */
  tags: string[];
  /** What retention deleted after the push (src/services/policies.ts). */
  retained: RetentionAction[];
}

/** Most `?tag=` parameters one manifest push may carry (the spec asks for at least 10). */
export const MAX_QUERY_TAGS = 50;

/** Rough heap cost of one digest (an object and three strings) and of any object or string. */
const DIGEST_COST = 256;
const OBJECT_COST = 64;

/** Rough heap size of a stored manifest: its bytes plus what its parsed form holds. */
export function manifestCost(stored: StoredManifest): number {
  const { parsed } = stored;
  // Strings may be held two bytes a character.
  const string = (text: string | undefined) =>
    text === undefined ? 0 : OBJECT_COST + 2 * text.length;
  let cost = OBJECT_COST * 3 + stored.bytes.byteLength + DIGEST_COST + string(stored.mediaType);
  cost += (parsed.blobs.length + parsed.manifests.length) * DIGEST_COST;
  if (parsed.subject) cost += DIGEST_COST;
  cost += string(parsed.artifactType);
  for (const [key, value] of Object.entries(parsed.annotations ?? {})) {
    cost += string(key) + string(value);
  }
  return cost;
}

/**
 * Manifests kept in memory by digest (content-addressed, so never stale), least recently used
 * first out, within a byte budget counted by {@link manifestCost}.
 */
export class ManifestCache {
  readonly #entries = new Map<string, { stored: StoredManifest; cost: number }>();
  readonly #budget: number;
  #bytes = 0;

  /** A cache of at most `budget` bytes. */
  constructor(budget: number) {
    this.#budget = budget;
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Entries held now. */
  get size(): number {
    return this.#entries.size;
  }

  /** The manifest of a digest, when held (it becomes the most recently used). */
  get(digest: string): StoredManifest | undefined {
    const entry = this.#entries.get(digest);
    if (!entry) return undefined;
    this.#entries.delete(digest);
    this.#entries.set(digest, entry);
    return entry.stored;
  }

  /** Hold a manifest, dropping the least recently used beyond the budget; too large: not held. */
  set(stored: StoredManifest): void {
    const key = stored.digest.value;
    const previous = this.#entries.get(key);
    if (previous) {
      this.#entries.delete(key);
      this.#bytes -= previous.cost;
    }
    const cost = manifestCost(stored);
    if (cost > this.#budget) return;
    this.#entries.set(key, { stored, cost });
    this.#bytes += cost;
    for (const [oldest, entry] of this.#entries) {
      if (this.#bytes <= this.#budget) break;
      this.#entries.delete(oldest);
      this.#bytes -= entry.cost;
    }
  }
}

/** The manifest rules of one registry. */
export class ManifestService {
  readonly #store: Store;
  readonly #options: ManifestOptions;
  readonly #cache: ManifestCache;

  /** Manifests over `store`. */
  constructor(store: Store, options: ManifestOptions) {
    this.#store = store;
    this.#options = options;
    this.#cache = new ManifestCache(options.cacheBytes);
  }

  /** The digest a reference names in `name`, or `MANIFEST_UNKNOWN`. */
  async resolve(name: string, reference: Reference): Promise<Digest> {
    if (reference.kind === "tag") {
      const digest = await this.#store.getTag(name, reference.tag);
      if (!digest) throw unknownManifest(reference.tag);
      return digest;
    }
    if (!(await this.#store.hasLink(name, "manifest", reference.digest))) {
      throw unknownManifest(reference.digest.value);
    }
    return reference.digest;
  }

  /**
   * Fetch a manifest by tag or digest. A reference that is not a valid tag or digest names no
   * manifest: `MANIFEST_UNKNOWN` (404), as the OCI conformance suite expects.
   */
  async get(name: string, ref: string): Promise<StoredManifest> {
    const reference = tryParseReference(ref);
    if (!reference) throw unknownManifest(ref);
    const digest = await this.resolve(name, reference);
    const stored = await this.load(digest);
    if (!stored) throw unknownManifest(ref);
    return stored;
  }

  /** Load (and cache) a manifest by digest from the global store, or `undefined`. */
  async load(digest: Digest): Promise<StoredManifest | undefined> {
    const hit = this.#cache.get(digest.value);
    if (hit) return hit;
    const bytes = await this.#store.readBlob(digest);
    if (!bytes) return undefined;
    let parsed: ParsedManifest;
    try {
      parsed = parseManifest(bytes);
    } catch {
      return undefined;
    }
    const stored = { digest, mediaType: parsed.mediaType, bytes, parsed };
    this.#cache.set(stored);
    return stored;
  }

  /** Validate and store a manifest pushed under a tag or digest. */
  async put(
    name: string,
    ref: string,
    contentType: string,
    body: ReadableStream<Uint8Array> | null,
    options: PutOptions = {},
  ): Promise<PutResult> {
    const reference = parseReference(ref);
    const tags = checkQueryTags(options.tags ?? []);
    const bytes = await readLimited(body, this.#options.maxBytes);
    const digest = digestBytes(
      bytes,
      reference.kind === "digest" ? reference.digest.algorithm : undefined,
    );
    if (reference.kind === "digest" && reference.digest.value !== digest.value) {
      throw new RegistryError("DIGEST_INVALID", {
        expected: reference.digest.value,
        actual: digest.value,
      }, { message: "manifest digest does not match its content" });
    }
    const parsed = parseManifest(bytes, contentType);
    await this.#options.guard?.use([digest, ...parsed.blobs, ...parsed.manifests]);
    await this.#checkReferences(name, parsed);
    const policies = this.#options.policies;
    const allTags = reference.kind === "tag" ? [reference.tag, ...tags] : tags;
    const write = async () => {
      await this.#store.putBlob(digest, bytes);
      await this.#store.putLink(name, "manifest", digest);
      if (parsed.subject) await this.#store.putReferrer(name, parsed.subject.digest, digest);
      for (const tag of allTags) await this.#store.putTag(name, tag, digest);
    };
    if (policies) await policies.writeTags(name, allTags, digest, write);
    else await write();
    this.#cache.set({ digest, mediaType: parsed.mediaType, bytes, parsed });
    const retained = policies?.active ? await policies.afterPush(name, this) : [];
    return { digest, tags, retained, ...(parsed.subject && { subject: parsed.subject.digest }) };
  }

  /** Delete by digest (the manifest and every tag on it) or by tag (the tag only). */
  async delete(name: string, ref: string): Promise<void> {
    const reference = parseReference(ref);
    await this.#options.policies?.checkDelete(name, reference);
    if (reference.kind === "tag") {
      if (!(await this.#store.deleteTag(name, reference.tag))) throw unknownManifest(ref);
      return;
    }
    const digest = reference.digest;
    const manifest = await this.load(digest);
    if (!(await this.#store.deleteLink(name, "manifest", digest))) throw unknownManifest(ref);
    const subject = manifest?.parsed.subject?.digest;
    if (subject) await this.#store.deleteReferrer(name, subject, digest);
    for (const tag of (await this.#store.listTags(name)) ?? []) {
      if ((await this.#store.getTag(name, tag))?.value === digest.value) {
        await this.#store.deleteTag(name, tag);
      }
    }
  }

  async #checkReferences(name: string, parsed: ParsedManifest): Promise<void> {
    const missingBlobs = await missing(
      parsed.blobs,
      async (d) =>
        await this.#store.hasLink(name, "layer", d) &&
        (await this.#store.statBlob(d)) !== undefined,
    );
    if (missingBlobs.length > 0) {
      throw new RegistryError("MANIFEST_BLOB_UNKNOWN", { blobs: missingBlobs }, {
        message: `manifest references blobs not in the repository: ${missingBlobs.join(", ")}`,
      });
    }
    if (this.#options.sparseIndexes) return;
    const missingManifests = await missing(
      parsed.manifests,
      (d) => this.#store.hasLink(name, "manifest", d),
    );
    if (missingManifests.length > 0) {
      throw new RegistryError("INDEX_MANIFEST_UNKNOWN", { manifests: missingManifests }, {
        message: `index references manifests not in the repository: ${missingManifests.join(", ")}`,
      });
    }
  }
}

async function missing(
  digests: Digest[],
  has: (d: Digest) => Promise<boolean>,
): Promise<string[]> {
  const unique = [...new Map(digests.map((d) => [d.value, d])).values()];
  const present = await Promise.all(unique.map(has));
  return unique.filter((_, i) => !present[i]).map((d) => d.value);
}

/** Check the `?tag=` parameters of a push before anything is read or written; drop repeats. */
function checkQueryTags(tags: string[]): string[] {
  if (tags.length > MAX_QUERY_TAGS) {
    throw new RegistryError("URI_TOO_LONG", { limit: MAX_QUERY_TAGS, received: tags.length }, {
      message: `at most ${MAX_QUERY_TAGS} tag parameters per manifest push`,
    });
  }
  const invalid = tags.filter((tag) => !isValidTag(tag));
  if (invalid.length > 0) {
    throw new RegistryError("MANIFEST_INVALID", { tags: invalid.map((t) => t.slice(0, 200)) }, {
      message: "invalid tag parameter: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}",
    });
  }
  return [...new Set(tags)];
}

function unknownManifest(ref: string): RegistryError {
  return new RegistryError("MANIFEST_UNKNOWN", { reference: ref.slice(0, 200) });
}

/** Read a whole body of at most `limit` bytes, or throw 413. */
export async function readLimited(
  body: ReadableStream<Uint8Array> | null,
  limit: number,
): Promise<Uint8Array<ArrayBuffer>> {
  if (!body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.byteLength;
    if (total > limit) {
      throw new RegistryError("MANIFEST_TOO_LARGE", { limit }, {
        message: `manifest exceeds the ${limit} byte limit`,
      });
    }
    chunks.push(chunk);
  }
  return concatBytes(chunks, total);
}
