/**
 * Request limits, the hostile-input hook `createApp` calls around every routed request: header
 * size (431), body size (413), body idle and slow-client timeouts (408), open upload sessions per
 * client (429 `TOOMANYREQUESTS`), and expiry of upload sessions left untouched.
 *
 * A refused body is cut off where it stands; the store then truncates the session back to where
 * the chunk began, so nothing partial is left behind.
 *
 * @module
 */
import { DEFAULT_LIMITS, type LimitsConfig } from "../config.ts";
import { RegistryError } from "../errors.ts";
import type { UploadService } from "../services/uploads.ts";
import { type ReadResult, relayBytes } from "./byte_relay.ts";
import type { RequestContext } from "./router.ts";

/** An upload session being watched. */
interface Session {
  client: string;
  name: string;
  lastSeen: number;
  busy: number;
}

/** What {@link RequestLimits.admit} noted about a request, for {@link RequestLimits.settle}. */
interface Ticket {
  client: string;
  name: string;
  /** `start` for POST to uploads/, the session id for requests on one session. */
  upload: string;
}

const UPLOAD_ID_PATH = /\/blobs\/uploads\/([^/]+)$/;

/** The limits of one app. */
export class RequestLimits {
  /** The limits in force. */
  readonly limits: LimitsConfig;
  readonly #uploads: UploadService;
  readonly #sessions = new Map<string, Session>();
  readonly #perClient = new Map<string, number>();
  readonly #tickets = new WeakMap<Request, Ticket>();
  readonly #timer: ReturnType<typeof setInterval>;

  /** Limits over an upload service (whose idle sessions it removes). */
  constructor(limits: Partial<LimitsConfig> | undefined, uploads: UploadService) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    this.#uploads = uploads;
    const every = Math.max(250, Math.min(60_000, this.limits.uploadSessionTimeoutMs / 4));
    this.#timer = setInterval(() => this.sweep(), every);
    Deno.unrefTimer(this.#timer);
  }

  /** Check a routed request and guard its body; throws 413, 429 or 431. */
  admit(ctx: RequestContext, client: string): RequestContext {
    const { request } = ctx;
    let headerBytes = request.url.length;
    // `forEach`, not `for...of`: Deno's iterator sorts the names first (~1.1 against ~0.2 µs).
    request.headers.forEach((value, key) => headerBytes += key.length + value.length + 4);
    if (headerBytes > this.limits.maxHeaderBytes) {
      throw new RegistryError("SIZE_INVALID", { limit: this.limits.maxHeaderBytes }, {
        status: 431,
        message: "request headers too large",
      });
    }
    const length = Number(request.headers.get("Content-Length") ?? 0);
    if (length > this.limits.maxBodyBytes) throw this.#tooLarge();
    const name = ctx.params.name ?? "";
    const id = UPLOAD_ID_PATH.exec(ctx.url.pathname)?.[1];
    const starts = request.method === "POST" && ctx.url.pathname.endsWith("/blobs/uploads/") &&
      !ctx.url.searchParams.has("digest");
    if (starts && (this.#perClient.get(client) ?? 0) >= this.limits.maxUploadsPerClient) {
      throw new RegistryError("TOOMANYREQUESTS", { limit: this.limits.maxUploadsPerClient }, {
        message: "too many open upload sessions: finish or cancel some first",
        headers: { "Retry-After": "60" },
      });
    }
    const upload = starts ? "start" : id;
    // Only requests on upload sessions have anything for `settle` to note.
    if (upload !== undefined) this.#tickets.set(request, { client, name, upload });
    const session = id === undefined ? undefined : this.#sessions.get(id);
    if (session) {
      session.busy++;
      session.lastSeen = Date.now();
    }
    if (!request.body) return ctx;
    const guarded = new Request(request.url, {
      method: request.method,
      headers: request.headers,
      body: this.#guard(request.body),
      duplex: "half",
    } as RequestInit);
    return { ...ctx, request: guarded };
  }

  /**
   * Note how a request admitted with {@link admit} ended (tracks upload sessions); `request` is
   * the one given to `admit`, not the guarded copy it returns.
   */
  settle(request: Request, response: Response): void {
    const ticket = this.#tickets.get(request);
    if (!ticket) return;
    if (ticket.upload === "start") {
      const id = response.headers.get("Docker-Upload-UUID");
      if (response.status !== 202 || !id) return;
      this.#sessions.set(id, {
        client: ticket.client,
        name: ticket.name,
        lastSeen: Date.now(),
        busy: 0,
      });
      this.#perClient.set(ticket.client, (this.#perClient.get(ticket.client) ?? 0) + 1);
      return;
    }
    const session = this.#sessions.get(ticket.upload);
    if (!session) return;
    session.busy = Math.max(0, session.busy - 1);
    session.lastSeen = Date.now();
    const ended = response.status === 201 ||
      response.status === 204 && request.method === "DELETE" ||
      response.status === 404;
    if (ended) this.#forget(ticket.upload);
  }

  /** Remove upload sessions idle for longer than the session timeout; returns their ids. */
  async sweep(now = Date.now()): Promise<string[]> {
    const expired: string[] = [];
    for (const [id, session] of this.#sessions) {
      if (session.busy > 0 || now - session.lastSeen < this.limits.uploadSessionTimeoutMs) continue;
      this.#forget(id);
      await this.#uploads.cancel(session.name, id).catch(() => {});
      expired.push(id);
    }
    return expired;
  }

  /** Stop the expiry timer. */
  close(): void {
    clearInterval(this.#timer);
  }

  #forget(id: string): void {
    const session = this.#sessions.get(id);
    if (!session) return;
    this.#sessions.delete(id);
    const left = (this.#perClient.get(session.client) ?? 1) - 1;
    if (left <= 0) this.#perClient.delete(session.client);
    else this.#perClient.set(session.client, left);
  }

  #tooLarge(): RegistryError {
    return new RegistryError("SIZE_INVALID", { limit: this.limits.maxBodyBytes }, {
      status: 413,
      message: `request body exceeds the ${this.limits.maxBodyBytes} byte limit`,
    });
  }

  /** A body that errors (413/408) when too large, idle too long, or too slow. */
  #guard(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
    const { maxBodyBytes, bodyIdleTimeoutMs, minBodyBytesPerSecond } = this.limits;
    const started = Date.now();
    let total = 0;
    // A byte relay, so uploads keep reading straight into their own buffers (see byte_relay.ts).
    return relayBytes(body, async (read) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const idle = new Promise<"idle">((resolve) => {
        timer = setTimeout(() => resolve("idle"), bodyIdleTimeoutMs);
      });
      let result: ReadResult | "idle";
      try {
        result = await Promise.race([read, idle]);
      } catch (error) {
        // An error with an answer of its own (the shutdown's 503) keeps it; any other failed read
        // means the client cut the body short (closed, reset, broken chunking): its fault.
        throw error instanceof RegistryError ? error : cutShort();
      } finally {
        clearTimeout(timer);
      }
      if (result === "idle") throw timedOut("request body idle too long");
      if (result.done) return result;
      total += result.value.byteLength;
      if (total > maxBodyBytes) throw this.#tooLarge();
      const elapsed = (Date.now() - started) / 1000;
      if (elapsed * 1000 > bodyIdleTimeoutMs && total < minBodyBytesPerSecond * elapsed) {
        throw timedOut("request body too slow");
      }
      return result;
    });
  }
}

function cutShort(): RegistryError {
  return new RegistryError("SIZE_INVALID", null, { message: "request body ended early" });
}

function timedOut(message: string): RegistryError {
  return new RegistryError("BLOB_UPLOAD_INVALID", null, { status: 408, message });
}

/** The client a request comes from, for per-client limits (its address). */
export function clientOf(info: { remoteAddr?: Deno.Addr } | undefined): string {
  const addr = info?.remoteAddr;
  return addr && "hostname" in addr ? addr.hostname : "local";
}
