/**
 * `TagEpoch`: a number that every berth process sharing a data directory sees change when any of
 * them moves or deletes a tag. It is the length of `_berth/tag-changes`, which grows by one byte
 * after each change (appended after the tag's link file is in place).
 *
 * Reading it is one `lseek` on a descriptor held open, where checking a tag's link file is a
 * `stat` of a twelve-level path (figures: bench/measurements.md). So a cached tag read after the
 * epoch it was checked at is still valid without touching its file. Programs other than berth do not bump the epoch: the link cache still
 * checks every entry's file at least once a second (see `LinkCache`).
 *
 * The order makes it safe: a writer bumps after its link is renamed into place; a reader takes the
 * epoch before it checks the link. A cache entry checked at epoch `e` is therefore out of date only
 * if a change finished after that check, and that change made the epoch larger than `e`.
 *
 * @module
 */
import { dirname, isNotFound } from "./atomic.ts";

/** How often the open descriptor is checked against the path (the file replaced or removed). */
const RECHECK_MS = 1000;

/**
 * How many reads berth's HTTP server has completed on client connections (src/http/arrivals.ts).
 * A request is read before it is handled, so an epoch read when this count was `n` is still
 * current for every request whose bytes came in by then: until the count moves, the epoch is
 * not read again.
 */
export interface ReadCount {
  /** Reads completed so far. */
  readonly reads: number;
}

const ONE_BYTE = new Uint8Array([0x2b]);

/** The tag epoch of one data directory. */
export class TagEpoch {
  readonly #path: string;
  #file: Deno.FsFile | undefined;
  #ino: number | null = null;
  #checkedAt = -Infinity;
  #broken = false;
  readonly #arrivals: ReadCount | undefined;
  readonly #now: () => number;
  /** The last epoch read, the read count and the millisecond it was read at. */
  #last = { epoch: NaN, reads: -1, at: -Infinity };

  /**
   * The epoch kept in the file at `path`. With `arrivals` (berth's server counting its reads),
   * one read of the epoch serves every lookup until the server reads more from a client, within
   * the same millisecond (work that no request started sees changes that late at most).
   */
  constructor(path: string, arrivals?: ReadCount, now: () => number = Date.now) {
    this.#path = path;
    this.#arrivals = arrivals;
    this.#now = now;
  }

  /** The current epoch; `NaN` when the file cannot be opened (then nothing is taken as valid). */
  current(): number {
    if (this.#broken) return NaN;
    const now = this.#now();
    const last = this.#last;
    const reads = this.#arrivals?.reads ?? -1;
    if (reads >= 0 && reads === last.reads && now === last.at) return last.epoch;
    if (now - this.#checkedAt >= RECHECK_MS) {
      this.#checkedAt = now;
      this.#reopen();
    }
    let epoch = NaN;
    try {
      if (this.#file) epoch = this.#file.seekSync(0, Deno.SeekMode.End);
    } catch {
      // Unreadable: nothing is taken as valid.
    }
    this.#last = { epoch, reads, at: now };
    return epoch;
  }

  /**
   * Note a tag change (call it after the change is on disk). Never fails the change: when the file
   * cannot be written (a full or read-only disk) this process stops trusting the epoch (every
   * lookup checks the disk) and other processes see the change within their recheck time.
   */
  async bump(): Promise<void> {
    this.#last = { epoch: NaN, reads: -1, at: -Infinity };
    try {
      await Deno.writeFile(this.#path, ONE_BYTE, { append: true }).catch(async (error) => {
        if (!isNotFound(error)) throw error;
        await Deno.mkdir(dirname(this.#path), { recursive: true });
        await Deno.writeFile(this.#path, ONE_BYTE, { append: true });
      });
    } catch {
      this.#broken = true;
    }
    this.#last = { epoch: NaN, reads: -1, at: -Infinity };
  }

  /** Close the descriptor (a later {@link current} opens it again). */
  close(): void {
    this.#file?.close();
    this.#file = undefined;
    this.#checkedAt = -Infinity;
  }

  /** Open the file when it is not open yet or another file now has its path. */
  #reopen(): void {
    let ino: number | null | undefined;
    try {
      ino = Deno.statSync(this.#path).ino;
    } catch {
      // Absent (no tag changed yet) or unreadable: created below when possible.
    }
    if (this.#file && ino !== undefined && ino === this.#ino) return;
    this.#file?.close();
    this.#file = undefined;
    try {
      if (ino === undefined) {
        Deno.mkdirSync(dirname(this.#path), { recursive: true });
        Deno.writeFileSync(this.#path, new Uint8Array(), { append: true });
      }
      this.#file = Deno.openSync(this.#path, { read: true });
      this.#ino = this.#file.statSync().ino;
    } catch {
      // A read-only data directory without the file: every lookup checks the disk.
    }
  }
}
