/**
 * The catalog's index of repository names, as the layout uses it, and the two indexes that work
 * over any driver. (The filesystem has a third, journal-backed one shared safely by processes:
 * `drivers/fs/catalog_index.ts`.)
 *
 * @module
 */
import { upperBound } from "../sorted_names.ts";

/** What an index needs from the layout. */
export interface CatalogSource {
  /** Every repository name, sorted, by walking the tree (authoritative, slow). */
  walk(): Promise<string[]>;
  /** Whether a repository exists now. */
  exists(name: string): Promise<boolean>;
}

/** A sorted index of repository names that serves catalog pages. */
export interface RepositoryIndex {
  /** Record that repository `name` exists (cheap when already known). */
  note(name: string): Promise<void>;
  /** Up to `limit` existing repository names sorted after `last`. */
  page(last: string | undefined, limit: number): Promise<string[]>;
  /** Forget what is kept and read the tree again (after garbage collection). */
  rebuild(): Promise<void>;
}

/**
 * Shared storage (replicas over one bucket): every page walks the tree, so a repository created
 * by any process is listed at once. Costs one walk per page.
 */
export class WalkingIndex implements RepositoryIndex {
  readonly #source: CatalogSource;

  /** An index reading `source` on every page. */
  constructor(source: CatalogSource) {
    this.#source = source;
  }

  note(): Promise<void> {
    return Promise.resolve();
  }

  async page(last: string | undefined, limit: number): Promise<string[]> {
    const names = await this.#source.walk();
    const at = last === undefined ? 0 : upperBound(names, last);
    return names.slice(at, at + limit);
  }

  rebuild(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Single-owner storage (one process owns the data, e.g. the memory driver): the tree is walked
 * once, then the names this process creates are added in memory. Repositories another process
 * creates are NOT seen until {@link rebuild}: never use it where storage is shared.
 */
export class OwnedIndex implements RepositoryIndex {
  readonly #source: CatalogSource;
  #names: string[] | undefined;
  #set = new Set<string>();
  #loading: Promise<void> | undefined;

  /** An index over `source`, walked on first use. */
  constructor(source: CatalogSource) {
    this.#source = source;
  }

  async note(name: string): Promise<void> {
    if (this.#set.has(name)) return;
    await this.#load();
    if (this.#set.has(name)) return;
    this.#set.add(name);
    this.#names!.splice(upperBound(this.#names!, name), 0, name);
  }

  async page(last: string | undefined, limit: number): Promise<string[]> {
    await this.#load();
    const page: string[] = [];
    let after = last;
    while (page.length < limit) {
      const names = this.#names!;
      const at = after === undefined ? 0 : upperBound(names, after);
      const batch = names.slice(at, at + limit - page.length);
      if (batch.length === 0) break;
      after = batch.at(-1);
      const present = await Promise.all(batch.map((name) => this.#source.exists(name)));
      batch.forEach((name, i) => present[i] && page.push(name));
    }
    return page;
  }

  async rebuild(): Promise<void> {
    this.#names = undefined;
    this.#set = new Set();
    await this.#load();
  }

  async #load(): Promise<void> {
    if (this.#names) return;
    this.#loading ??= this.#source.walk().then((names) => {
      const all = new Set([...names, ...this.#set]);
      this.#names = [...all].sort(compare);
      this.#set = all;
    }).finally(() => (this.#loading = undefined));
    await this.#loading;
  }
}

/** Plain code-unit order (byte order for the ASCII names repositories have). */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
