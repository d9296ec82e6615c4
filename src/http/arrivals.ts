/**
 * `Arrivals`: how many reads berth's HTTP server has completed on client connections. The
 * filesystem store's tag epoch (src/storage/drivers/fs/tag_epoch.ts) reads its file again only
 * once this count has moved, so the requests that came in together share one read.
 *
 * @module
 */
import type { ReadCount } from "../storage/drivers/fs/tag_epoch.ts";

/** The read count of one server. */
export class Arrivals implements ReadCount {
  #reads = 0;

  /** Reads completed so far. */
  get reads(): number {
    return this.#reads;
  }

  /** Note a completed read (call it before the bytes are looked at). */
  note(): void {
    this.#reads++;
  }
}
