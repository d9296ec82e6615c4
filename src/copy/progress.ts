/**
 * Copy progress: the events the engine reports, and a terminal renderer (one line per blob in
 * flight with bytes, rate and ETA, and an overall line), used only when stderr is a TTY.
 *
 * @module
 */
import type { BlobInfo } from "../transports/types.ts";

/** What the engine reports while it copies. */
export interface ProgressSink {
  /** The blobs to copy are known. */
  plan(blobs: BlobInfo[]): void;
  /** A blob transfer starts (again, when retried). */
  blobStart(blob: BlobInfo): void;
  /** Bytes of a blob went through. */
  blobBytes(digest: string, bytes: number): void;
  /** A blob is done. */
  blobDone(digest: string, outcome: "exists" | "mounted" | "uploaded"): void;
  /** A manifest was written. */
  manifest(digest: string): void;
  /** The copy ended (success or not). */
  finish(): void;
}

/** A sink that ignores everything. */
export const NO_PROGRESS: ProgressSink = {
  plan() {},
  blobStart() {},
  blobBytes() {},
  blobDone() {},
  manifest() {},
  finish() {},
};

/** Human units: `12.3 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function short(digest: string): string {
  return digest.slice(digest.indexOf(":") + 1, digest.indexOf(":") + 13);
}

interface BlobState {
  size: number;
  done: number;
  started: number;
}

/** Renders progress on a terminal, redrawing at most every `intervalMs`. */
export class TerminalProgress implements ProgressSink {
  #write: (text: string) => void;
  #active = new Map<string, BlobState>();
  #total = 0;
  #count = 0;
  #finished = 0;
  #bytes = 0;
  #start = performance.now();
  #drawn = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #intervalMs: number;

  /** Write through `write` (stderr by default). */
  constructor(write?: (text: string) => void, intervalMs = 200) {
    const encoder = new TextEncoder();
    this.#write = write ?? ((text) => Deno.stderr.writeSync(encoder.encode(text)));
    this.#intervalMs = intervalMs;
  }

  /** Remember the totals. */
  plan(blobs: BlobInfo[]): void {
    this.#total = blobs.reduce((sum, b) => sum + Math.max(0, b.size), 0);
    this.#count = blobs.length;
    this.#timer ??= setInterval(() => this.#draw(), this.#intervalMs);
  }

  /** A transfer starts. */
  blobStart(blob: BlobInfo): void {
    const previous = this.#active.get(blob.digest);
    if (previous) this.#bytes -= previous.done;
    this.#active.set(blob.digest, { size: blob.size, done: 0, started: performance.now() });
  }

  /** Bytes went through. */
  blobBytes(digest: string, bytes: number): void {
    const state = this.#active.get(digest);
    if (state) state.done += bytes;
    this.#bytes += bytes;
  }

  /** A blob finished: print its permanent line. */
  blobDone(digest: string, outcome: "exists" | "mounted" | "uploaded"): void {
    const state = this.#active.get(digest);
    this.#active.delete(digest);
    this.#finished++;
    const what = outcome === "uploaded"
      ? `copied ${formatBytes(state?.size ?? 0)}`
      : outcome === "exists"
      ? "already there"
      : "mounted";
    this.#line(`blob ${short(digest)} ${what}`);
  }

  /** A manifest was written. */
  manifest(digest: string): void {
    this.#line(`manifest ${digest}`);
  }

  /** Stop redrawing; leave the final overall line. */
  finish(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#clear();
    this.#write(`${this.#overall()}\n`);
  }

  #overall(): string {
    const seconds = (performance.now() - this.#start) / 1000;
    const rate = seconds > 0 ? this.#bytes / seconds : 0;
    return `${this.#finished}/${this.#count} blobs, ${formatBytes(this.#bytes)} of ${
      formatBytes(this.#total)
    } copied, ${formatBytes(rate)}/s, ${seconds.toFixed(1)}s`;
  }

  #clear(): void {
    if (this.#drawn > 0) this.#write(`\x1b[${this.#drawn}A\x1b[J`);
    this.#drawn = 0;
  }

  #line(text: string): void {
    this.#clear();
    this.#write(`${text}\n`);
    this.#draw();
  }

  #draw(): void {
    this.#clear();
    const now = performance.now();
    const lines: string[] = [];
    for (const [digest, state] of this.#active) {
      const seconds = (now - state.started) / 1000;
      const rate = seconds > 0 ? state.done / seconds : 0;
      const eta = rate > 0 && state.size > 0
        ? Math.max(0, (state.size - state.done) / rate)
        : undefined;
      lines.push(
        `  ${short(digest)} ${formatBytes(state.done)} / ${formatBytes(state.size)}  ${
          formatBytes(rate)
        }/s${eta === undefined ? "" : `  ETA ${eta.toFixed(0)}s`}`,
      );
    }
    lines.push(this.#overall());
    this.#write(`${lines.join("\n")}\n`);
    this.#drawn = lines.length;
  }
}
