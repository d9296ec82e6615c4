/**
 * The copy engine: everything a manifest references (an index with all its children, or one
 * platform of it; image configs and layers; referrers, recursively, when asked) from any
 * {@link ImageSource} to any {@link ImageDestination}, keeping every digest. Blobs go first,
 * in parallel and verified while they stream; manifests follow children-first with their exact
 * bytes, the tagged root last; the destination commits only after all of it succeeded.
 *
 * @module
 */
import { ClientError } from "../client/errors.ts";
import { verifying } from "../client/verify.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { DOCKER_FOREIGN_LAYER, DOCKER_SCHEMA1, isIndexType } from "../oci/media_types.ts";
import { checkManifestDigest } from "../transports/docker.ts";
import type { BlobInfo, ImageDestination, ImageSource, Manifest } from "../transports/types.ts";
import { formatPlatform, hostPlatform, type Platform, selectPlatform } from "./platform.ts";
import { NO_PROGRESS, type ProgressSink } from "./progress.ts";

/** Options of {@link copyImage}. */
export interface CopyOptions {
  /** Copy only this platform of an index (its manifest unchanged). */
  platform?: Platform;
  /** Copy referrers of every copied manifest, recursively. */
  referrers?: boolean;
  /** Blobs transferred in parallel (default 4). */
  jobs?: number;
  /** Tags for the root manifest (default: the destination reference's tag). */
  tags?: string[];
  /** Interrupts the copy; nothing partial becomes visible. */
  signal?: AbortSignal;
  /** Progress events. */
  progress?: ProgressSink;
}

/** What a copy did. */
export interface CopyResult {
  /** Digest of the root manifest copied. */
  digest: string;
  /** Its media type. */
  mediaType: string;
  /** Tags it was written under. */
  tags: string[];
  /** Manifests written (root, children, referrers). */
  manifests: number;
  /** Referrer manifests among them. */
  referrers: number;
  /** Blobs: total, transferred, already there, mounted; bytes transferred. */
  blobs: { total: number; copied: number; existing: number; mounted: number; bytes: number };
}

interface ManifestDoc {
  schemaVersion?: number;
  mediaType?: string;
  manifests?: Descriptor[];
  config?: Descriptor;
  layers?: Descriptor[];
}

function parseDoc(manifest: Manifest, name: string): ManifestDoc {
  if (DOCKER_SCHEMA1.includes(manifest.mediaType)) throw schema1(name);
  let doc: ManifestDoc;
  try {
    doc = JSON.parse(new TextDecoder().decode(manifest.bytes));
  } catch {
    throw new ClientError("invalid", `${name}: manifest ${manifest.digest} is not JSON`);
  }
  if (doc.schemaVersion === 1) throw schema1(name);
  return doc;
}

function schema1(name: string): ClientError {
  return new ClientError(
    "unsupported",
    `${name}: Docker schema 1 images are not supported (convert it with a schema 2 client first)`,
  );
}

/** Copy the image `source` names to `destination`. */
export async function copyImage(
  source: ImageSource,
  destination: ImageDestination,
  options: CopyOptions = {},
): Promise<CopyResult> {
  const progress = options.progress ?? NO_PROGRESS;
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  const signal = controller.signal;
  try {
    const result = await run(source, destination, options, progress, controller);
    await destination.commit({ signal });
    return result;
  } catch (error) {
    controller.abort(error);
    await destination.abort();
    if (options.signal?.aborted) {
      throw new ClientError("aborted", `${destination.name}: copy interrupted, nothing written`);
    }
    throw error;
  } finally {
    progress.finish();
    options.signal?.removeEventListener("abort", onAbort);
  }
}

async function run(
  source: ImageSource,
  destination: ImageDestination,
  options: CopyOptions,
  progress: ProgressSink,
  controller: AbortController,
): Promise<CopyResult> {
  const signal = controller.signal;
  const name = source.name;
  // The destination gets ready while the source's manifests are read; its failure is reported
  // when the blobs need it.
  const prepared = destination.prepare?.({ signal }).then(() => undefined, (error) => ({ error }));
  let root = await source.getManifest(undefined, { signal });
  let rootDoc = parseDoc(root, name);
  if (isIndexType(root.mediaType) && (options.platform || !destination.capabilities.indexes)) {
    const wanted = options.platform ?? hostPlatform();
    const entry = selectPlatform(rootDoc.manifests ?? [], wanted);
    if (!entry) {
      throw new ClientError(
        "not-found",
        `${name}: no image for platform ${formatPlatform(wanted)}`,
      );
    }
    root = await fetchManifest(source, entry.digest, signal);
    rootDoc = parseDoc(root, name);
  }

  if (destination.digest !== undefined && destination.digest !== root.digest) {
    throw new ClientError(
      "invalid",
      `${destination.name}: the copied image is ${root.digest}, not ${destination.digest}`,
    );
  }
  const ordered: Manifest[] = [];
  const seen = new Set<string>();
  const blobs = new Map<string, BlobInfo>();
  let referrerCount = 0;
  const visit = async (manifest: Manifest, doc: ManifestDoc): Promise<void> => {
    if (seen.has(manifest.digest)) return;
    seen.add(manifest.digest);
    if (isIndexType(manifest.mediaType) || Array.isArray(doc.manifests)) {
      for (const child of doc.manifests ?? []) {
        if (seen.has(child.digest)) continue;
        const fetched = await fetchManifest(source, child.digest, signal);
        await visit(fetched, parseDoc(fetched, name));
      }
    } else {
      for (const blob of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) {
        if (blob.mediaType === DOCKER_FOREIGN_LAYER) continue;
        if (!blobs.has(blob.digest)) {
          blobs.set(blob.digest, {
            digest: blob.digest,
            size: blob.size,
            mediaType: blob.mediaType,
          });
        }
      }
    }
    ordered.push(manifest);
  };
  await visit(root, rootDoc);
  if (options.referrers && destination.capabilities.referrers) {
    const queue = [...ordered];
    while (queue.length > 0) {
      const subject = queue.shift()!;
      for (const referrer of await source.referrers(subject.digest, { signal })) {
        if (seen.has(referrer.digest)) continue;
        const fetched = await fetchManifest(source, referrer.digest, signal);
        const before = ordered.length;
        await visit(fetched, parseDoc(fetched, name));
        referrerCount++;
        queue.push(...ordered.slice(before));
      }
    }
  }

  const unprepared = await prepared;
  if (unprepared) throw unprepared.error;
  const stats = { total: blobs.size, copied: 0, existing: 0, mounted: 0, bytes: 0 };
  const list = [...blobs.values()];
  const jobs = Math.max(1, options.jobs ?? 4);
  const verifiedThere = destination.capabilities.verifiesDigests;
  progress.plan(list);
  // Existence checks run `jobs` blobs ahead of the transfers: a transfer finds its answer ready
  // instead of waiting a round trip for it, and a destination that learns meanwhile to check
  // more cheaply inside putBlob (a registry that mounts from the same repository) is asked later.
  const present: Promise<boolean | undefined>[] = [];
  const check = (index: number) => {
    if (present[index] || index >= list.length) return;
    const checked = destination.hasBlob(list[index]!, { signal });
    checked.catch(() => {}); // awaited by its transfer, unless an earlier one failed
    present[index] = checked;
  };
  await parallel(list, jobs, controller, async (blob, index) => {
    for (let ahead = index; ahead <= index + jobs; ahead++) check(ahead);
    const found = await present[index]!;
    if (found) {
      stats.existing++;
      progress.blobDone(blob.digest, "exists");
      return;
    }
    const open = async () => {
      progress.blobStart(blob);
      const stream = await source.getBlob(blob, { signal });
      // A destination that checks the digest itself (a registry, before the blob is visible;
      // its upload's Content-Length bounds the size) gets the bytes without a second hashing.
      if (verifiedThere && progress === NO_PROGRESS) return stream;
      return verifying(stream, blob.digest, blob.size, {
        onBytes: (n) => progress.blobBytes(blob.digest, n),
        hash: !verifiedThere,
      });
    };
    const outcome = await destination.putBlob(blob, open, {
      signal,
      checked: found === false,
      ...(source.location && { mountFrom: source.location }),
    });
    if (outcome === "mounted") stats.mounted++;
    else if (outcome === "exists") stats.existing++;
    else {
      stats.copied++;
      stats.bytes += blob.size;
    }
    progress.blobDone(blob.digest, outcome);
  });

  const tags = options.tags ?? (destination.tag === undefined ? [] : [destination.tag]);
  for (const manifest of ordered) {
    if (signal.aborted) throw signal.reason;
    const isRoot = manifest === root;
    await destination.putManifest(manifest, isRoot ? tags : [], { signal, root: isRoot });
    progress.manifest(manifest.digest);
  }
  return {
    digest: root.digest,
    mediaType: root.mediaType,
    tags,
    manifests: ordered.length,
    referrers: referrerCount,
    blobs: stats,
  };
}

async function fetchManifest(
  source: ImageSource,
  digest: string,
  signal: AbortSignal,
): Promise<Manifest> {
  const manifest = await source.getManifest(digest, { signal });
  checkManifestDigest(manifest.bytes, digest);
  return { ...manifest, digest };
}

/** Run `work` over `items` with at most `jobs` at once; the first failure aborts the rest. */
async function parallel<T>(
  items: T[],
  jobs: number,
  controller: AbortController,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  const signal = controller.signal;
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      if (signal.aborted) {
        failure ??= { error: signal.reason };
        return;
      }
      const index = next++;
      try {
        await work(items[index]!, index);
      } catch (error) {
        if (!failure) {
          failure = { error };
          controller.abort(error);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, items.length) }, worker));
  if (failure) throw failure.error;
}
