/**
 * Tags of a repository: the sorted list, one page at a time.
 *
 * @module
 */
import { RegistryError } from "../errors.ts";
import type { Store } from "../storage/store.ts";
import { upperBound } from "../storage/sorted_names.ts";

/** A page of a sorted list. */
export interface Page {
  /** The entries of the page. */
  entries: string[];
  /** Whether entries remain after the page. */
  more: boolean;
}

/** The tags of repositories. */
export class TagService {
  readonly #store: Store;

  /** Tags over `store`. */
  constructor(store: Store) {
    this.#store = store;
  }

  /** Up to `limit` tags of `name` sorted after `last`; `NAME_UNKNOWN` for an unknown name. */
  async list(name: string, limit: number, last?: string): Promise<Page> {
    const tags = await this.#store.listTags(name);
    if (!tags) throw new RegistryError("NAME_UNKNOWN", { name });
    tags.sort((a, b) => a < b ? -1 : a > b ? 1 : 0);
    const from = last === undefined ? 0 : upperBound(tags, last);
    const entries = tags.slice(from, from + limit);
    return { entries, more: from + entries.length < tags.length };
  }
}
