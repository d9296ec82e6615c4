/**
 * Request limits, two stages of the pipeline: {@link RequestLimits.admit} (header size 431, body
 * size 413, and the body guard: idle and slow-client timeouts 408, the shutdown deadline) before
 * authentication, and {@link RequestLimits.openUpload} (open upload sessions per client, 429
 * `TOOMANYREQUESTS`) after it, so the limit can be keyed on the authenticated user. Upload
 * sessions left untouched expire.
 *
 * A refused body is cut off where it stands; the store then truncates the session back to where
 * the chunk began, so nothing partial is left behind.
 *
 * @module
 */
import type { Reply } from "./reply.ts";
import { DEFAULT_LIMITS, type LimitsConfig } from "../config.ts";
import { RegistryError } from "../errors.ts";
import type { UploadService } from "../services/uploads.ts";
import { type ReadResult, relayBytes } from "./byte_relay.ts";
import { DirectBody, relayDirect } from "./direct_body.ts";
import type { RequestContext } from "./context.ts";
import { IncomingRequest } from "./request_view.ts";

/** An upload session being watched. */
interface Session {
  /** Whom it counts against. */
  key: string;
  /** Its repository. */
  name: string;
  lastSeen: number;
  /** Requests on it in flight (a busy session never expires). */
  busy: number;
}

/** The limits of one app. */
export class RequestLimits {
  /** The limits in force. */
  readonly limits: LimitsConfig;
  readonly #uploads: UploadService;
  readonly #sessions = new Map<string, Session>();
  /** Open sessions per key, oldest first. */
  readonly #perKey = new Map<string, Set<string>>();
  readonly #timer: ReturnType<typeof setInterval>;

  /** Limits over an upload service (whose idle sessions it removes). */
  constructor(limits: Partial<LimitsConfig> | undefined, uploads: UploadService) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    this.#uploads = uploads;
    const every = Math.max(250, Math.min(60_000, this.limits.uploadSessionTimeoutMs / 4));
    this.#timer = setInterval(() => this.sweep(), every);
    Deno.unrefTimer(this.#timer);
  }

  /**
   * Check a routed request's headers and declared length, and guard its body: `ctx.body` then
   * counts its bytes, and fails with 413 or 408, or with `drain`'s reason when the shutdown
   * deadline passes (bodies without a declared length only). Throws 413 or 431.
   */
  admit(ctx: RequestContext, drain: AbortSignal): void {
    const { request } = ctx;
    let headerBytes = request instanceof IncomingRequest ? request.urlLength : request.url.length;
    // `forEach`, not `for...of`: Deno's iterator sorts the names first.
    request.headers.forEach((value, key) => headerBytes += key.length + value.length + 4);
    if (headerBytes > this.limits.maxHeaderBytes) {
      throw new RegistryError("HEADERS_TOO_LARGE", { limit: this.limits.maxHeaderBytes });
    }
    const declared = request.headers.get("Content-Length");
    if (Number(declared ?? 0) > this.limits.maxBodyBytes) throw this.#tooLarge();
    if (!ctx.body) return;
    ctx.bytesIn = 0;
    ctx.body = this.#guard(ctx, declared === null ? drain : undefined);
  }

  /**
   * Note a request on upload sessions, after authentication: a POST that may open a session is
   * refused with 429 when its client has `maxUploadsPerClient` open ones (sessions of that client
   * idle past the timeout are expired first); a request on a session keeps it alive.
   */
  openUpload(ctx: RequestContext): void {
    if (ctx.route !== "uploads") return;
    const key = ctx.identity?.user !== undefined
      ? `user:${ctx.identity.user}`
      : `addr:${ctx.client}`;
    const id = ctx.params.id;
    if (id !== undefined) {
      ctx.ticket = { key, upload: id };
      const session = this.#sessions.get(id);
      if (session) {
        session.busy++;
        session.lastSeen = Date.now();
      }
      return;
    }
    if (ctx.method !== "POST") return;
    // A monolithic POST (`digest` without `mount`) opens no session; a mount may fall back to one.
    const query = ctx.url.searchParams;
    if (query.has("digest") && !(ctx.access.mount && query.has("mount"))) return;
    const open = this.#perKey.get(key);
    if (open && open.size >= this.limits.maxUploadsPerClient) {
      this.#expireIdle(open);
      if (open.size >= this.limits.maxUploadsPerClient) throw this.#tooMany(open);
    }
    ctx.ticket = { key, upload: "start" };
  }

  /** Note how a request with a ticket ended: a session opened, or the one it was on ended. */
  settle(ctx: RequestContext, response: Response | Reply): void {
    const ticket = ctx.ticket;
    if (!ticket) return;
    const name = ctx.params.name ?? "";
    if (ticket.upload === "start") {
      const id = response.headers.get("Docker-Upload-UUID");
      if (response.status !== 202 || !id) return;
      this.#sessions.set(id, { key: ticket.key, name, lastSeen: Date.now(), busy: 0 });
      const open = this.#perKey.get(ticket.key) ?? new Set();
      open.add(id);
      this.#perKey.set(ticket.key, open);
      return;
    }
    const session = this.#sessions.get(ticket.upload);
    if (!session) return;
    session.busy = Math.max(0, session.busy - 1);
    session.lastSeen = Date.now();
    // Only a request on the session's own repository says anything about it: a 404 for the same
    // id under another name is that name's answer.
    if (session.name !== name) return;
    const ended = response.status === 201 ||
      response.status === 204 && ctx.method === "DELETE" ||
      response.status === 404;
    if (ended) this.#forget(ticket.upload);
  }

  /** Remove upload sessions idle for longer than the session timeout; returns their ids. */
  async sweep(now = Date.now()): Promise<string[]> {
    const expired: string[] = [];
    for (const [id, session] of this.#sessions) {
      if (!this.#idle(session, now)) continue;
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

  #idle(session: Session, now: number): boolean {
    return session.busy === 0 && now - session.lastSeen >= this.limits.uploadSessionTimeoutMs;
  }

  /** Expire the idle sessions among `ids` now (their files are removed in the background). */
  #expireIdle(ids: Set<string>): void {
    const now = Date.now();
    for (const id of [...ids]) {
      const session = this.#sessions.get(id);
      if (!session || !this.#idle(session, now)) continue;
      this.#forget(id);
      this.#uploads.cancel(session.name, id).catch(() => {});
    }
  }

  #forget(id: string): void {
    const session = this.#sessions.get(id);
    if (!session) return;
    this.#sessions.delete(id);
    const open = this.#perKey.get(session.key);
    open?.delete(id);
    if (open?.size === 0) this.#perKey.delete(session.key);
  }

  /** 429 with the time until the first of `open` can expire as `Retry-After`. */
  #tooMany(open: Set<string>): RegistryError {
    const now = Date.now();
    let soonest = this.limits.uploadSessionTimeoutMs;
    for (const id of open) {
      const session = this.#sessions.get(id);
      if (session && session.busy === 0) {
        soonest = Math.min(soonest, session.lastSeen + this.limits.uploadSessionTimeoutMs - now);
      }
    }
    const seconds = Math.max(1, Math.ceil(soonest / 1000));
    const limit = this.limits.maxUploadsPerClient;
    return new RegistryError("TOOMANYREQUESTS", { limit, open: open.size, retryAfter: seconds }, {
      message: `too many open upload sessions (${open.size} of ${limit}): finish or cancel ` +
        `some, or retry in ${seconds} s when idle ones expire`,
      headers: { "Retry-After": String(seconds) },
    });
  }

  #tooLarge(): RegistryError {
    return new RegistryError("BODY_TOO_LARGE", { limit: this.limits.maxBodyBytes }, {
      message: `request body exceeds the ${this.limits.maxBodyBytes} byte limit`,
    });
  }

  /**
   * The body of `ctx`, guarded: errors (413/408) when too large, idle too long or too slow, and
   * with `drain`'s reason once it aborts (a pending read fails at once, even while the client is
   * stalled). Counts bytes into `ctx.bytesIn`.
   */
  #guard(ctx: RequestContext, drain: AbortSignal | undefined): ReadableStream<Uint8Array> {
    const { maxBodyBytes, bodyIdleTimeoutMs, minBodyBytesPerSecond } = this.limits;
    const started = Date.now();
    let total = 0;
    // One promise per read, settled by the read, the idle timer or the drain deadline: not a race
    // with one promise per body, which would keep every read's reaction until the body ends.
    let stop: ((reason: unknown) => void) | undefined;
    const onAbort = () => stop?.(drain?.reason);
    drain?.addEventListener("abort", onAbort, { once: true });
    const release = () => drain?.removeEventListener("abort", onAbort);
    /** Sees each read: its byte count, or `null` at the end; throws to fail the body. */
    const step = async (read: Promise<number | null>): Promise<number | null> => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let result: number | null | "idle";
      try {
        if (drain?.aborted) throw drain.reason;
        result = await new Promise<number | null | "idle">((resolve, reject) => {
          stop = reject;
          timer = setTimeout(() => resolve("idle"), bodyIdleTimeoutMs);
          read.then(resolve, reject);
        });
      } catch (error) {
        release();
        // An error with an answer of its own (the shutdown's 503) keeps it; any other failed read
        // means the client cut the body short (closed, reset, broken chunking): its fault.
        throw error instanceof RegistryError ? error : cutShort();
      } finally {
        stop = undefined;
        clearTimeout(timer);
      }
      if (result === "idle") {
        release();
        throw new RegistryError("BODY_TIMEOUT", null, { message: "request body idle too long" });
      }
      if (result === null) {
        release();
        return null;
      }
      total += result;
      ctx.bytesIn = total;
      if (total > maxBodyBytes) throw this.#tooLarge();
      const elapsed = (Date.now() - started) / 1000;
      if (elapsed * 1000 > bodyIdleTimeoutMs && total < minBodyBytesPerSecond * elapsed) {
        throw new RegistryError("BODY_TIMEOUT", null, { message: "request body too slow" });
      }
      return result;
    };
    // A body read directly stays direct (see direct_body.ts); any other is relayed as a byte
    // stream, so uploads keep reading straight into their own buffers (see byte_relay.ts).
    const body = ctx.body!;
    if (body instanceof DirectBody && !body.locked) return relayDirect(body, step);
    return relayBytes(body, async (read) => {
      let result: ReadResult | undefined;
      await step(read.then((r) => {
        result = r;
        return r.done ? null : r.value.byteLength;
      }));
      return result!;
    });
  }
}

function cutShort(): RegistryError {
  return new RegistryError("SIZE_INVALID", null, { message: "request body ended early" });
}
