/**
 * The catalog: repository names, sorted, one page at a time, read from the store's index (never a
 * walk of the tree), filtered to what the caller may see.
 *
 * @module
 */
import type { Store } from "../storage/store.ts";
import type { Page } from "./tags.ts";

/** The repositories of a registry. */
export class CatalogService {
  readonly #store: Store;

  /** The catalog over `store`. */
  constructor(store: Store) {
    this.#store = store;
  }

  /** Up to `limit` repository names sorted after `last` for which `visible` holds. */
  async list(limit: number, last: string | undefined, visible: (name: string) => boolean) {
    const want = limit + 1;
    const found: string[] = [];
    let after = last;
    while (limit > 0 && found.length < want) {
      const batch = await this.#store.repositoryPage(after, want);
      found.push(...batch.filter(visible));
      if (batch.length < want) break;
      after = batch[batch.length - 1];
    }
    return { entries: found.slice(0, limit), more: found.length > limit } satisfies Page;
  }
}
