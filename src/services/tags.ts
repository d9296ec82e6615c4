/**
 * Tags of a repository: the sorted list, one page at a time.
 *
 * @module
 */
import { RegistryError } from "../errors.ts";
import type { Page, Store } from "../storage/store.ts";

export type { Page };

/** The tags of repositories. */
export class TagService {
  readonly #store: Store;

  /** Tags over `store`. */
  constructor(store: Store) {
    this.#store = store;
  }

  /**
   * Up to `limit` tags of `name` sorted after `last`; `NAME_UNKNOWN` for an unknown name. The
   * store keeps a large folder's sorted listing while it is unchanged, so a page costs a lookup
   * and a slice, not a read of every tag.
   */
  async list(name: string, limit: number, last?: string): Promise<Page> {
    const page = await this.#store.tagPage(name, last, limit);
    if (!page) throw new RegistryError("NAME_UNKNOWN", { name });
    return page;
  }
}
