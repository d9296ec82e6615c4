/**
 * Who is calling and what they may do: the auth hook `createApp` calls for every request.
 *
 * - Authentication: `Authorization: Basic` checked against htpasswd, `Authorization: Bearer`
 *   checked as a JWT (berth's own key, or an external issuer's certificate bundle or JWKS), or
 *   nobody (anonymous).
 * - Authorization: each route needs an action on its repository (GET/HEAD → pull; uploads and
 *   manifest PUT → push; DELETE → delete; a cross-repository mount also pull on `from`). Basic
 *   and anonymous callers are judged by the policy, Bearer callers by their token's `access`.
 *   `/v2/` needs any identity; `/v2/_catalog` lists only what {@link Authorizer.catalogView}
 *   shows (an anonymous caller who may see nothing gets the challenge); routes outside `/v2/`
 *   (admin endpoints) need a user the policy names in `admins`. Whose token it is comes from
 *   the key that verified it, never from a claim.
 * - Passwords: bcrypt in a worker pool, remembered logins, failed logins limited per user and
 *   per client address (src/auth/htpasswd.ts, bcrypt_pool.ts, login_limiter.ts).
 * - Refusals: 401 `UNAUTHORIZED` with the `WWW-Authenticate` challenge (no, bad or
 *   insufficient credentials), 403 `DENIED` (a known user the policy refuses), 429
 *   `TOOMANYREQUESTS` (too many failed logins).
 * - The built-in token endpoint, `GET /auth/token`.
 *
 * @module
 */
import type { RequestView } from "../http/request_view.ts";
import type { AuthConfig, RepositoryAction } from "../config.ts";
import { RegistryError } from "../errors.ts";
import type { RequestContext } from "../http/context.ts";
import type { Logger } from "../ops/log.ts";
import { BcryptPool, PoolBusy } from "./bcrypt_pool.ts";
import { Htpasswd, readHtpasswdSync } from "./htpasswd.ts";
import { outerPrefixes } from "./policy.ts";
import { DEFAULT_LOGIN_LIMITS, LoginLimiter, type LoginLimits } from "./login_limiter.ts";
import { type AccessEntry, TokenInvalid, TokenSigner, TrustedKeys, verifyToken } from "./jwt.ts";
import { Policy } from "./policy.ts";

/** Path of berth's built-in token endpoint. */
export const TOKEN_PATH = "/auth/token";
/** The scope a catalog challenge asks for (docker's token spec). */
const CATALOG_SCOPE = "registry:catalog:*";
/** Default lifetime of issued tokens, in seconds. */
const DEFAULT_TOKEN_SECONDS = 300;
/** Longest `Authorization` header looked at. */
const MAX_AUTHORIZATION = 16 * 1024;

/** The caller of a request. */
export interface Identity {
  /** User name; `undefined` for an anonymous caller. */
  user?: string;
  /** How the caller proved who they are. */
  via: "anonymous" | "basic" | "token";
  /** For Bearer tokens: what the token grants. */
  access?: AccessEntry[];
  /** For Bearer tokens: whether berth's own key verified it (so the policy knows its subject). */
  builtin?: boolean;
}

/**
 * The repositories a caller may see in the catalog: the name ranges worth reading, and the
 * exact test, so a catalog page costs in proportion to the page, not to the repositories.
 */
export interface CatalogView {
  /** Name prefixes, sorted, none inside another: `[""]` is everywhere, `[]` nowhere. */
  prefixes: string[];
  /** Whether repository `name` is shown. */
  visible(name: string): boolean;
}

/** The filter hook other handlers (e.g. `_catalog`) use. */
export interface Authorizer {
  /** Whether authentication or a policy is in force. */
  readonly enabled: boolean;
  /** Whether `identity` (as the access stage found it) may pull from repository `name`. */
  canPull(identity: Identity | undefined, name: string): boolean;
  /** What `identity` may do on repository `name` (the web UI's delete buttons). */
  actions(identity: Identity | undefined, name: string): ReadonlySet<RepositoryAction>;
  /** What `identity` may see in the catalog. */
  catalogView(identity: Identity | undefined): CatalogView;
  /**
   * The user whose password this is, checked as Basic credentials are (htpasswd, failed-login
   * limits per user and per client address); `undefined` when wrong or without htpasswd. The
   * web UI's sign-in form uses it.
   */
  checkPassword?(user: string, password: string, client: string): Promise<string | undefined>;
}

const EVERY_ACTION: ReadonlySet<RepositoryAction> = new Set(["pull", "push", "delete"]);

/** An authorizer that lets everyone do everything (no `auth` configured). */
export const OPEN_AUTHORIZER: Authorizer = {
  enabled: false,
  canPull: () => true,
  actions: () => EVERY_ACTION,
  catalogView: () => ({ prefixes: [""], visible: () => true }),
};

/** What a route needs. */
type Need =
  | { kind: "base" }
  | { kind: "admin" }
  | { kind: "open" }
  | { kind: "catalog" }
  | { kind: "repository"; name: string; actions: RepositoryAction[] };

const ANONYMOUS: Identity = { via: "anonymous" };

/** Options of {@link AccessControl}. */
export interface AccessControlOptions {
  /** Where warnings (an implicit token realm) and htpasswd reloads are reported. */
  log?: Logger["log"];
  /** Failed-login limits (default {@link DEFAULT_LOGIN_LIMITS}). */
  loginLimits?: LoginLimits;
}

/** What the auth files of a config hold, read and checked. */
interface AuthFiles {
  users?: Map<string, string>;
  keys?: TrustedKeys;
  signer?: TokenSigner;
}

/** Warnings about an auth config that works but may not do what is meant (an implicit realm). */
export function authWarnings(
  config: AuthConfig,
): { msg: string; fields: Record<string, string> }[] {
  if (!config.token || config.token.realm) return [];
  return [{
    msg: "auth.token.realm is not set: challenges name each request's Host",
    fields: {
      realm: `<scheme>://<Host header>${TOKEN_PATH}`,
      hint: config.htpasswd
        ? "set auth.token.realm (--token-realm) to this registry's public token URL"
        : "set auth.token.realm (--token-realm) to the external issuer's token URL: " +
          "this registry has no token endpoint without auth.htpasswd",
    },
  }];
}

/**
 * Read and check the files an auth config names (htpasswd, certificates, JWKS, signing key);
 * throws one line naming the setting at fault. `serve` and `config check` both run it.
 */
export function readAuthFiles(config: AuthConfig): AuthFiles {
  const files: AuthFiles = {};
  if (config.htpasswd) files.users = readHtpasswdSync(config.htpasswd.path);
  const token = config.token;
  if (!token) return files;
  const read = (key: string, path: string, use: (text: string) => void) => {
    try {
      use(Deno.readTextFileSync(path));
    } catch (error) {
      const reason = error instanceof Deno.errors.NotFound
        ? "does not exist"
        : (error as Error).message;
      throw new Error(`auth.token.${key}: ${path}: ${reason}`);
    }
  };
  const keys = files.keys = new TrustedKeys();
  if (token.rootcertbundle) {
    read("rootcertbundle", token.rootcertbundle, (t) => keys.addCertificateBundle(t));
  }
  if (token.jwks) read("jwks", token.jwks, (t) => keys.addJwks(t));
  if (config.htpasswd) {
    if (token.signingkey) {
      read("signingkey", token.signingkey, (t) => files.signer = new TokenSigner(t));
    } else files.signer = new TokenSigner();
  }
  return files;
}

/** The auth of one app; built by {@link createAccessControl}. */
export class AccessControl implements Authorizer {
  readonly enabled = true;
  readonly #config: AuthConfig;
  readonly #policy: Policy;
  readonly #htpasswd: Htpasswd | undefined;
  readonly #pool: BcryptPool | undefined;
  readonly #limiter: LoginLimiter;
  readonly #log: Logger["log"];
  readonly #keys: TrustedKeys | undefined;
  readonly #signer: TokenSigner | undefined;
  #ready: Promise<void> | undefined;

  /** Auth from its configuration (files are read now; a broken one throws, naming the key). */
  constructor(config: AuthConfig, options: AccessControlOptions = {}) {
    this.#config = config;
    this.#policy = new Policy(config.policy);
    this.#limiter = new LoginLimiter(options.loginLimits ?? DEFAULT_LOGIN_LIMITS);
    const log = this.#log = options.log ?? (() => {});
    const files = readAuthFiles(config);
    if (config.htpasswd && files.users) {
      const pool = this.#pool = new BcryptPool();
      this.#htpasswd = new Htpasswd(config.htpasswd.path, {
        compare: (password, hash) => pool.compare(password, hash),
        users: files.users,
        log,
      });
    }
    this.#keys = files.keys;
    this.#signer = files.signer;
    for (const warning of authWarnings(config)) log("warn", warning.msg, warning.fields);
  }

  /** Stop the password workers. */
  close(): void {
    this.#pool?.close();
  }

  /** Finish asynchronous setup (the signing key). */
  #setup(): Promise<void> {
    this.#ready ??= (async () => {
      if (this.#signer && this.#keys) this.#keys.addOwnKey(await this.#signer.publicJwk());
    })();
    return this.#ready;
  }

  /**
   * Answer requests that are auth's own (the token endpoint); `undefined` for the rest. Failed
   * logins are limited per user and per client address (`ctx.client`).
   */
  async intercept(ctx: RequestContext): Promise<Response | undefined> {
    const { request, url, client } = ctx;
    if (url.pathname !== TOKEN_PATH || !this.#signer) return undefined;
    ctx.route = "token";
    await this.#setup();
    await ctx.body?.cancel().catch(() => {});
    if (request.method !== "GET" && request.method !== "HEAD") {
      throw new RegistryError("METHOD_NOT_ALLOWED", { method: request.method }, {
        message: `method ${request.method} not allowed here`,
        headers: { Allow: "GET, HEAD" },
      });
    }
    return await this.#issue(request, url, client);
  }

  /**
   * Authenticate and authorize a routed request: sets `ctx.identity` and `ctx.access` (a refused
   * cross-repository mount becomes a plain upload); throws 401, 403, or 429 (too many failed
   * logins for the user or from `ctx.client`, the caller's address).
   */
  async check(ctx: RequestContext): Promise<void> {
    await this.#setup();
    const identity = await this.#authenticate(ctx.request, ctx.url, ctx.client);
    ctx.identity = identity;
    const need = needOf(ctx);
    if (need.kind === "open") return;
    if (need.kind === "admin") {
      // Admin endpoints: a user the policy names as admin, by Basic auth or a token of berth's.
      const known = identity.via === "basic" || identity.builtin === true;
      if (known && this.#policy.isAdmin(identity.user)) return;
      if (identity.via === "anonymous") throw this.#unauthorized(ctx.url, undefined);
      throw new RegistryError("DENIED", null, { message: "admin rights required" });
    }
    if (need.kind === "catalog") {
      // Distribution answers 401 here; berth too when a caller who may see nothing could log in.
      const unnamed = identity.via === "anonymous" ||
        (identity.via === "token" && (!identity.builtin || identity.user === undefined));
      if (!unnamed || !this.#authenticates) return;
      if (this.catalogView(identity).prefixes.length > 0) return;
      const error = identity.via === "token" ? "insufficient_scope" : undefined;
      throw this.#unauthorized(ctx.url, undefined, "authentication required", error, CATALOG_SCOPE);
    }
    if (need.kind === "base") {
      if (identity.via === "anonymous" && this.#authenticates) {
        throw this.#unauthorized(ctx.url, undefined);
      }
      return;
    }
    const granted = this.#granted(identity, need.name);
    if (!need.actions.every((a) => granted.has(a))) throw this.#refusal(ctx.url, identity, need);
    if (ctx.method === "POST" && ctx.url.searchParams.has("mount")) {
      const from = ctx.url.searchParams.get("from");
      if (from === null || !this.#granted(identity, from).has("pull")) ctx.access.mount = false;
    }
  }

  /** Whether `identity` (as {@link check} found it) may pull from `name`. */
  canPull(caller: Identity | undefined, name: string): boolean {
    return this.actions(caller, name).has("pull");
  }

  /** What `identity` (as {@link check} found it) may do on `name`. */
  actions(caller: Identity | undefined, name: string): ReadonlySet<RepositoryAction> {
    const identity = caller ?? ANONYMOUS;
    if (identity.via === "token" && !identity.builtin) return this.#granted(identity, name);
    return this.#policy.actions(identity.user, name);
  }

  /**
   * What `identity` may see in the catalog: the policy's; for an external issuer's token, every
   * repository when it grants `registry:catalog:*` (as distribution lists), else its grants.
   */
  catalogView(caller: Identity | undefined): CatalogView {
    const identity = caller ?? ANONYMOUS;
    if (identity.via === "token" && !identity.builtin) {
      const catalog = (identity.access ?? []).some((entry) =>
        entry.type === "registry" && entry.name === "catalog" && entry.actions.includes("*")
      );
      if (catalog) return { prefixes: [""], visible: () => true };
      const names = (identity.access ?? []).filter((entry) =>
        entry.type === "repository" && entry.actions.some((a) => a === "pull" || a === "*")
      ).map((entry) => entry.name);
      return { prefixes: outerPrefixes(names), visible: (name) => this.canPull(identity, name) };
    }
    return {
      prefixes: this.#policy.pullPrefixes(identity.user),
      visible: (name) => this.#policy.actions(identity.user, name).has("pull"),
    };
  }

  /** Whether callers can authenticate at all (else only the policy's anonymous rules apply). */
  get #authenticates(): boolean {
    return this.#htpasswd !== undefined || this.#keys !== undefined;
  }

  #granted(identity: Identity, name: string): Set<RepositoryAction> {
    if (identity.via !== "token") return this.#policy.actions(identity.user, name);
    const granted = new Set<RepositoryAction>();
    for (const entry of identity.access ?? []) {
      if (entry.type !== "repository" || entry.name !== name) continue;
      for (const action of entry.actions) {
        if (action === "*") ["pull", "push", "delete"].forEach((a) => granted.add(a as never));
        else if (action === "pull" || action === "push" || action === "delete") {
          granted.add(action);
        }
      }
    }
    return granted;
  }

  async #authenticate(request: RequestView, url: URL, client: string): Promise<Identity> {
    const header = request.headers.get("Authorization");
    if (header === null) return ANONYMOUS;
    const space = header.indexOf(" ");
    const scheme = header.slice(0, space).toLowerCase();
    const credentials = header.slice(space + 1).trim();
    if (space < 0 || header.length > MAX_AUTHORIZATION) {
      throw this.#unauthorized(url, undefined, "malformed Authorization header");
    }
    // Clients without credentials answer a Basic challenge with an empty user (`Basic Og==`).
    if (scheme === "basic" && (credentials === "" || credentials === "Og==")) return ANONYMOUS;
    if (scheme === "basic" && this.#htpasswd) {
      const user = await this.#basicUser(credentials, client);
      if (user === undefined) throw this.#unauthorized(url, undefined, "invalid credentials");
      return { user, via: "basic" };
    }
    if (scheme === "bearer" && this.#keys && this.#config.token) {
      try {
        const { claims, origin } = await verifyToken(credentials, this.#keys, {
          issuer: this.#config.token.issuer,
          audience: this.#config.token.service,
        });
        const identity: Identity = { via: "token", access: claims.access ?? [] };
        if (claims.sub !== "") identity.user = claims.sub;
        // A token berth signed (verified by berth's own key, whatever its claims say) names a
        // user of its htpasswd file; the policy applies to them.
        identity.builtin = origin === "berth";
        return identity;
      } catch (error) {
        if (!(error instanceof TokenInvalid)) throw error;
        throw this.#unauthorized(url, undefined, error.message, "invalid_token");
      }
    }
    throw this.#unauthorized(url, undefined, `unsupported authorization scheme`);
  }

  /**
   * The user of Basic credentials, or `undefined` when they are wrong or malformed; throws 429
   * when the user or the address had too many failures (remembered logins still pass).
   */
  async #basicUser(credentials: string, client: string): Promise<string | undefined> {
    let decoded: string;
    try {
      decoded = new TextDecoder("utf-8", { fatal: true }).decode(
        Uint8Array.from(atob(credentials), (c) => c.charCodeAt(0)),
      );
    } catch {
      return undefined;
    }
    const colon = decoded.indexOf(":");
    if (colon <= 0) return undefined;
    return await this.checkPassword(decoded.slice(0, colon), decoded.slice(colon + 1), client);
  }

  /**
   * The user whose password this is, or `undefined` when it is wrong (or there is no htpasswd);
   * throws 429 when the user or the address had too many failures (remembered logins pass).
   */
  async checkPassword(user: string, password: string, client: string): Promise<string | undefined> {
    if (!this.#htpasswd || user === "") return undefined;
    const admit = () => {
      const refusal = this.#limiter.refusal(user, client);
      if (!refusal) return;
      const who = refusal.reason === "user" ? "this user" : "this address";
      throw new RegistryError("TOOMANYREQUESTS", { reason: `failed logins for ${who}` }, {
        message: `too many failed logins for ${who}; retry in ${refusal.retryAfterSeconds} s`,
        headers: { "Retry-After": String(refusal.retryAfterSeconds) },
      });
    };
    let ok: boolean;
    try {
      ok = await this.#htpasswd.verify(user, password, { admit });
    } catch (error) {
      if (!(error instanceof PoolBusy)) throw error;
      throw new RegistryError("TOOMANYREQUESTS", null, {
        message: "too many logins in progress; retry shortly",
        headers: { "Retry-After": "1" },
      });
    }
    if (ok) this.#limiter.succeeded(user);
    else {
      const limited = this.#limiter.failed(user, client);
      if (limited) {
        this.#log("warn", "too many failed logins: password checks refused for a while", {
          limited,
          user: user.slice(0, 100),
          remote: client,
        });
      }
    }
    return ok ? user : undefined;
  }

  #refusal(url: URL, identity: Identity, need: Need & { kind: "repository" }): RegistryError {
    const known = identity.user !== undefined;
    if (identity.via === "basic") return denied(need);
    if (identity.via === "token" && known && identity.builtin) {
      // A fresh token would not help if the policy refuses the user anyway.
      if (!this.#policy.allows(identity.user, need.name, need.actions)) return denied(need);
    }
    const error = identity.via === "token" ? "insufficient_scope" : undefined;
    return this.#unauthorized(url, need, "authentication required", error);
  }

  #unauthorized(
    url: URL,
    need: (Need & { kind: "repository" }) | undefined,
    message = "authentication required",
    error?: string,
    scope?: string,
  ): RegistryError {
    const token = this.#config.token;
    let challenge: string;
    if (token) {
      const realm = token.realm ?? `${url.protocol}//${url.host}${TOKEN_PATH}`;
      challenge = `Bearer realm=${quote(realm)},service=${quote(token.service)}`;
      if (need) {
        const actions = need.actions.includes("pull") ? need.actions : ["pull", ...need.actions];
        challenge += `,scope=${quote(`repository:${need.name}:${actions.join(",")}`)}`;
      } else if (scope) challenge += `,scope=${quote(scope)}`;
      if (error) challenge += `,error=${quote(error)}`;
    } else {
      challenge = `Basic realm=${quote(this.#config.htpasswd?.realm ?? "berth")}`;
    }
    const detail = need
      ? need.actions.map((action) => ({ Type: "repository", Name: need.name, Action: action }))
      : null;
    return new RegistryError("UNAUTHORIZED", detail, {
      message,
      headers: { "WWW-Authenticate": challenge },
    });
  }

  async #issue(request: RequestView, url: URL, client: string): Promise<Response> {
    const token = this.#config.token!;
    let user: string | undefined;
    const header = request.headers.get("Authorization");
    if (header !== null) {
      const [scheme = "", credentials = ""] = header.split(" ", 2);
      user = scheme.toLowerCase() === "basic" && header.length <= MAX_AUTHORIZATION
        ? await this.#basicUser(credentials.trim(), client)
        : undefined;
      if (user === undefined) {
        throw new RegistryError("UNAUTHORIZED", null, {
          message: "invalid credentials",
          headers: {
            "WWW-Authenticate": `Basic realm=${quote(this.#config.htpasswd?.realm ?? "berth")}`,
          },
        });
      }
    }
    const service = url.searchParams.get("service");
    if (service !== null && service !== token.service) {
      throw new RegistryError("SERVICE_INVALID", { service: service.slice(0, 200) }, {
        message: `this token endpoint serves "${token.service}" only`,
      });
    }
    const access: AccessEntry[] = [];
    for (const scope of url.searchParams.getAll("scope").flatMap((s) => s.split(" "))) {
      const entry = parseScope(scope);
      if (!entry) continue;
      if (entry.type === "repository") {
        const allowed = this.#policy.actions(user, entry.name);
        const actions = entry.actions.flatMap((a) => a === "*" ? [...allowed] : [a])
          .filter((a) => allowed.has(a as RepositoryAction));
        access.push({ ...entry, actions: [...new Set(actions)] });
      } else if (entry.type === "registry" && entry.name === "catalog" && user !== undefined) {
        access.push({ type: "registry", name: "catalog", actions: ["*"] });
      }
    }
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = token.expiration ?? DEFAULT_TOKEN_SECONDS;
    const jwt = await this.#signer!.sign({
      iss: token.issuer,
      sub: user ?? "",
      aud: token.service,
      exp: now + expiresIn,
      nbf: now - 1,
      iat: now,
      jti: `berth-${crypto.randomUUID()}`,
      access,
    });
    const body = JSON.stringify({
      token: jwt,
      access_token: jwt,
      expires_in: expiresIn,
      issued_at: new Date(now * 1000).toISOString(),
    });
    return new Response(request.method === "HEAD" ? null : body, {
      headers: { "Content-Type": "application/json", "Cache-Control": "no-store" },
    });
  }
}

/** Build the auth hook of an app, or `undefined` when nothing is configured. */
export function createAccessControl(
  config: AuthConfig | undefined,
  options: AccessControlOptions = {},
): AccessControl | undefined {
  if (!config || (!config.htpasswd && !config.token && !config.policy)) return undefined;
  return new AccessControl(config, options);
}

/** What a routed request needs, by its route. */
function needOf(ctx: RequestContext): Need {
  const name = ctx.params.name;
  if (ctx.route === "admin") return { kind: "admin" };
  if (ctx.route === "base") return { kind: "base" };
  if (ctx.route === "catalog") return { kind: "catalog" };
  if (name === undefined) return { kind: "open" };
  const method = ctx.method;
  let actions: RepositoryAction[];
  if (ctx.route === "uploads") actions = ["push"];
  else if (method === "GET" || method === "HEAD") actions = ["pull"];
  else if (method === "DELETE") actions = ["delete"];
  else actions = ["push"];
  return { kind: "repository", name, actions };
}

/** Parse `type:name:actions` (a name may hold `:`, e.g. a port). */
function parseScope(scope: string): AccessEntry | undefined {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first <= 0 || last === first || scope.length > 1024) return undefined;
  const actions = scope.slice(last + 1).split(",").filter((a) => a !== "");
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions };
}

function denied(need: Need & { kind: "repository" }): RegistryError {
  return new RegistryError(
    "DENIED",
    need.actions.map((action) => ({ Type: "repository", Name: need.name, Action: action })),
  );
}

function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, "\\$&").replace(/[\r\n]/g, "")}"`;
}
