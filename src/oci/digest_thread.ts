/**
 * Incremental digests computed on a worker thread, so that hashing an upload runs beside reading
 * it off the socket (main thread) and writing it to storage (the runtime's blocking pool) instead
 * of taking turns with them on the main thread.
 *
 * Batches go to the worker by transfer (no copy) and come back once hashed. The worker answers
 * every `update` and `digest` in the order it was asked, so one queue of pending answers serves
 * every session. Its source is {@link digestWorkerMain}, loaded from a `data:` URL so that it also
 * runs from the bundle. The worker starts with the first digest asked of it and lives until
 * {@link DigestThread.close}; when it dies, everything pending on it fails and the digests it held
 * are lost ({@link ThreadDigest.live} turns false; the uploads service then reads the bytes back).
 *
 * @module
 */
import type { BatchHasher } from "../storage/driver.ts";
import { type Algorithm, DEFAULT_ALGORITHM, type Digest, makeDigest } from "./digest.ts";

/** What the worker is asked. */
type Request =
  | { op: "start"; id: number; algorithm: Algorithm }
  | { op: "update"; id: number; buffer: ArrayBuffer; offset: number; length: number }
  | { op: "digest"; id: number }
  | { op: "drop"; id: number };

/** What the worker answers to `update` (the buffer, handed back) and `digest`, in order. */
type Answer = { buffer: ArrayBuffer } | { hex: string } | { error: string };

/** The part of a worker's global scope {@link digestWorkerMain} uses. */
export interface WorkerScope {
  addEventListener(type: "message", listener: (event: MessageEvent) => void): void;
  postMessage(message: unknown, transfer?: Transferable[]): void;
}

/** The part of `node:crypto`'s `Hash` the worker uses. */
interface WorkerHash {
  update(bytes: Uint8Array): void;
  copy(): WorkerHash;
  digest(encoding: "hex"): string;
}

/**
 * The worker's program: one hash per digest id. Self-contained (its source text is what runs in
 * the worker), so it uses nothing but its arguments.
 */
export function digestWorkerMain(
  scope: WorkerScope,
  createHash: (algorithm: string) => WorkerHash,
): void {
  const hashes = new Map<number, WorkerHash>();
  scope.addEventListener("message", (event) => {
    const request = event.data as Request;
    if (request.op === "start") {
      hashes.set(request.id, createHash(request.algorithm));
    } else if (request.op === "drop") {
      hashes.delete(request.id);
    } else if (request.op === "update") {
      const hash = hashes.get(request.id);
      hash?.update(new Uint8Array(request.buffer, request.offset, request.length));
      // An unknown id (never started) cannot be: the answer still hands the buffer back.
      scope.postMessage({ buffer: request.buffer }, [request.buffer]);
    } else {
      const hash = hashes.get(request.id);
      scope.postMessage(hash ? { hex: hash.copy().digest("hex") } : { error: "unknown digest" });
    }
  });
}

/** The worker's source: {@link digestWorkerMain} run with `node:crypto`'s `createHash`. */
export function digestWorkerSource(): string {
  return `import { createHash } from "node:crypto";\n(${digestWorkerMain})(self, createHash);\n`;
}

/** An answer being waited for. */
interface Pending {
  resolve(answer: Answer): void;
  reject(error: unknown): void;
}

/** A worker thread computing digests; see the module documentation. */
export class DigestThread {
  readonly #source: string;
  #worker: Worker | undefined;
  #pending: Pending[] = [];
  #nextId = 0;
  /** Bumped each time a worker goes away: digests started on an older one are lost. */
  #generation = 0;

  /** A thread running `source` (a test may pass one that fails on purpose). */
  constructor(source: string = digestWorkerSource()) {
    this.#source = source;
  }

  /** Start a digest of the bytes given to it from now on. */
  start(algorithm: Algorithm = DEFAULT_ALGORITHM): ThreadDigest {
    const worker = this.#worker ?? this.#spawn();
    const id = ++this.#nextId;
    worker.postMessage({ op: "start", id, algorithm } satisfies Request);
    return new ThreadDigest(this, id, algorithm, this.#generation);
  }

  /** Stop the worker: what is pending fails, started digests are lost. */
  close(): void {
    if (this.#worker) this.#fail(new Error("the digest thread was closed"));
  }

  /** @internal Whether digests of `generation` are still held. */
  holds(generation: number): boolean {
    return this.#worker !== undefined && generation === this.#generation;
  }

  /** @internal Send a request about a digest of `generation`; resolves with its answer. */
  ask(generation: number, request: Request, transfer: Transferable[] = []): Promise<Answer> {
    const worker = this.#worker;
    if (!worker || generation !== this.#generation) {
      return Promise.reject(new Error("the digest thread lost this digest"));
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      worker.postMessage(request, transfer);
    });
  }

  /** @internal Tell the worker to forget a digest (no answer). */
  drop(generation: number, id: number): void {
    if (this.holds(generation)) this.#worker!.postMessage({ op: "drop", id } satisfies Request);
  }

  #spawn(): Worker {
    const url = `data:text/javascript,${encodeURIComponent(this.#source)}`;
    const worker = new Worker(url, { type: "module", name: "berth digests" });
    worker.onmessage = (event: MessageEvent<Answer>) => this.#pending.shift()?.resolve(event.data);
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.#fail(new Error(`the digest thread failed: ${event.message}`));
    };
    worker.onmessageerror = () => this.#fail(new Error("the digest thread sent a bad message"));
    this.#worker = worker;
    return worker;
  }

  #fail(error: Error): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    this.#generation++;
    const pending = this.#pending;
    this.#pending = [];
    for (const { reject } of pending) reject(error);
  }
}

/**
 * A digest computed on a {@link DigestThread}: a {@link BatchHasher} for a storage write (each
 * batch's buffer is lent to the worker and handed back once hashed).
 */
export class ThreadDigest implements BatchHasher {
  readonly #thread: DigestThread;
  readonly #id: number;
  readonly #generation: number;
  #size = 0;
  #failed = false;

  /** @internal Use {@link DigestThread.start}. */
  constructor(
    thread: DigestThread,
    id: number,
    readonly algorithm: Algorithm,
    generation: number,
  ) {
    this.#thread = thread;
    this.#id = id;
    this.#generation = generation;
  }

  /** Bytes given so far. */
  get size(): number {
    return this.#size;
  }

  /** Whether the digest still covers every byte given (its worker lived, no batch failed). */
  get live(): boolean {
    return !this.#failed && this.#thread.holds(this.#generation);
  }

  /** Hash `batch` after the batches before it; resolves with its buffer once hashed. */
  async hash(batch: Uint8Array<ArrayBuffer>): Promise<ArrayBuffer> {
    this.#size += batch.byteLength;
    const { buffer } = batch;
    const request: Request = {
      op: "update",
      id: this.#id,
      buffer,
      offset: batch.byteOffset,
      length: batch.byteLength,
    };
    try {
      const answer = await this.#thread.ask(this.#generation, request, [buffer]);
      if (!("buffer" in answer)) throw new Error("the digest thread answered out of turn");
      return answer.buffer;
    } catch (error) {
      this.#failed = true;
      throw error;
    }
  }

  /** The digest of the bytes given so far; the digest stays usable. */
  async peek(): Promise<Digest> {
    const answer = await this.#thread.ask(this.#generation, { op: "digest", id: this.#id });
    if (!("hex" in answer)) throw new Error("the digest thread does not hold this digest");
    return makeDigest(this.algorithm, answer.hex);
  }

  /** Free the worker's state of this digest. */
  drop(): void {
    this.#failed = true;
    this.#thread.drop(this.#generation, this.#id);
  }
}
