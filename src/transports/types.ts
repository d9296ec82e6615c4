/**
 * The two interfaces every transport implements, after containers/image's `ImageSource` and
 * `ImageDestination`: a source gives manifests with their digests, blobs as streams and
 * referrers; a destination takes blobs from streams, manifests by their exact bytes, and makes
 * the result visible only on `commit`. The copy engine knows nothing else of a transport.
 *
 * @module
 */
import type { Descriptor } from "../oci/manifest.ts";

/** A manifest: exact bytes, media type, digest. */
export interface Manifest {
  /** Exact bytes (never re-serialized). */
  bytes: Uint8Array;
  /** Media type. */
  mediaType: string;
  /** Digest of `bytes`. */
  digest: string;
}

/** A blob to read or write. */
export interface BlobInfo {
  /** Digest. */
  digest: string;
  /** Size in bytes. */
  size: number;
  /** Media type, when known. */
  mediaType?: string;
}

/** Per-call options. */
export interface TransportCallOptions {
  /** Abort signal. */
  signal?: AbortSignal;
}

/** Where images are read from. */
export interface ImageSource {
  /** The reference as the user wrote it, for messages. */
  readonly name: string;
  /** The manifest the reference names (its tag, digest or only image), or one by digest. */
  getManifest(digest?: string, options?: TransportCallOptions): Promise<Manifest>;
  /** A blob's bytes (the engine verifies them). */
  getBlob(blob: BlobInfo, options?: TransportCallOptions): Promise<ReadableStream<Uint8Array>>;
  /** Manifests whose `subject` is `digest` (empty when the source has none or cannot tell). */
  referrers(digest: string, options?: TransportCallOptions): Promise<Descriptor[]>;
  /** Tags of the repository (or layout/archive), for `sync` and `list-tags`. */
  listTags?(options?: TransportCallOptions): Promise<string[]>;
  /** A hint for destinations on the same registry: `registry` and `repository` of the source. */
  readonly location?: { registry: string; repository: string };
  /** Release resources. */
  close(): Promise<void>;
}

/** What a destination can hold. */
export interface DestinationCapabilities {
  /** Indexes (multi-platform images); false: the engine picks one platform. */
  indexes: boolean;
  /** Referrers (manifests with a subject). */
  referrers: boolean;
  /**
   * Checks each blob's digest itself before the blob becomes visible (a registry must): the
   * engine then hands `putBlob` the source's bytes without hashing them a second time.
   */
  verifiesDigests: boolean;
}

/** Where images are written. */
export interface ImageDestination {
  /** The reference as the user wrote it, for messages. */
  readonly name: string;
  /** What it can hold. */
  readonly capabilities: DestinationCapabilities;
  /** Optional: get ready to write (a registry: learn its scheme and auth) while the source is read. */
  prepare?(options?: TransportCallOptions): Promise<void>;
  /**
   * Whether the blob is already there (the engine then skips it); undefined when `putBlob` finds
   * out more cheaply itself (the engine then calls it with `checked: false`).
   */
  hasBlob(blob: BlobInfo, options?: TransportCallOptions): Promise<boolean | undefined>;
  /**
   * Store a blob from a stream that errors on a digest mismatch (unless the destination
   * `verifiesDigests` itself); nothing of a blob whose stream errored may become visible. `open` may be called again to retry. With `checked: false`
   * (`hasBlob` answered undefined) a blob already there is skipped (`"exists"`, `open` unused).
   */
  putBlob(
    blob: BlobInfo,
    open: () => Promise<ReadableStream<Uint8Array>>,
    options?: TransportCallOptions & {
      mountFrom?: { registry: string; repository: string };
      checked?: boolean;
    },
  ): Promise<"exists" | "mounted" | "uploaded">;
  /** Store a manifest (its blobs and children are already stored), under `tags` if any. */
  putManifest(
    manifest: Manifest,
    tags: string[],
    options?: TransportCallOptions & { root?: boolean },
  ): Promise<void>;
  /** The digest the destination's reference (tag) currently names, if any (for `sync`). */
  currentDigest?(tag: string, options?: TransportCallOptions): Promise<string | undefined>;
  /** Make everything visible (archives are written, layouts' index updated). */
  commit(options?: TransportCallOptions): Promise<void>;
  /** Drop everything not committed. */
  abort(): Promise<void>;
  /** The tag the reference names, if any (the engine tags the root with it). */
  readonly tag: string | undefined;
  /** The digest the reference names, if any: the copied root must have it. */
  readonly digest?: string | undefined;
}
