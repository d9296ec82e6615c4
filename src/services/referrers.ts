/**
 * The OCI 1.1 referrers API: the manifests of a repository whose `subject` is a given digest,
 * read from the store's referrer index (cost in the number of referrers, not the repository).
 *
 * @module
 */
import type { Digest } from "../oci/digest.ts";
import type { Descriptor } from "../oci/manifest.ts";
import type { Store } from "../storage/store.ts";
import type { ManifestService } from "./manifests.ts";

/** The referrers of a subject, as the API answers them. */
export interface ReferrerList {
  /** One descriptor per referrer, sorted by digest. */
  descriptors: Descriptor[];
  /** Whether an `artifactType` filter was applied. */
  filtered: boolean;
}

/** Referrer lookups of one registry. */
export class ReferrerService {
  readonly #store: Store;
  readonly #manifests: ManifestService;

  /** Referrers over `store`, reading manifests through `manifests` (and its cache). */
  constructor(store: Store, manifests: ManifestService) {
    this.#store = store;
    this.#manifests = manifests;
  }

  /** The referrers of `subject` in `name`, optionally only those of one artifact type. */
  async list(name: string, subject: Digest, artifactType?: string): Promise<ReferrerList> {
    const descriptors: Descriptor[] = [];
    for await (const digest of this.#store.listReferrers(name, subject)) {
      // An entry outlives its manifest only after a crash or a foreign delete: skip it.
      if (!(await this.#store.hasLink(name, "manifest", digest))) continue;
      const manifest = await this.#manifests.load(digest);
      if (!manifest || manifest.parsed.subject?.digest.value !== subject.value) continue;
      const type = manifest.parsed.artifactType;
      if (artifactType !== undefined && type !== artifactType) continue;
      descriptors.push({
        mediaType: manifest.mediaType,
        digest: digest.value,
        size: manifest.bytes.byteLength,
        ...(type !== undefined && { artifactType: type }),
        ...(manifest.parsed.annotations && { annotations: manifest.parsed.annotations }),
      });
    }
    descriptors.sort((a, b) => a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0);
    return { descriptors, filtered: artifactType !== undefined };
  }
}
