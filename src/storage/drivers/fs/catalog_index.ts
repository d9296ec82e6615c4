/**
 * The catalog index of the filesystem store: a sorted list of repository names kept in memory and
 * backed by an append-only journal on disk, `<root>/docker/registry/v2/_berth/catalog`, so a page
 * of `GET /v2/_catalog` never walks the repository tree.
 *
 * The journal is a header line then one `+<name>` record per repository, each record written with
 * one `O_APPEND` write (`\n+name\n`: a torn record cannot glue onto the next one). Every process
 * serving the same data directory appends the names it creates and, before answering, reads what
 * others appended since its last look (one `stat`, then only the new bytes).
 *
 * When the journal is missing or has no header (a data directory written by distribution or an
 * older berth) the first catalog request walks the tree once and publishes a fresh journal by
 * rename. Records appended to the old file meanwhile are carried over: the builder keeps the old
 * file open and copies what it holds after the rename, and a writer re-appends when the journal's
 * inode changed under its write. Names whose repository has gone are skipped when a page is read
 * (one `stat` per returned name). Repositories created by another program (distribution) after
 * the journal exists are found by watching folder mtimes (see `NewRepositories`) and recorded.
 *
 * @module
 */
import { isValidName } from "../../../oci/names.ts";
import { dirname, isNotFound, statOrUndefined, writeFileAtomic } from "./atomic.ts";
import { upperBound } from "../../sorted_names.ts";
import type { CatalogSource, RepositoryIndex } from "../../layout/catalog.ts";
import { NewRepositories } from "./new_repositories.ts";
import { concatBytes } from "../../../bytes.ts";

/** How long a walk stands in for a journal that cannot be written. */
const VOLATILE_MS = 30_000;
/** First line of a complete journal. */
const HEADER = "berth-catalog v1";
/** Least time between two looks for repositories other programs created, in ms. */
const LOOK_MS = 250;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The in-memory, journal-backed sorted list of repository names. */
export class CatalogIndex implements RepositoryIndex {
  readonly #path: string;
  readonly #tmp: string;
  readonly #source: CatalogSource;
  #names: string[] = [];
  #set = new Set<string>();
  /**
   * Inode and byte offset of the journal as loaded, or `undefined` before the first load.
   * `volatile` (a time in ms) when the journal could not be written: the names come from a walk
   * kept in memory until then.
   */
  #loaded: { ino: number | null; offset: number; volatile?: number } | undefined;
  /** Names this process appended before it loaded the journal (to append each only once). */
  #noted = new Set<string>();
  /** The load or rebuild in progress, shared by concurrent callers. */
  #refreshing: Promise<void> | undefined;
  /** Finds repositories other programs create (absent: only journal records are seen). */
  readonly #watcher: NewRepositories | undefined;
  #lookedAt = -Infinity;

  /**
   * An index journaled at `path`, writing temporary files in `tmp`; with `repositories` (the
   * local `repositories/` folder) it also finds repositories other programs create there.
   */
  constructor(path: string, tmp: string, source: CatalogSource, repositories?: string) {
    this.#path = path;
    this.#tmp = tmp;
    this.#source = source;
    this.#watcher = repositories === undefined ? undefined : new NewRepositories(repositories);
  }

  /** Record that repository `name` exists (cheap when already known). */
  async note(name: string): Promise<void> {
    if (this.#set.has(name) || this.#noted.has(name)) return;
    try {
      if (this.#loaded) await this.#refresh();
      else await this.#load(false);
      if (this.#set.has(name)) return;
      if (!this.#loaded?.volatile) await this.#append([name]);
    } catch {
      // The journal is derived data: a push never fails for it (a read-only or full disk); the
      // name is kept in memory and the next rebuild's walk finds the repository anyway.
    }
    if (this.#loaded) this.#insert(name);
    else this.#noted.add(name);
  }

  /** Up to `limit` existing repository names sorted after `last`. */
  async page(last: string | undefined, limit: number): Promise<string[]> {
    await this.#refresh();
    await this.#lookForNew();
    const page: string[] = [];
    let after = last;
    while (page.length < limit) {
      // Positions are found again after every await: names may be inserted meanwhile.
      const at = after === undefined ? 0 : upperBound(this.#names, after);
      const batch = this.#names.slice(at, at + limit - page.length);
      if (batch.length === 0) break;
      after = batch.at(-1);
      const present = await Promise.all(batch.map((name) => this.#source.exists(name)));
      batch.forEach((name, i) => present[i] && page.push(name));
    }
    return page;
  }

  /**
   * Walk the tree and publish a fresh journal (also used by garbage collection). When the
   * journal cannot be written (a read-only data directory), the walk is served from memory for a
   * while instead.
   */
  async rebuild(): Promise<void> {
    if (!(await statOrUndefined(dirname(dirname(this.#path))))?.isDirectory) {
      // Nothing stored yet (or the directory is gone): nothing to index, and no folder is made.
      this.#names = [];
      this.#set = new Set();
      this.#loaded = undefined;
      return;
    }
    let walked: string[] | undefined;
    try {
      await Deno.mkdir(dirname(this.#path), { recursive: true });
      // Hold the current journal (created empty when missing) so records appended to it while
      // the tree is walked survive the rename below.
      const old = await Deno.open(this.#path, { read: true, append: true, create: true });
      try {
        walked = await this.#source.walk();
        const fresh = new Set(walked);
        const text = `${HEADER}\n${walked.map((name) => `+${name}\n`).join("")}`;
        await writeFileAtomic(this.#path, encoder.encode(text), this.#tmp);
        const carried = parseRecords(decoder.decode(await readAllFile(old))).names
          .filter((name) => !fresh.has(name));
        if (carried.length > 0) await this.#append(carried);
      } finally {
        old.close();
      }
    } catch {
      const names = [...new Set(walked ?? await this.#source.walk())].sort(compare);
      this.#names = names;
      this.#set = new Set(names);
      for (const name of names) this.#watcher?.know(name);
      this.#loaded = { ino: null, offset: 0, volatile: Date.now() + VOLATILE_MS };
      return;
    }
    this.#loaded = undefined;
    await this.#load(false);
  }

  async #refresh(): Promise<void> {
    while (this.#refreshing) await this.#refreshing;
    this.#refreshing = this.#refreshOnce().finally(() => (this.#refreshing = undefined));
    await this.#refreshing;
  }

  async #refreshOnce(): Promise<void> {
    const loaded = this.#loaded;
    if (loaded?.volatile !== undefined) {
      if (Date.now() < loaded.volatile) return;
      await this.rebuild();
      return;
    }
    const info = await statOrUndefined(this.#path);
    if (!info || !loaded || info.ino !== loaded.ino || info.size < loaded.offset) {
      await this.#load();
      return;
    }
    if (info.size === loaded.offset) return;
    const file = await Deno.open(this.#path, { read: true });
    try {
      await file.seek(loaded.offset, Deno.SeekMode.Start);
      const tail = decoder.decode(await readAllFile(file));
      const end = tail.lastIndexOf("\n") + 1;
      for (const name of parseRecords(tail.slice(0, end)).names) this.#insert(name);
      loaded.offset += encoder.encode(tail.slice(0, end)).byteLength;
    } finally {
      file.close();
    }
  }

  /** Read the whole journal; rebuild it when missing or incomplete (if `rebuild` allows). */
  async #load(rebuild = true): Promise<void> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.#path, { read: true });
    } catch (error) {
      if (!isNotFound(error)) throw error;
      if (rebuild) await this.rebuild();
      return;
    }
    let text: string;
    let ino: number | null;
    try {
      ino = (await file.stat()).ino;
      text = decoder.decode(await readAllFile(file));
    } finally {
      file.close();
    }
    const end = text.lastIndexOf("\n") + 1;
    const records = parseRecords(text.slice(0, end));
    if (!records.complete) {
      if (rebuild) await this.rebuild();
      return;
    }
    this.#names = [...new Set(records.names)].sort(compare);
    this.#set = new Set(this.#names);
    for (const name of this.#names) this.#watcher?.know(name);
    this.#loaded = { ino, offset: encoder.encode(text.slice(0, end)).byteLength };
    this.#noted.clear();
  }

  /** Append records durably; re-append when the journal was replaced under the write. */
  async #append(names: string[]): Promise<void> {
    const bytes = encoder.encode(names.map((name) => `\n+${name}\n`).join(""));
    await Deno.mkdir(dirname(this.#path), { recursive: true });
    for (let attempt = 0; attempt < 10; attempt++) {
      const file = await Deno.open(this.#path, { append: true, create: true });
      try {
        let written = 0;
        while (written < bytes.byteLength) written += await file.write(bytes.subarray(written));
        await file.syncData();
        const mine = (await file.stat()).ino;
        if ((await statOrUndefined(this.#path))?.ino === mine) return;
      } finally {
        file.close();
      }
    }
  }

  /** Add the repositories other programs created since the last look (at most every LOOK_MS). */
  async #lookForNew(): Promise<void> {
    if (!this.#watcher || Date.now() - this.#lookedAt < LOOK_MS) return;
    this.#lookedAt = Date.now();
    const found = await this.#watcher.look((name) => this.#set.has(name));
    const fresh = found.filter((name) => !this.#set.has(name));
    if (fresh.length === 0) return;
    try {
      // Recorded for the other berth processes too (derived data: never fails the request).
      if (this.#loaded && !this.#loaded.volatile) await this.#append(fresh);
    } catch {
      // A read-only data directory: kept in memory only.
    }
    for (const name of fresh) this.#insert(name);
  }

  #insert(name: string): void {
    if (this.#set.has(name)) return;
    this.#watcher?.know(name);
    this.#set.add(name);
    this.#names.splice(upperBound(this.#names, name), 0, name);
  }
}

/** Names in journal text, and whether it starts with the header. */
function parseRecords(text: string): { complete: boolean; names: string[] } {
  const lines = text.split("\n");
  const names: string[] = [];
  for (const line of lines) {
    if (line.startsWith("+") && isValidName(line.slice(1))) names.push(line.slice(1));
  }
  return { complete: lines[0] === HEADER, names };
}

/** Plain code-unit order (byte order for the ASCII names repositories have). */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function readAllFile(file: Deno.FsFile): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buffer = new Uint8Array(1 << 16);
  while (true) {
    const n = await file.read(buffer);
    if (n === null) break;
    chunks.push(buffer.slice(0, n));
    total += n;
  }
  return concatBytes(chunks, total);
}
