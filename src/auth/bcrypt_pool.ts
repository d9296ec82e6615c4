/**
 * bcrypt comparisons in a small pool of workers, so slow password checks (a cost-12 hash takes
 * about a quarter of a second in JavaScript) never hold up the main thread's requests.
 *
 * The worker runs this same module: `new Worker(import.meta.url)` works from the sources and
 * from the one-file bundle alike (where the module is the bundle itself; `main.ts` checks
 * {@link isBcryptWorker} so the command line does not run in the worker).
 *
 * @module
 */

/** Name given to the pool's workers (how a module knows it runs in one). */
const WORKER_NAME = "berth-bcrypt";
/** Most comparisons waiting for a worker; beyond it {@link BcryptPool.compare} refuses. */
const MAX_QUEUED = 256;
/** A worker idle this long is stopped (each holds a JavaScript heap of ~25 MB). */
const IDLE_MS = 30_000;

/** Whether this thread is one of the pool's workers. */
export function isBcryptWorker(): boolean {
  return (globalThis as { name?: unknown }).name === WORKER_NAME;
}

/** A comparison sent to a worker. */
interface Job {
  id: number;
  password: string;
  hash: string;
}

/** A worker's answer. */
interface Answer {
  id: number;
  ok?: boolean;
  error?: string;
}

// The worker's side: answer each job with bcrypt's verdict (a thrown error for a bad hash).
if (isBcryptWorker()) {
  const scope = globalThis as unknown as {
    onmessage: ((event: MessageEvent<Job>) => void) | null;
    postMessage(answer: Answer): void;
  };
  // Loaded here only: the main thread never compares passwords, so `berth serve` starts without
  // the package. The handler is set at once, so no message arrives before it.
  const loading: Promise<typeof import("./bcryptjs.d.ts")> = import("bcryptjs");
  scope.onmessage = async ({ data }) => {
    try {
      const bcrypt = await loading;
      scope.postMessage({ id: data.id, ok: bcrypt.compareSync(data.password, data.hash) });
    } catch (error) {
      scope.postMessage({ id: data.id, error: String(error) });
    }
  };
}

/** Thrown when too many comparisons already wait for a worker. */
export class PoolBusy extends Error {
  /** The refusal. */
  constructor() {
    super("too many password checks in progress");
    this.name = "PoolBusy";
  }
}

/** One worker and the job it runs. */
interface Slot {
  worker: Worker;
  running: { id: number; resolve: (ok: boolean) => void; reject: (e: Error) => void } | undefined;
  /** Stops the worker when it stays idle. */
  idle: ReturnType<typeof setTimeout> | undefined;
}

/** A pool of bcrypt workers, started on first use; {@link close} stops them. */
export class BcryptPool {
  readonly #size: number;
  readonly #slots: Slot[] = [];
  readonly #queue: (Job & { resolve: (ok: boolean) => void; reject: (e: Error) => void })[] = [];
  #nextId = 0;
  #computations = 0;
  #closed = false;

  /** A pool of at most `size` workers (default: 2, or 1 on a one-core machine). */
  constructor(size = Math.max(1, Math.min(2, navigator.hardwareConcurrency || 1))) {
    this.#size = size;
  }

  /** How many comparisons the workers have run (a remembered login runs none). */
  get computations(): number {
    return this.#computations;
  }

  /** Whether `password` matches the bcrypt `hash`, computed in a worker. */
  compare(password: string, hash: string): Promise<boolean> {
    if (this.#closed) return Promise.reject(new Error("bcrypt pool closed"));
    if (this.#queue.length >= MAX_QUEUED) return Promise.reject(new PoolBusy());
    const { promise, resolve, reject } = Promise.withResolvers<boolean>();
    this.#queue.push({ id: this.#nextId++, password, hash, resolve, reject });
    this.#pump();
    return promise;
  }

  /** Stop the workers; comparisons still queued or running fail. */
  close(): void {
    this.#closed = true;
    for (const slot of this.#slots) {
      clearTimeout(slot.idle);
      slot.worker.terminate();
      slot.running?.reject(new Error("bcrypt pool closed"));
    }
    this.#slots.length = 0;
    for (const job of this.#queue.splice(0)) job.reject(new Error("bcrypt pool closed"));
  }

  /** Hand queued jobs to idle workers, starting workers up to the pool's size. */
  #pump(): void {
    while (this.#queue.length > 0) {
      let slot = this.#slots.find((s) => s.running === undefined);
      if (!slot && this.#slots.length < this.#size) slot = this.#start();
      if (!slot) return;
      const job = this.#queue.shift()!;
      clearTimeout(slot.idle);
      slot.idle = undefined;
      slot.running = { id: job.id, resolve: job.resolve, reject: job.reject };
      this.#computations++;
      slot.worker.postMessage({ id: job.id, password: job.password, hash: job.hash });
    }
  }

  #start(): Slot {
    const worker = new Worker(import.meta.url, { type: "module", name: WORKER_NAME });
    const slot: Slot = { worker, running: undefined, idle: undefined };
    const stop = () => {
      clearTimeout(slot.idle);
      worker.terminate();
      const index = this.#slots.indexOf(slot);
      if (index >= 0) this.#slots.splice(index, 1);
    };
    worker.onmessage = ({ data }: MessageEvent<Answer>) => {
      const running = slot.running;
      if (!running || running.id !== data.id) return;
      slot.running = undefined;
      if (data.error !== undefined) running.reject(new Error(data.error));
      else running.resolve(data.ok === true);
      this.#pump();
      if (slot.running === undefined) {
        const timer = slot.idle = setTimeout(stop, IDLE_MS);
        Deno.unrefTimer(timer);
      }
    };
    worker.onerror = (event) => {
      // A worker that died is replaced on the next job; its job fails.
      event.preventDefault();
      stop();
      slot.running?.reject(new Error(`bcrypt worker failed: ${event.message}`));
      slot.running = undefined;
      this.#pump();
    };
    this.#slots.push(slot);
    return slot;
  }
}
