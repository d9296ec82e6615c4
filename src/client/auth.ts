/**
 * Registry authentication: parsing `WWW-Authenticate` challenges, and a per-client cache of
 * Bearer tokens keyed by scope (reused until shortly before they expire, renewed on a 401).
 *
 * @module
 */
import type { Credentials } from "./credentials.ts";
import { ClientError, errorMessage } from "./errors.ts";
import type { HttpResponse, HttpSender } from "./http.ts";

/** One challenge of a `WWW-Authenticate` header. */
export interface Challenge {
  /** Lower-cased scheme: `bearer`, `basic`, ... */
  scheme: string;
  /** Its parameters (`realm`, `service`, `scope`, ...), keys lower-cased. */
  params: Record<string, string>;
}

/** Parse a `WWW-Authenticate` header into its challenges. */
export function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < header.length && /[\s,]/.test(header[i]!)) i++;
  };
  while (i < header.length) {
    skipSpace();
    const schemeMatch = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+/.exec(header.slice(i));
    if (!schemeMatch) break;
    const current: Challenge = { scheme: schemeMatch[0].toLowerCase(), params: {} };
    challenges.push(current);
    i += schemeMatch[0].length;
    while (i < header.length) {
      while (i < header.length && /\s/.test(header[i]!)) i++;
      const param = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*/.exec(header.slice(i));
      if (!param) break;
      i += param[0].length;
      let value = "";
      if (header[i] === '"') {
        i++;
        while (i < header.length && header[i] !== '"') {
          if (header[i] === "\\" && i + 1 < header.length) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        const token = /^[^,\s]*/.exec(header.slice(i))![0];
        value = token;
        i += token.length;
      }
      current.params[param[1]!.toLowerCase()] = value;
      while (i < header.length && /\s/.test(header[i]!)) i++;
      if (header[i] === ",") i++;
    }
  }
  return challenges;
}

/** A cached token. */
interface CachedToken {
  token: string;
  expiresAt: number;
}

/** How a registry wants to be authenticated, learned from its challenge. */
export type AuthMode =
  | { kind: "none" }
  | { kind: "basic" }
  | { kind: "bearer"; realm: string; service: string | undefined };

/** Tokens of one registry by scope, and the mode learned from its challenges. */
export class TokenCache {
  mode: AuthMode = { kind: "none" };
  #tokens = new Map<string, CachedToken>();

  /** A still-valid token for exactly these scopes. */
  get(scopes: string[]): string | undefined {
    const key = scopeKey(scopes);
    const entry = this.#tokens.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.#tokens.delete(key);
      return undefined;
    }
    return entry.token;
  }

  /** Forget the token for these scopes (after a 401 with it). */
  drop(scopes: string[]): void {
    this.#tokens.delete(scopeKey(scopes));
  }

  /** Fetch a token for `scopes` from the realm, with credentials when given, and cache it. */
  async fetch(
    sender: HttpSender,
    scopes: string[],
    credentials: Credentials | undefined,
    signal?: AbortSignal,
  ): Promise<string> {
    if (this.mode.kind !== "bearer") throw new Error("no bearer challenge");
    const url = new URL(this.mode.realm);
    if (this.mode.service) url.searchParams.set("service", this.mode.service);
    for (const scope of scopes) url.searchParams.append("scope", scope);
    const headers: Record<string, string> = {};
    // An identity token (user `<token>`) is an OAuth2 refresh token: POSTed as a form.
    const identity = credentials?.username === "<token>";
    let form: Uint8Array | undefined;
    if (identity) {
      const params = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: credentials!.password,
        client_id: "berth",
      });
      if (this.mode.service) params.set("service", this.mode.service);
      if (scopes.length > 0) params.set("scope", scopes.join(" "));
      form = new TextEncoder().encode(params.toString());
      headers["Content-Type"] = "application/x-www-form-urlencoded";
    } else if (credentials) headers.Authorization = basicHeader(credentials);
    let response: HttpResponse;
    try {
      response = await sender.send({
        method: form ? "POST" : "GET",
        url: form ? this.mode.realm : url.href,
        headers,
        ...(form && { body: { length: form.byteLength, open: form } }),
        ...(signal && { signal }),
      });
    } catch (error) {
      throw new ClientError("unreachable", `token server ${url.host}: ${errorMessage(error)}`);
    }
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw new ClientError(
        "auth",
        identity
          ? `identity token refused by ${url.host}`
          : credentials
          ? `authentication refused by ${url.host} for ${credentials.username}`
          : `${url.host} requires credentials`,
        { status: response.status },
      );
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new ClientError("auth", `token server ${url.host} answered ${response.status}`, {
        status: response.status,
      });
    }
    let body: { token?: string; access_token?: string; expires_in?: number };
    try {
      body = await response.json() as typeof body;
    } catch {
      throw new ClientError("protocol", `token server ${url.host} sent no JSON`);
    }
    const token = body.token ?? body.access_token;
    if (!token) throw new ClientError("protocol", `token server ${url.host} sent no token`);
    const lifetime = Math.max(60, body.expires_in ?? 60) * 1000;
    this.#tokens.set(scopeKey(scopes), { token, expiresAt: Date.now() + lifetime - 10_000 });
    return token;
  }
}

function scopeKey(scopes: string[]): string {
  return [...new Set(scopes)].sort().join(" ");
}

/** `Basic base64(user:pass)`. */
export function basicHeader(credentials: Credentials): string {
  const bytes = new TextEncoder().encode(`${credentials.username}:${credentials.password}`);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return `Basic ${btoa(binary)}`;
}
