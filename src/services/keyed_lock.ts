/**
 * A lock per key: operations on the same key run one after another, others run freely.
 *
 * @module
 */

/** Serializes async work per key (e.g. per upload session). */
export class KeyedLock {
  #tails = new Map<string, Promise<unknown>>();

  /** Run `work` once every earlier `work` for `key` has settled. */
  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const current = previous.then(work, work);
    const tail = current.catch(() => {});
    this.#tails.set(key, tail);
    try {
      return await current;
    } finally {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}
