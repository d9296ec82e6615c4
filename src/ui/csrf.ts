/**
 * CSRF protection of the UI's state-changing requests: the request must come from the UI's own
 * origin (`Sec-Fetch-Site`, `Origin`), and its form must carry a token only this registry can make
 * for the signed-in user (an HMAC under a key from `http.secret`, else one made at startup). A token
 * names when it expires ({@link CSRF_SECONDS} after the page was made), so one that leaks is not
 * good forever.
 *
 * @module
 */

import { uiKey } from "./keys.ts";

const encoder = new TextEncoder();

/** How long a form stays good after its page was made: a UI session's length. */
export const CSRF_SECONDS = 8 * 3600;

/** Makes and checks the UI's form tokens: `<expiry, unix seconds>.<HMAC of user and expiry>`. */
export class CsrfTokens {
  readonly #key: Promise<CryptoKey>;
  readonly #now: () => number;

  /**
   * Tokens under a key derived from `secret` (shared by replicas and restarts), or a fresh random
   * key without one (tokens of an earlier process are then refused). `now` (ms) is for tests.
   */
  constructor(secret?: string, now: () => number = Date.now) {
    this.#key = uiKey(secret, "csrf");
    this.#now = now;
  }

  /** The token of a user's forms (`undefined`: anonymous). */
  async token(user: string | undefined): Promise<string> {
    const expires = Math.floor(this.#now() / 1000) + CSRF_SECONDS;
    const mac = await crypto.subtle.sign("HMAC", await this.#key, message(user, expires));
    return `${expires}.${toBase64Url(new Uint8Array(mac))}`;
  }

  /** Whether `token` is one {@link token} made for `user` and it has not expired. */
  async verify(token: string, user: string | undefined): Promise<boolean> {
    const match = /^(\d{1,12})\.([A-Za-z0-9_-]{1,100})$/.exec(token);
    if (!match) return false;
    const expires = Number(match[1]);
    if (expires * 1000 <= this.#now()) return false;
    const mac = fromBase64Url(match[2]!);
    if (!mac || mac.byteLength !== 32) return false;
    return await crypto.subtle.verify("HMAC", await this.#key, mac, message(user, expires));
  }
}

/** Whether a request comes from a page of the same origin (browsers send one header or both). */
export function isSameOrigin(request: Request): boolean {
  const site = request.headers.get("Sec-Fetch-Site");
  if (site !== null && site !== "same-origin") return false;
  const origin = request.headers.get("Origin");
  if (origin === null) return true;
  const host = request.headers.get("Host") ?? new URL(request.url).host;
  try {
    return new URL(origin).host === host;
  } catch {
    // `Origin: null` (sandboxed or privacy-sensitive contexts) is not our page.
    return false;
  }
}

function message(user: string | undefined, expires: number): Uint8Array<ArrayBuffer> {
  return encoder.encode(`berth-ui-csrf\n${user === undefined ? "" : `user:${user}`}\n${expires}`);
}

/** Bytes as unpadded base64url. */
export function toBase64Url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

/** Unpadded base64url of at most `max` characters as bytes; `undefined` when it is not. */
export function fromBase64Url(text: string, max = 100): Uint8Array<ArrayBuffer> | undefined {
  if (text.length > max || !/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}
