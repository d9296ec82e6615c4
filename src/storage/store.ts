/**
 * The registry-level storage interface the services use: a global content-addressed blob store,
 * per-repository links (layers and manifest revisions), tags, referrers, the catalog and upload
 * sessions. `LayoutStore` (src/storage/layout/) implements it over any `StorageDriver`
 * (src/storage/driver.ts); `open_store.ts` builds one from the configuration.
 *
 * Absence is `undefined` (or `false`); only real I/O failures throw.
 *
 * @module
 */
import type { Digest } from "../oci/digest.ts";
import { type ByteObserver, SizeMismatch, type WriteOptions, WriterBusy } from "./driver.ts";

const UPLOAD_ID = /^[A-Za-z0-9-]{1,64}$/;

/** Whether `id` has the shape of an upload session id every store accepts. */
export function isUploadId(id: string): boolean {
  return UPLOAD_ID.test(id);
}

/** Which link set of a repository: blobs (`_layers`) or manifest revisions (`_manifests/revisions`). */
export type LinkKind = "layer" | "manifest";

/** An inclusive byte range. */
export interface ByteRange {
  /** First byte. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

/** An opened blob: its full size and a stream of the requested bytes. */
export interface BlobContent {
  /** Size of the whole blob. */
  size: number;
  /** The bytes requested (the whole blob, or the range). */
  body: ReadableStream<Uint8Array>;
}

/** What is known about an upload session. */
export interface UploadInfo {
  /** Bytes received so far. */
  size: number;
  /** When the session was opened. */
  startedAt: Date;
}

/** Size and last modification time of a stored blob. */
export interface BlobInfo {
  /** Size in bytes. */
  size: number;
  /** When its bytes were last written (garbage collection spares young blobs). */
  modifiedAt: Date;
}

/** Options of {@link Store.appendUpload}: what a driver writer takes (observe, expected length, abort, keep a prefix). */
export type AppendOptions = WriteOptions;

export { SizeMismatch, WriterBusy };
export type { ByteObserver };

/** A page of a sorted list. */
export interface Page {
  /**
   * The entries of the page; may be the store's own kept listing (the same array while the
   * folder is unchanged), so never change it.
   */
  entries: readonly string[];
  /** Whether entries remain after the page. */
  more: boolean;
}

/** What a store's health check found. */
export interface HealthCheck {
  /** Whether the store is usable. */
  ok: boolean;
  /** Each check (`storage`, `writable`) and its result (`ok` or why not). */
  checks: Record<string, string>;
}

/** The storage interface of berth. */
export interface Store {
  /** Release what the store holds open (it may be used again after, reopening it). */
  close(): void;
  /** Size of a blob in the global store, or `undefined`. */
  statBlob(digest: Digest): Promise<number | undefined>;
  /** Open a blob for streaming, whole or one range (already checked against its size). */
  openBlob(digest: Digest, range?: ByteRange): Promise<BlobContent | undefined>;
  /** Read a small blob whole, or `undefined` when absent. */
  readBlob(digest: Digest): Promise<Uint8Array<ArrayBuffer> | undefined>;
  /** Store small content (a manifest) whose digest the caller has verified; atomic. */
  putBlob(digest: Digest, bytes: Uint8Array): Promise<void>;
  /** Remove a blob from the global store (garbage collection). */
  deleteBlob(digest: Digest): Promise<void>;
  /** Every blob in the global store. */
  listBlobs(): AsyncIterable<Digest>;
  /** Size and modification time of a blob, or `undefined`. */
  blobInfo(digest: Digest): Promise<BlobInfo | undefined>;

  /** Whether the repository links `digest` in the given set. */
  hasLink(name: string, kind: LinkKind, digest: Digest): Promise<boolean>;
  /** Link `digest` into the repository (idempotent). */
  putLink(name: string, kind: LinkKind, digest: Digest): Promise<void>;
  /** Unlink `digest` from the repository; `false` when it was not linked. */
  deleteLink(name: string, kind: LinkKind, digest: Digest): Promise<boolean>;
  /** Every digest linked in the given set of the repository. */
  listLinks(name: string, kind: LinkKind): AsyncIterable<Digest>;

  /** The digest a tag points at, or `undefined`. */
  getTag(name: string, tag: string): Promise<Digest | undefined>;
  /** Point a tag at a digest (atomic). */
  putTag(name: string, tag: string, digest: Digest): Promise<void>;
  /** When a tag was last pointed at a digest (its last push), or `undefined` when absent. */
  tagModifiedAt(name: string, tag: string): Promise<Date | undefined>;
  /** Remove a tag; `false` when it did not exist. */
  deleteTag(name: string, tag: string): Promise<boolean>;
  /** The repository's tags (unsorted), or `undefined` when the repository is unknown. */
  listTags(name: string): Promise<string[] | undefined>;
  /**
   * Up to `limit` of the repository's tags sorted after `last` (code-unit order), or `undefined`
   * when the repository is unknown.
   */
  tagPage(name: string, last: string | undefined, limit: number): Promise<Page | undefined>;
  /** Whether the repository exists. */
  hasRepository(name: string): Promise<boolean>;
  /** Every repository name, sorted (walks everything: for maintenance, not for requests). */
  listRepositories(): Promise<string[]>;
  /**
   * Up to `limit` repository names sorted after `last` (the catalog): the cost follows the page
   * and the folders on the way to it, not the number of repositories.
   */
  repositoryPage(last: string | undefined, limit: number): Promise<string[]>;
  /** Repository names sorted after `last`, read as they are consumed (stop early to save work). */
  repositories(last?: string): AsyncIterable<string>;
  /**
   * A URL the client may fetch a blob from directly (a presigned object-store URL; `GET` only),
   * or `undefined` when the registry streams it itself.
   */
  blobUrl?(digest: Digest): Promise<string | undefined>;
  /** Whether the storage is reachable and, when `write`, takes a durable write. */
  checkHealth(write: boolean): Promise<HealthCheck>;

  /** Record that manifest `referrer` of repository `name` has `subject` as its subject. */
  putReferrer(name: string, subject: Digest, referrer: Digest): Promise<void>;
  /** Forget a recorded referrer; `false` when it was not recorded. */
  deleteReferrer(name: string, subject: Digest, referrer: Digest): Promise<boolean>;
  /** Every referrer recorded for `subject` in `name` (cost in the number of referrers). */
  listReferrers(name: string, subject: Digest): AsyncIterable<Digest>;

  /** Open a new, empty upload session. */
  createUpload(name: string, id: string, startedAt: Date): Promise<void>;
  /** State of an upload session, or `undefined`. */
  statUpload(name: string, id: string): Promise<UploadInfo | undefined>;
  /**
   * Append a stream at `offset` (which must be the session's current size); returns the new size.
   * On failure the session is cut back to `offset`.
   */
  appendUpload(
    name: string,
    id: string,
    offset: number,
    body: ReadableStream<Uint8Array>,
    options?: AppendOptions,
  ): Promise<number>;
  /**
   * The bytes of an upload still being appended to, from `offset` (as far as they reached storage
   * when it is opened), or `undefined` when the storage cannot show them before the commit (S3)
   * or the upload is gone. Does not disturb the writer (a pull-through fill is read this way).
   */
  followUpload?(
    name: string,
    id: string,
    offset: number,
  ): Promise<ReadableStream<Uint8Array> | undefined>;
  /** Stream an upload's bytes received so far (to re-hash after a restart). */
  readUpload(name: string, id: string): Promise<ReadableStream<Uint8Array> | undefined>;
  /**
   * Make an upload's bytes the blob `digest` (verified by the caller) durably, link it into the
   * repository, and remove the session.
   */
  commitUpload(name: string, id: string, digest: Digest): Promise<void>;
  /** Remove an upload session; `false` when it did not exist. */
  deleteUpload(name: string, id: string): Promise<boolean>;
  /** Every open upload session of a repository. */
  listUploads(name: string): Promise<{ id: string; startedAt: Date }[]>;
}
