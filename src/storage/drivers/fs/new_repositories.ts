/**
 * `NewRepositories`: finds repositories another program (distribution on the same data
 * directory) created, without walking the tree: a folder's mtime changes when an entry is added
 * to it, so only the folders that can gain a repository are watched — the `repositories/` root
 * and every folder above a known repository (`library` for `library/app`) — with one `stat` each
 * per look; only a folder that changed is listed, and only new sub-folders are walked.
 *
 * A folder that is not a repository yet (distribution creates `name/` then `name/_layers`) is
 * watched until it becomes one. A repository created inside a leaf repository's own folder
 * (`app/v2` next to `app/_layers`) is not seen this way (the next rebuild finds it).
 *
 * @module
 */
import { listDir } from "./atomic.ts";
import { SETTLE_MS, statSyncOrUndefined } from "./listing_cache.ts";

/** Folders whose presence makes a folder a repository. */
const MARKERS: readonly string[] = ["_layers", "_manifests", "_uploads"];

/** Watches the repository tree under one local `repositories/` folder. */
export class NewRepositories {
  readonly #root: string;
  /** Watched folders (relative name, `""` for the root) and the mtime last seen, NaN if none. */
  readonly #seen = new Map<string, number>([["", NaN]]);

  /** A watcher of the local folder `root` (the layout's `repositories/`). */
  constructor(root: string) {
    this.#root = root;
  }

  /** Watch the folders above a known repository name. */
  know(name: string): void {
    let at = name.indexOf("/");
    while (at > 0) {
      const prefix = name.slice(0, at);
      if (!this.#seen.has(prefix)) this.#seen.set(prefix, NaN);
      at = name.indexOf("/", at + 1);
    }
  }

  /**
   * Repositories that appeared in watched folders since the last look, other than those `known`
   * says the caller has.
   */
  async look(known: (name: string) => boolean): Promise<string[]> {
    const found: string[] = [];
    for (const [dir, seen] of [...this.#seen]) {
      const info = statSyncOrUndefined(this.#local(dir));
      if (!info?.isDirectory) continue;
      const mtime = info.mtime?.getTime() ?? NaN;
      if (mtime === seen) continue;
      this.#record(dir, mtime);
      // A watched folder may have become a repository itself (its `_layers` was added).
      const own = dir && !known(dir) ? await listDir(this.#local(dir)) : [];
      if (own.some((c) => c.isDirectory && MARKERS.includes(c.name))) found.push(dir);
      await this.#scan(dir, known, found);
    }
    return found;
  }

  /** List `dir`: new repositories are found, new other folders watched and scanned. */
  async #scan(dir: string, known: (name: string) => boolean, found: string[]): Promise<void> {
    for (const entry of await listDir(this.#local(dir))) {
      if (!entry.isDirectory || entry.name.startsWith("_")) continue;
      const name = dir ? `${dir}/${entry.name}` : entry.name;
      // Known repositories and watched folders are not listed again.
      if (known(name) || this.#seen.has(name)) continue;
      const local = this.#local(name);
      const before = statSyncOrUndefined(local);
      const children = await listDir(local);
      if (children.some((c) => c.isDirectory && MARKERS.includes(c.name))) found.push(name);
      if (children.some((c) => c.isDirectory && !c.name.startsWith("_"))) {
        // A new namespace (or a repository with repositories below): watch and scan it.
        this.#record(name, before?.mtime?.getTime() ?? NaN);
        await this.#scan(name, known, found);
      } else if (!found.includes(name)) {
        // Not a repository yet: watched until it becomes one.
        this.#record(name, before?.mtime?.getTime() ?? NaN);
      }
    }
  }

  /** Remember a folder's mtime; one changed in the last tick stays unseen (looked at again). */
  #record(dir: string, mtime: number): void {
    // Entries added in the same clock tick as the last one could leave the mtime equal.
    this.#seen.set(dir, Date.now() - mtime > SETTLE_MS ? mtime : NaN);
  }

  #local(dir: string): string {
    return dir ? `${this.#root}/${dir}` : this.#root;
  }
}
