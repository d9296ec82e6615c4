/**
 * Berth's configuration: the type, its defaults, and the command-line/environment overrides the
 * `serve` command reads.
 *
 * @module
 */

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
  /** `"filesystem"` (default) or `"memory"` (tests, throw-away registries). */
  storage: "filesystem" | "memory";
  /** Whether DELETE requests are allowed. */
  deleteEnabled: boolean;
  /** Refuse every write. */
  readOnly: boolean;
  /** Largest manifest accepted, in bytes. */
  maxManifestBytes: number;
  /** Accept indexes whose child manifests are not in the repository. */
  sparseIndexes: boolean;
  /** Stale upload session purging. */
  uploadPurging: UploadPurging;
  /** Log level. */
  logLevel: "error" | "warn" | "info" | "debug";
  /** Write one JSON access log line per request. */
  accessLog: boolean;
  /** On SIGTERM/SIGINT, how long in-flight requests may take before the server exits (ms). */
  drainTimeoutMs: number;
}

/** Defaults: the embedded registry a new user gets with no flags. */
export const DEFAULT_CONFIG: Config = {
  addr: "0.0.0.0:5000",
  dataDir: "./data",
  storage: "filesystem",
  deleteEnabled: true,
  readOnly: false,
  maxManifestBytes: 4 * 1024 * 1024,
  sparseIndexes: false,
  uploadPurging: {
    enabled: true,
    ageMs: 168 * 3600_000,
    intervalMs: 24 * 3600_000,
    dryRun: false,
  },
  logLevel: "info",
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
