/**
 * Berth's configuration: the type and its defaults. Files, `REGISTRY_*` variables and flags are
 * read into it by `config_file.ts`.
 *
 * @module
 */
import type { ProxyConfig } from "./proxy/mirrors.ts";
import type { NotificationsConfig, RepositoryPolicy } from "./config_events.ts";

/** Upload purging, as distribution's `storage.maintenance.uploadpurging`. */
export interface UploadPurging {
  /** Whether stale sessions are purged. */
  enabled: boolean;
  /** Sessions older than this many milliseconds are removed. */
  ageMs: number;
  /** How often to look, in milliseconds. */
  intervalMs: number;
  /** Only report what would be removed. */
  dryRun: boolean;
}

/** The whole configuration of a berth server. */
export interface Config {
  /** Listen address, `host:port`. */
  addr: string;
  /** Root of the filesystem store (distribution's `rootdirectory`). */
  dataDir: string;
  /** `"filesystem"` (default), `"memory"` (tests, throw-away registries) or `"s3"`. */
  storage: "filesystem" | "memory" | "s3";
  /** The S3 bucket, when `storage` is `"s3"` (distribution's `storage.s3`). */
  s3?: S3Config;
  /** Whether DELETE requests are allowed. */
  deleteEnabled: boolean;
  /** Refuse every write. */
  readOnly: boolean;
  /** Largest manifest accepted, in bytes. */
  maxManifestBytes: number;
  /** Memory budget of the manifest cache (raw bytes and parsed form), in bytes; 0: no cache. */
  manifestCacheBytes: number;
  /** Accept indexes whose child manifests are not in the repository. */
  sparseIndexes: boolean;
  /** Stale upload session purging. */
  uploadPurging: UploadPurging;
  /** Log level. */
  logLevel: "error" | "warn" | "info" | "debug";
  /** Largest page of the tags list and the catalog (distribution's `catalog.maxentries`). */
  maxListEntries: number;
  /** Garbage collection inside the server. */
  gc: GcConfig;
  /** Authentication and authorization (distribution's `auth`, plus berth's `policy`); none: open. */
  auth?: AuthConfig;
  /** TLS (distribution's `http.tls`); none: plain HTTP. */
  tls?: TlsConfig;
  /** Request limits and timeouts (defaults: {@link DEFAULT_LIMITS}). */
  limits?: Partial<LimitsConfig>;
  /** Proxies (addresses, CIDR ranges) whose `X-Forwarded-For` names the client (`http.trustedproxies`). */
  trustedProxies?: string[];
  /** Time a connection has to send complete request headers, ms (`http.headertimeout`). */
  headerTimeoutMs?: number;
  /** Time an idle keep-alive connection stays open, ms (`http.idletimeout`). */
  idleTimeoutMs?: number;
  /** Time one write of a response may wait for the client to read, ms (`http.writetimeout`). */
  writeTimeoutMs?: number;
  /** Most connections open at once (`http.maxconnections`). */
  maxConnections?: number;
  /** Write one JSON access log line per request. */
  accessLog: boolean;
  /** On SIGTERM/SIGINT, how long in-flight requests may take before the server exits (ms). */
  drainTimeoutMs: number;
  /** Serve `/metrics` and `/healthz` on this `host:port` too (distribution's `http.debug.addr`). */
  debugAddr?: string;
  /**
   * Key material for state kept by clients (distribution's `http.secret`): the web UI signs its
   * session cookies and form tokens under keys derived from it, so replicas that share it (and
   * a restarted process) accept each other's; none: a random key per process.
   */
  httpSecret?: string;
  /** Pull-through cache: the mirrored upstreams (`proxy`); none: every repository is local. */
  proxy?: ProxyConfig;
  /** Immutable tags and retention, first matching entry wins (berth's `policies`). */
  policies?: RepositoryPolicy[];
  /** Webhooks (distribution's `notifications`), from a durable queue. */
  notifications?: NotificationsConfig;
}

/** Distribution's `storage.s3` (plus `storage.redirect.disable`), with its defaults applied. */
export interface S3Config {
  /** Access key; from `AWS_ACCESS_KEY_ID` when not configured. */
  accessKey: string;
  /** Secret key; from `AWS_SECRET_ACCESS_KEY` when not configured. */
  secretKey: string;
  /** Session token of temporary credentials (`AWS_SESSION_TOKEN`). */
  sessionToken?: string;
  /** Signing region. */
  region: string;
  /** Endpoint URL of an S3-compatible store; default AWS's endpoint of the region. */
  regionEndpoint: string;
  /** Bucket name. */
  bucket: string;
  /** Key prefix of the registry's tree in the bucket (no leading or trailing `/`; may be empty). */
  rootDirectory: string;
  /** Part size of multipart uploads in bytes (at least 5 MiB). */
  chunkSize: number;
  /** Path-style addressing (`endpoint/bucket/key`). */
  forcePathStyle: boolean;
  /** Blobs at least this large are moved by multipart copy (bytes). */
  multipartCopyThresholdSize: number;
  /** Part size of multipart copies (bytes). */
  multipartCopyChunkSize: number;
  /** Blob GETs answer with a redirect to a presigned URL (`storage.redirect.disable: false`). */
  redirect: boolean;
}

/** Online garbage collection (see `src/services/gc.ts`). */
export interface GcConfig {
  /** Run a collection every this many milliseconds; 0 turns the schedule off. */
  intervalMs: number;
  /** Blobs written, linked or used less than this many milliseconds ago are never removed. */
  gracePeriodMs: number;
  /** Serve `POST /admin/gc` (run a collection now, answer its report). */
  adminEndpoint: boolean;
}

/** Distribution's `auth.htpasswd`: Basic auth against an htpasswd file of bcrypt entries. */
export interface HtpasswdConfig {
  /** Realm of the `WWW-Authenticate: Basic` challenge. */
  realm: string;
  /** Path of the htpasswd file (`htpasswd -B` entries). */
  path: string;
}

/**
 * Distribution's `auth.token`: Bearer tokens (JWT). With `auth.htpasswd` also set, berth issues
 * tokens itself at `/auth/token`; `rootcertbundle` and `jwks` add keys of an external issuer.
 */
export interface TokenConfig {
  /** Token endpoint URL clients are sent to; default: berth's own `/auth/token` on the request's host. */
  realm?: string;
  /** The service name: the tokens' audience. */
  service: string;
  /** The tokens' issuer (`iss`). */
  issuer: string;
  /** PEM file of X.509 certificates whose keys sign trusted tokens. */
  rootcertbundle?: string;
  /** JSON Web Key Set file of trusted token keys. */
  jwks?: string;
  /** EC P-256 private key (PEM) berth signs its tokens with; default: a key made at start. */
  signingkey?: string;
  /** Lifetime of tokens berth issues, in seconds (default 300). */
  expiration?: number;
}

/** Actions a policy grants on repositories. */
export type RepositoryAction = "pull" | "push" | "delete";

/** One rule of the authorization policy: who may do what on which repositories. */
export interface PolicyRule {
  /** Glob patterns of repository names (`*` within a path component, `**` across). */
  repositories: string[];
  /** Users it applies to; `"*"` is every authenticated user. */
  users?: string[];
  /** Groups it applies to. */
  groups?: string[];
  /** Whether it applies to anonymous callers too. */
  anonymous?: boolean;
  /** What it grants (`"*"`: all three). */
  actions: (RepositoryAction | "*")[];
}

/** Berth's authorization policy: the union of its rules' grants. */
export interface PolicyConfig {
  /** Group name → member users. */
  groups?: Record<string, string[]>;
  /** The rules. */
  rules: PolicyRule[];
  /** Who may use the admin endpoints (`/admin/...`): user names, or `@group`. */
  admins?: string[];
}

/** Authentication and authorization settings. */
export interface AuthConfig {
  /** Basic auth from an htpasswd file. */
  htpasswd?: HtpasswdConfig;
  /** Bearer token auth. */
  token?: TokenConfig;
  /** Who may pull, push and delete what; none: every authenticated user may do everything. */
  policy?: PolicyConfig;
}

/** Distribution's `http.tls`. */
export interface TlsConfig {
  /** PEM certificate (chain) file. */
  certificate: string;
  /** PEM private key file. */
  key: string;
}

/** Request limits and timeouts. */
export interface LimitsConfig {
  /** Largest total size of request headers, in bytes (431 beyond). */
  maxHeaderBytes: number;
  /** Largest request body (one upload chunk or monolithic blob), in bytes (413 beyond). */
  maxBodyBytes: number;
  /** Most open upload sessions per client (429 beyond). */
  maxUploadsPerClient: number;
  /** A request body that sends nothing for this long is dropped (408), in milliseconds. */
  bodyIdleTimeoutMs: number;
  /** Slowest accepted body rate after the first `bodyIdleTimeoutMs`, in bytes per second (408). */
  minBodyBytesPerSecond: number;
  /** An upload session untouched for this long is removed, in milliseconds. */
  uploadSessionTimeoutMs: number;
}

/** Default limits. */
export const DEFAULT_LIMITS: LimitsConfig = {
  maxHeaderBytes: 64 * 1024,
  maxBodyBytes: 64 * 1024 ** 3,
  maxUploadsPerClient: 64,
  bodyIdleTimeoutMs: 60_000,
  minBodyBytesPerSecond: 1024,
  uploadSessionTimeoutMs: 120_000,
};

/** Defaults: the embedded registry a new user gets with no flags. */
export const DEFAULT_CONFIG: Config = {
  addr: "0.0.0.0:5000",
  dataDir: "./data",
  storage: "filesystem",
  deleteEnabled: true,
  readOnly: false,
  maxManifestBytes: 4 * 1024 * 1024,
  manifestCacheBytes: 64 * 1024 * 1024,
  sparseIndexes: false,
  uploadPurging: {
    enabled: true,
    ageMs: 168 * 3600_000,
    intervalMs: 24 * 3600_000,
    dryRun: false,
  },
  logLevel: "info",
  maxListEntries: 1000,
  gc: { intervalMs: 24 * 3600_000, gracePeriodMs: 3600_000, adminEndpoint: false },
  accessLog: true,
  drainTimeoutMs: 10_000,
};

/** A copy of the defaults with `overrides` applied. */
export function makeConfig(overrides: Partial<Config> = {}): Config {
  return {
    ...structuredClone(DEFAULT_CONFIG),
    ...overrides,
  };
}

/** Split `host:port` (IPv6 in brackets allowed) into its parts. */
export function parseAddr(addr: string): { hostname: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr);
  const port = Number(match?.[3]);
  if (!match || port > 65535) {
    throw new Error(`invalid listen address "${addr}": expected host:port`);
  }
  return { hostname: match[1] ?? (match[2] || "0.0.0.0"), port };
}
