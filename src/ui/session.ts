/**
 * The UI's sign-in session: after the sign-in form checked a password, the browser keeps a
 * cookie naming the user until it expires, signed with an HMAC under a key derived from
 * `http.secret` (replicas sharing it accept each other's cookies; a restart signs nobody out),
 * or without one under a key made at startup (a restart signs everyone out; a cookie from
 * another process is refused). The cookie is
 * `HttpOnly`, `SameSite=Strict`, `Secure` when the page came over TLS, and only sent to `/ui/`:
 * the registry API never reads it.
 *
 * @module
 */
import { fromBase64Url, toBase64Url } from "./csrf.ts";
import { UI_ROOT } from "./format.ts";
import { uiKey } from "./keys.ts";

/** Name of the cookie. */
export const SESSION_COOKIE = "berth_session";
/** How long a sign-in lasts, in seconds. */
export const SESSION_SECONDS = 8 * 3600;
/** Longest user name kept in a cookie. */
const MAX_USER = 256;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Makes and reads the session cookie. */
export class Sessions {
  readonly #key: Promise<CryptoKey>;
  readonly #now: () => number;

  /**
   * Sessions under a key derived from `secret` (see `http.secret`), else a fresh random key;
   * `now` (ms) is for tests.
   */
  constructor(options: { secret?: string | undefined; now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
    this.#key = uiKey(options.secret, "session");
  }

  /** The `Set-Cookie` value that signs `user` in (`secure`: the page came over TLS). */
  async signIn(user: string, secure: boolean): Promise<string> {
    const expires = Math.floor(this.#now() / 1000) + SESSION_SECONDS;
    const payload = toBase64Url(encoder.encode(JSON.stringify({ u: user, e: expires })));
    const mac = await crypto.subtle.sign("HMAC", await this.#key, encoder.encode(payload));
    const value = `${payload}.${toBase64Url(new Uint8Array(mac))}`;
    return cookie(value, SESSION_SECONDS, secure);
  }

  /** The `Set-Cookie` value that signs out. */
  signOut(secure: boolean): string {
    return cookie("", 0, secure);
  }

  /** The user a request's session cookie names, when it is one of ours and not expired. */
  async user(request: Request): Promise<string | undefined> {
    const value = readCookie(request.headers.get("Cookie"), SESSION_COOKIE);
    if (value === undefined || value.length > 2 * MAX_USER + 200) return undefined;
    const dot = value.indexOf(".");
    const mac = fromBase64Url(value.slice(dot + 1));
    if (dot < 0 || !mac || mac.byteLength !== 32) return undefined;
    const payload = value.slice(0, dot);
    const ok = await crypto.subtle.verify(
      "HMAC",
      await this.#key,
      mac,
      encoder.encode(payload),
    );
    if (!ok) return undefined;
    const bytes = fromBase64Url(payload, payload.length);
    if (!bytes) return undefined;
    let claims: unknown;
    try {
      claims = JSON.parse(decoder.decode(bytes));
    } catch {
      return undefined;
    }
    const { u, e } = (claims ?? {}) as { u?: unknown; e?: unknown };
    if (typeof u !== "string" || u === "" || u.length > MAX_USER) return undefined;
    if (typeof e !== "number" || e * 1000 <= this.#now()) return undefined;
    return u;
  }
}

function cookie(value: string, maxAge: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=${UI_ROOT}; Max-Age=${maxAge}; HttpOnly; ` +
    `SameSite=Strict${secure ? "; Secure" : ""}`;
}

/** One cookie's value out of a `Cookie` header. */
function readCookie(header: string | null, name: string): string | undefined {
  if (header === null) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq >= 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
