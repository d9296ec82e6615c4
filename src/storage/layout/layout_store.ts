/**
 * The layout: berth's registry-level {@link Store} drawn as distribution's tree (see `paths.ts`)
 * over any {@link StorageDriver}. It holds no data of its own and assumes no single owner: the
 * catalog and tag pages are read from the tree (through the driver's listings) on every request.
 *
 * Publishing order makes every state a crash can leave valid: a blob's data before any link to
 * it, a link before the tag that names it.
 *
 * @module
 */
import { type Digest, isAlgorithm, tryParseDigest } from "../../oci/digest.ts";
import { type ListOptions, type StorageDriver, WriterBusy } from "../driver.ts";
import type {
  AppendOptions,
  BlobContent,
  BlobInfo,
  ByteRange,
  HealthCheck,
  LinkKind,
  Store,
  UploadInfo,
} from "../store.ts";
import { upperBound } from "../sorted_names.ts";
import { compare, REPOSITORY_MARKERS, RepositoryWalk } from "./catalog.ts";
import { StorePaths } from "./paths.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** The marker folders, sorted (the likely sub-folders of a repository folder). */
const MARKERS: readonly string[] = [...REPOSITORY_MARKERS].sort(compare);
/** Folders listed at once while walking the repository tree. */
const WALK_CONCURRENCY = 16;
/** Options of {@link LayoutStore}. */
export interface LayoutOptions {
  /** Blob GETs redirect to the driver's URLs (object stores), as distribution's `storage.redirect`. */
  redirect?: boolean;
}

/** How long a redirect URL stays valid (distribution's 20 minutes). */
const REDIRECT_SECONDS = 20 * 60;

/** A {@link Store} in distribution's layout over a driver. */
export class LayoutStore implements Store {
  /** The driver underneath. */
  readonly driver: StorageDriver;
  /** The paths of the tree. */
  readonly paths = new StorePaths();
  /** The catalog: the repository tree walked in name order. */
  readonly catalog: RepositoryWalk;
  /** Digests parsed from link contents, by the array's identity (no state beyond the driver's). */
  readonly #parsed = new WeakMap<Uint8Array, Digest | undefined>();
  readonly #redirect: boolean;

  /** The layout over `driver`. */
  constructor(driver: StorageDriver, options: LayoutOptions = {}) {
    this.driver = driver;
    this.#redirect = options.redirect ?? false;
    const repositories = this.paths.repositories;
    // Below the root, folders are repository folders or namespaces: most hold only markers.
    this.catalog = new RepositoryWalk((dir) =>
      dir === ""
        ? this.#sorted(repositories)
        : this.#sorted(`${repositories}/${dir}`, { likelyFolders: MARKERS })
    );
  }

  close(): void {
    this.driver.close();
  }

  // ---- blobs --------------------------------------------------------------------------------

  async statBlob(digest: Digest): Promise<number | undefined> {
    const info = await this.driver.stat(this.paths.blobData(digest));
    return info && !info.isDir ? info.size : undefined;
  }

  async openBlob(digest: Digest, range?: ByteRange): Promise<BlobContent | undefined> {
    const options = range ? { offset: range.start, length: range.end - range.start + 1 } : {};
    const opened = await this.driver.reader(this.paths.blobData(digest), options);
    return opened && { size: opened.size, body: opened.body };
  }

  async readBlob(digest: Digest): Promise<Uint8Array<ArrayBuffer> | undefined> {
    return await this.driver.getContent(this.paths.blobData(digest));
  }

  async putBlob(digest: Digest, bytes: Uint8Array): Promise<void> {
    if ((await this.statBlob(digest)) === bytes.byteLength) return;
    await this.driver.putContent(this.paths.blobData(digest), bytes);
  }

  async deleteBlob(digest: Digest): Promise<void> {
    await this.driver.delete(this.paths.blobDir(digest));
  }

  async *listBlobs(): AsyncIterable<Digest> {
    const blobs = this.paths.blobs;
    for (const alg of await this.#list(blobs)) {
      if (!isAlgorithm(alg)) continue;
      for (const prefix of await this.#list(`${blobs}/${alg}`)) {
        if (!/^[0-9a-f]{2}$/.test(prefix)) continue;
        for (const hex of await this.#list(`${blobs}/${alg}/${prefix}`)) {
          const digest = tryParseDigest(`${alg}:${hex}`);
          if (digest) yield digest;
        }
      }
    }
  }

  async blobUrl(digest: Digest): Promise<string | undefined> {
    if (!this.#redirect || !this.driver.redirectUrl) return undefined;
    return await this.driver.redirectUrl(this.paths.blobData(digest), {
      method: "GET",
      expiresIn: REDIRECT_SECONDS,
    });
  }

  async blobInfo(digest: Digest): Promise<BlobInfo | undefined> {
    const info = await this.driver.stat(this.paths.blobData(digest));
    return info && !info.isDir ? { size: info.size, modifiedAt: info.modifiedAt } : undefined;
  }

  // ---- links --------------------------------------------------------------------------------

  async hasLink(name: string, kind: LinkKind, digest: Digest): Promise<boolean> {
    const info = await this.driver.stat(this.paths.link(name, kind, digest));
    return info !== undefined && !info.isDir;
  }

  async putLink(name: string, kind: LinkKind, digest: Digest): Promise<void> {
    await this.#writeLink(this.paths.link(name, kind, digest), digest);
  }

  async deleteLink(name: string, kind: LinkKind, digest: Digest): Promise<boolean> {
    const link = this.paths.link(name, kind, digest);
    if (!(await this.driver.delete(link))) return false;
    // The folder left empty goes too (a link written into it meanwhile is kept).
    const folder = parent(link);
    if ((await this.driver.list(folder))?.length === 0) await this.driver.delete(folder);
    return true;
  }

  async *listLinks(name: string, kind: LinkKind): AsyncIterable<Digest> {
    const root = this.paths.linkRoot(name, kind);
    for (const alg of await this.#list(root)) {
      if (!isAlgorithm(alg)) continue;
      for (const hex of await this.#list(`${root}/${alg}`)) {
        const digest = tryParseDigest(`${alg}:${hex}`);
        if (digest) yield digest;
      }
    }
  }

  // ---- tags ---------------------------------------------------------------------------------

  async getTag(name: string, tag: string): Promise<Digest | undefined> {
    const bytes = await this.driver.getContent(this.paths.tagCurrent(name, tag));
    if (bytes === undefined) return undefined;
    // Drivers that cache a link hand back the same array while it is unchanged: parse it once.
    if (this.#parsed.has(bytes)) return this.#parsed.get(bytes);
    const digest = tryParseDigest(decoder.decode(bytes).trim());
    this.#parsed.set(bytes, digest);
    return digest;
  }

  async tagModifiedAt(name: string, tag: string): Promise<Date | undefined> {
    const info = await this.driver.stat(this.paths.tagCurrent(name, tag));
    return info && !info.isDir ? info.modifiedAt : undefined;
  }

  async putTag(name: string, tag: string, digest: Digest): Promise<void> {
    await this.#writeLink(this.paths.tagIndex(name, tag, digest), digest);
    await this.driver.putContent(this.paths.tagCurrent(name, tag), encoder.encode(digest.value));
  }

  async deleteTag(name: string, tag: string): Promise<boolean> {
    if (!(await this.driver.delete(this.paths.tagCurrent(name, tag)))) return false;
    await this.driver.delete(this.paths.tag(name, tag));
    return true;
  }

  async listTags(name: string): Promise<string[] | undefined> {
    const tags = await this.driver.list(this.paths.tags(name));
    if (tags) return tags;
    return (await this.hasRepository(name)) ? [] : undefined;
  }

  async tagPage(name: string, last: string | undefined, limit: number) {
    const tags = await this.#sorted(this.paths.tags(name));
    if (!tags) return (await this.hasRepository(name)) ? { entries: [], more: false } : undefined;
    const from = last === undefined ? 0 : upperBound(tags, last);
    // The whole listing is handed over as it is: the same array while the folder is unchanged,
    // so the tags handler can keep its encoded answer.
    const entries = from === 0 && limit >= tags.length
      ? tags
      : tags.slice(from, from + Math.max(0, limit));
    return { entries, more: from + entries.length < tags.length };
  }

  // ---- repositories -------------------------------------------------------------------------

  async hasRepository(name: string): Promise<boolean> {
    const repo = this.paths.repo(name);
    for (const marker of REPOSITORY_MARKERS) {
      if ((await this.driver.stat(`${repo}/${marker}`))?.isDir) return true;
    }
    return false;
  }

  async listRepositories(): Promise<string[]> {
    const names: string[] = [];
    // Breadth first, a few folders listed at once: a tree of 100,000 repositories is mostly
    // waiting on storage, one listing after another. A file's listing is `undefined`: no stats.
    let level: [string, string][] = [[this.paths.repositories, ""]];
    while (level.length > 0) {
      const current = level;
      const next: [string, string][] = [];
      let at = 0;
      const worker = async (): Promise<void> => {
        while (at < current.length) {
          const [dir, prefix] = current[at++]!;
          const entries = await this.#list(dir);
          if (prefix && entries.some((e) => REPOSITORY_MARKERS.has(e))) names.push(prefix);
          for (const entry of entries) {
            if (entry.startsWith("_")) continue;
            next.push([`${dir}/${entry}`, prefix ? `${prefix}/${entry}` : entry]);
          }
        }
      };
      await Promise.all(Array.from({ length: WALK_CONCURRENCY }, worker));
      level = next;
    }
    return names.sort();
  }

  repositoryPage(last: string | undefined, limit: number): Promise<string[]> {
    return this.catalog.page(last, limit);
  }

  repositories(last?: string): AsyncIterable<string> {
    return this.catalog.after(last);
  }

  // ---- referrers ----------------------------------------------------------------------------

  async putReferrer(name: string, subject: Digest, referrer: Digest): Promise<void> {
    await this.#writeLink(this.paths.referrer(name, subject, referrer), referrer);
  }

  async deleteReferrer(name: string, subject: Digest, referrer: Digest): Promise<boolean> {
    const link = this.paths.referrer(name, subject, referrer);
    if (!(await this.driver.delete(parent(link)))) return false;
    // Drop the folders left empty (object stores have none to drop).
    const folder = this.paths.referrers(name, subject);
    for (const dir of [`${folder}/${referrer.algorithm}`, folder]) {
      const left = await this.driver.list(dir);
      if (left === undefined || left.length > 0) break;
      await this.driver.delete(dir);
    }
    return true;
  }

  async *listReferrers(name: string, subject: Digest): AsyncIterable<Digest> {
    const folder = this.paths.referrers(name, subject);
    for (const alg of await this.#list(folder)) {
      if (!isAlgorithm(alg)) continue;
      for (const hex of await this.#list(`${folder}/${alg}`)) {
        const digest = tryParseDigest(`${alg}:${hex}`);
        if (digest) yield digest;
      }
    }
  }

  // ---- uploads ------------------------------------------------------------------------------

  async createUpload(name: string, id: string, startedAt: Date): Promise<void> {
    const writer = await this.driver.writer(this.paths.uploadData(name, id));
    await writer!.close();
    await this.driver.putContent(
      this.paths.uploadStartedAt(name, id),
      encoder.encode(startedAt.toISOString()),
    );
  }

  async statUpload(name: string, id: string): Promise<UploadInfo | undefined> {
    const data = this.paths.uploadData(name, id);
    const writer = await this.driver.writer(data, { append: true });
    if (!writer) return undefined;
    const size = writer.size;
    await writer.close();
    const text = await this.driver.getContent(this.paths.uploadStartedAt(name, id));
    const started = text === undefined ? NaN : Date.parse(decoder.decode(text).trim());
    if (!Number.isNaN(started)) return { size, startedAt: new Date(started) };
    return { size, startedAt: (await this.driver.stat(data))?.modifiedAt ?? new Date(0) };
  }

  async appendUpload(
    name: string,
    id: string,
    offset: number,
    body: ReadableStream<Uint8Array>,
    options: AppendOptions = {},
  ): Promise<number> {
    const writer = await this.driver.writer(this.paths.uploadData(name, id), { append: true });
    if (!writer || writer.size !== offset) {
      await writer?.close();
      await body.cancel().catch(() => {});
      if (!writer) throw new Error(`upload ${id} is gone`);
      // Another request wrote to it since its size was read.
      throw new WriterBusy(this.paths.uploadData(name, id));
    }
    try {
      return await writer.write(body, options);
    } finally {
      await writer.close();
    }
  }

  async followUpload(
    name: string,
    id: string,
    offset: number,
  ): Promise<ReadableStream<Uint8Array> | undefined> {
    if (!this.driver.readsPendingWrites) return undefined;
    return (await this.driver.reader(this.paths.uploadData(name, id), { offset }))?.body;
  }

  async readUpload(name: string, id: string): Promise<ReadableStream<Uint8Array> | undefined> {
    const writer = await this.driver.writer(this.paths.uploadData(name, id), { append: true });
    if (!writer) return undefined;
    try {
      return await writer.readBack();
    } finally {
      await writer.close();
    }
  }

  async commitUpload(name: string, id: string, digest: Digest): Promise<void> {
    const data = this.paths.uploadData(name, id);
    const writer = await this.driver.writer(data, { append: true });
    if (!writer) throw new Error(`upload ${id} is gone`);
    await writer.commit();
    if (!(await this.driver.move(data, this.paths.blobData(digest)))) {
      throw new Error(`upload ${id} is gone`);
    }
    await this.putLink(name, "layer", digest);
    await this.driver.delete(this.paths.upload(name, id));
  }

  async deleteUpload(name: string, id: string): Promise<boolean> {
    const writer = await this.driver.writer(this.paths.uploadData(name, id), { append: true });
    await writer?.cancel();
    return (await this.driver.delete(this.paths.upload(name, id))) || writer !== undefined;
  }

  async listUploads(name: string): Promise<{ id: string; startedAt: Date }[]> {
    const sessions: { id: string; startedAt: Date }[] = [];
    for (const id of await this.#list(this.paths.uploads(name))) {
      const info = await this.statUpload(name, id).catch(() => undefined);
      if (info) sessions.push({ id, startedAt: info.startedAt });
    }
    return sessions;
  }

  // ---- health -------------------------------------------------------------------------------

  async checkHealth(write: boolean): Promise<HealthCheck> {
    if (this.driver.health) {
      const storage = await this.driver.health(write);
      return { ok: storage === "ok", checks: { storage } };
    }
    const checks: Record<string, string> = {};
    let ok = true;
    try {
      const root = await this.driver.stat("/");
      if (!root?.isDir) throw new Error("the storage root is missing or not a folder");
      checks.storage = "ok";
    } catch (error) {
      ok = false;
      checks.storage = `unreachable: ${(error as Error).message}`;
    }
    if (ok && write) {
      const probe = `${this.paths.tmp}/healthz-${crypto.randomUUID()}`;
      try {
        await this.driver.putContent(probe, encoder.encode("ok"));
        checks.writable = "ok";
      } catch (error) {
        ok = false;
        checks.writable = `failed: ${(error as Error).message}`;
      } finally {
        await this.driver.delete(probe).catch(() => {});
      }
    }
    return { ok, checks };
  }

  async #writeLink(path: string, digest: Digest): Promise<void> {
    const current = await this.driver.getContent(path);
    if (current !== undefined && decoder.decode(current) === digest.value) return;
    await this.driver.putContent(path, encoder.encode(digest.value));
  }

  /**
   * Children of a folder sorted in code-unit order (read-only), `undefined` when absent; at once
   * when the driver answers at once (a kept listing).
   */
  #sorted(
    path: string,
    options?: ListOptions,
  ): readonly string[] | undefined | Promise<readonly string[] | undefined> {
    if (this.driver.listSorted) return this.driver.listSorted(path, options);
    return this.driver.list(path).then((names) => names?.sort(compare));
  }

  /** Children of a folder, `[]` when absent. */
  async #list(path: string): Promise<string[]> {
    return (await this.driver.list(path)) ?? [];
  }
}

function parent(path: string): string {
  return path.slice(0, path.lastIndexOf("/"));
}
