/**
 * Distribution-compatible configuration: a `config.yml` as distribution reads it, `REGISTRY_*`
 * environment overrides exactly as distribution names them (the key path upper-cased and joined
 * with `_`), and command-line flags over both.
 *
 * Every key is checked against {@link CONFIG_SCHEMA}: keys berth implements are mapped onto
 * {@link Config}; common keys that change nothing berth does (caches, response headers,
 * distribution's own health checks) are accepted with a warning so a stock config starts
 * unchanged; keys whose absence would change behaviour or security (other storage drivers,
 * middleware, unknown auth schemes) and unknown keys are refused with an error naming the
 * key.
 *
 * @module
 */
import { AddressSet } from "./http/client_address.ts";
import { DEFAULT_CONNECTION_LIMITS } from "./http/connection_limits.ts";
import { readPolicy } from "./commands/serve_auth.ts";
import { isValidName } from "./oci/names.ts";
import {
  DEFAULT_REVALIDATE_MS,
  DEFAULT_UPSTREAM_TIMEOUT_MS,
  type MirrorConfig,
  type ProxyConfig,
} from "./proxy/mirrors.ts";
import {
  type AuthConfig,
  type Config,
  DEFAULT_LIMITS,
  type GcConfig,
  type LimitsConfig,
  makeConfig,
  parseAddr,
  type TokenConfig,
} from "./config.ts";
import { parseNotifications, parsePolicies } from "./config_events.ts";

/** The result of loading: the config and warnings. */
export interface LoadedConfig {
  /** The configuration in force. */
  config: Config;
  /** Keys accepted but ignored, deprecated keys, unknown environment variables. */
  warnings: string[];
}

/** A configuration problem; the message names the key (and the variable, when one set it). */
export class ConfigError extends Error {
  /** Build the error. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Options of {@link parseConfigWith} and {@link loadConfig}. */
export interface ConfigSources {
  /** The environment (only `REGISTRY_*` variables are read). */
  env?: Record<string, string>;
  /** Overrides from command-line flags: applied last. */
  flags?: Partial<Config>;
  /** Overrides of single garbage collection settings from flags (`--gc-interval`, `--gc-grace`). */
  gcFlags?: Partial<GcConfig>;
}

/** The kinds of values. */
type ValueType = "string" | "bool" | "int" | "duration" | "size" | "level" | "version";

/** How one key of the configuration is treated. */
type Rule =
  | { kind: "section"; keys: Record<string, Rule> }
  | { kind: "list"; item: Rule }
  | { kind: "value"; type: ValueType }
  | { kind: "ignore"; why: string }
  | { kind: "refuse"; why: string }
  | { kind: "raw" };

const section = (keys: Record<string, Rule>): Rule => ({ kind: "section", keys });
const STRING: Rule = { kind: "value", type: "string" };
const BOOL: Rule = { kind: "value", type: "bool" };
const DURATION: Rule = { kind: "value", type: "duration" };
const INT: Rule = { kind: "value", type: "int" };
const SIZE: Rule = { kind: "value", type: "size" };
const ignore = (why: string): Rule => ({ kind: "ignore", why });
const refuse = (why: string): Rule => ({ kind: "refuse", why });
/** Checked by its own parser (lists of entries: `policies`, `notifications`). */
const RAW: Rule = { kind: "raw" };

const OTHER_DRIVER = refuse("berth stores data on the filesystem, in S3 or in memory only");

/** Every key berth knows, with how it is treated. */
export const CONFIG_SCHEMA: Rule = section({
  version: { kind: "value", type: "version" },
  log: section({
    level: { kind: "value", type: "level" },
    accesslog: section({ disabled: BOOL }),
    formatter: ignore("berth always logs JSON lines"),
    fields: ignore("extra log fields are not added"),
    hooks: ignore("log hooks are not supported"),
    reportcaller: ignore("caller reporting is not supported"),
  }),
  loglevel: { kind: "value", type: "level" },
  storage: section({
    filesystem: section({
      rootdirectory: STRING,
      maxthreads: ignore("berth needs no thread limit"),
    }),
    inmemory: section({}),
    delete: section({ enabled: BOOL }),
    maintenance: section({
      uploadpurging: section({ enabled: BOOL, age: DURATION, interval: DURATION, dryrun: BOOL }),
      readonly: section({ enabled: BOOL }),
      // berth's own: online garbage collection (see docs/content-management.md).
      gc: section({ interval: DURATION, graceperiod: DURATION, adminendpoint: BOOL }),
    }),
    cache: ignore("berth keeps no blob descriptor cache"),
    redirect: section({ disable: BOOL }),
    tag: ignore("tag lookups need no concurrency limit"),
    s3: section({
      accesskey: STRING,
      secretkey: STRING,
      sessiontoken: STRING,
      region: STRING,
      regionendpoint: STRING,
      bucket: STRING,
      rootdirectory: STRING,
      secure: BOOL,
      v4auth: BOOL,
      chunksize: INT,
      forcepathstyle: BOOL,
      multipartcopythresholdsize: INT,
      multipartcopychunksize: INT,
      multipartcopymaxconcurrency: ignore("multipart copies run one part at a time"),
      encrypt: refuse(
        "server-side encryption settings are not supported (use the bucket's default)",
      ),
      keyid: refuse("server-side encryption settings are not supported (use the bucket's default)"),
      skipverify: refuse("TLS verification of the store cannot be skipped"),
      accelerate: refuse("transfer acceleration is not supported"),
      storageclass: ignore("objects get the bucket's default storage class"),
      objectacl: ignore("objects get the bucket's default ACL"),
      useragent: ignore("berth sends its own user agent"),
      usedualstack: ignore("the endpoint is used as given"),
      loglevel: ignore("S3 calls are not logged separately"),
    }),
    azure: OTHER_DRIVER,
    gcs: OTHER_DRIVER,
    swift: OTHER_DRIVER,
    oss: OTHER_DRIVER,
  }),
  http: section({
    addr: STRING,
    net: STRING,
    draintimeout: DURATION,
    trustedproxies: STRING,
    headertimeout: DURATION,
    idletimeout: DURATION,
    writetimeout: DURATION,
    maxconnections: INT,
    tls: section({
      certificate: STRING,
      key: STRING,
      clientcas: refuse("client certificate authentication is not supported"),
      letsencrypt: refuse("Let's Encrypt is not supported; give certificate and key files"),
      minimumtls: ignore("Deno chooses the TLS versions"),
      ciphersuites: ignore("Deno chooses the cipher suites"),
    }),
    prefix: refuse("berth serves /v2/ at the root; put a reverse proxy in front for a prefix"),
    host: ignore("berth builds relative Location URLs"),
    relativeurls: ignore("berth builds relative Location URLs"),
    secret: STRING,
    headers: ignore("extra response headers are not added"),
    http2: ignore("Deno negotiates HTTP/2 itself"),
    h2c: ignore("cleartext HTTP/2 is not configurable"),
    debug: section({
      addr: STRING,
      prometheus: ignore("berth serves Prometheus metrics at /metrics on both addresses"),
      tls: refuse("the debug address serves plain HTTP only"),
    }),
  }),
  auth: section({
    htpasswd: section({ realm: STRING, path: STRING }),
    token: section({
      realm: STRING,
      service: STRING,
      issuer: STRING,
      rootcertbundle: STRING,
      autoredirect: ignore("token realm redirects are not supported"),
      jwks: STRING,
      signingkey: STRING,
      signingalgorithms: ignore("the certificate's algorithm is used"),
    }),
    silly: refuse("the silly test scheme is not supported"),
    policy: STRING,
  }),
  health: ignore("berth serves /healthz; distribution's health checks are not configurable"),
  notifications: RAW,
  // berth's own: immutable tags and retention (src/config_events.ts).
  policies: RAW,
  redis: ignore("berth uses no redis"),
  reporting: ignore("error reporting services are not supported"),
  catalog: section({ maxentries: INT }),
  // berth's own: request limits and memory budgets (see the README's table of limits).
  limits: section({
    maxheaderbytes: SIZE,
    maxbodybytes: SIZE,
    maxmanifestbytes: SIZE,
    manifestcachebytes: SIZE,
    maxuploadsperclient: INT,
    uploadsessiontimeout: DURATION,
    bodyidletimeout: DURATION,
    minbodybytespersecond: SIZE,
  }),
  validation: ignore("manifest URL validation is not configurable"),
  compatibility: ignore("schema1 manifests are not supported"),
  policy: ignore("repository policies are not supported"),
  middleware: refuse("middleware (CDN redirects, etc.) is not supported"),
  // distribution's single upstream, and berth's mirrors (src/proxy/mirrors.ts).
  proxy: section({
    remoteurl: STRING,
    username: STRING,
    password: STRING,
    ttl: DURATION,
    revalidate: DURATION,
    timeout: DURATION,
    mirrors: {
      kind: "list",
      item: section({
        prefix: STRING,
        remoteurl: STRING,
        username: STRING,
        password: STRING,
        ttl: DURATION,
        library: BOOL,
      }),
    },
  }),
});

const LEVELS: Record<string, Config["logLevel"]> = {
  panic: "error",
  fatal: "error",
  error: "error",
  warn: "warn",
  warning: "warn",
  info: "info",
  debug: "debug",
  trace: "debug",
};

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/** Parse a byte size (`65536`, `64MiB`, `1.5GB`, `64m`) into bytes; `undefined` if invalid. */
export function parseSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) return undefined;
  const bytes = Math.round(Number(match[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** Parse a Go duration (`168h`, `2h10m`, `1.5s`, `0`) into milliseconds; `undefined` if invalid. */
export function parseDuration(text: string): number | undefined {
  if (text === "0") return 0;
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  while (at < text.length) {
    part.lastIndex = at;
    const match = part.exec(text);
    if (!match) return undefined;
    total += Number(match[1]) * DURATION_UNITS[match[2]!]!;
    at = part.lastIndex;
  }
  return at === 0 || !Number.isFinite(total) ? undefined : total;
}

type Tree = Record<string, unknown>;

const isTree = (value: unknown): value is Tree =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const describe = (value: unknown): string =>
  Array.isArray(value) ? "a list" : value === null ? "nothing" : `a ${typeof value}`;

/** Where a key's value came from, for error messages. */
type Origins = Map<string, string>;

const at = (path: string, origins: Origins): string => {
  for (const [prefix, variable] of origins) {
    if (path === prefix || path.startsWith(`${prefix}.`)) return `${path} (set by ${variable})`;
  }
  return path;
};

/** Check a value against its rule; returns the normalized value. Warnings go to `warnings`. */
function check(
  rule: Rule,
  value: unknown,
  path: string,
  origins: Origins,
  warnings: string[],
): unknown {
  switch (rule.kind) {
    case "ignore":
      warnings.push(`${at(path, origins)}: ignored (${rule.why})`);
      return undefined;
    case "refuse":
      throw new ConfigError(`${at(path, origins)}: not supported: ${rule.why}`);
    case "section": {
      if (value === null || value === undefined || value === "") return {};
      if (!isTree(value)) {
        throw new ConfigError(`${at(path, origins)}: expected a section, got ${describe(value)}`);
      }
      const out: Tree = {};
      for (const [key, child] of Object.entries(value)) {
        const childPath = path ? `${path}.${key}` : key;
        const childRule = rule.keys[key.toLowerCase()];
        if (!childRule) throw new ConfigError(`${at(childPath, origins)}: unknown key`);
        const checked = check(childRule, child, childPath, origins, warnings);
        if (checked !== undefined) out[key.toLowerCase()] = checked;
      }
      return out;
    }
    case "list": {
      if (value === null || value === undefined || value === "") return [];
      if (!Array.isArray(value)) {
        throw new ConfigError(`${at(path, origins)}: expected a list, got ${describe(value)}`);
      }
      return value.map((item, i) => check(rule.item, item, `${path}.${i}`, origins, warnings));
    }
    case "value":
      return checkValue(rule.type, value, at(path, origins));
    case "raw":
      return value;
  }
}

function checkValue(
  type: ValueType,
  value: unknown,
  where: string,
): unknown {
  const scalar = typeof value === "string" || typeof value === "number" ||
    typeof value === "boolean";
  if (!scalar) throw new ConfigError(`${where}: expected a value, got ${describe(value)}`);
  const text = String(value);
  switch (type) {
    case "string":
      return text;
    case "bool":
      if (typeof value === "boolean") return value;
      if (text === "true" || text === "false") return text === "true";
      throw new ConfigError(`${where}: expected true or false, got "${text}"`);
    case "int": {
      const n = Number(text);
      if (!Number.isSafeInteger(n) || n <= 0) {
        throw new ConfigError(`${where}: expected a positive integer, got "${text}"`);
      }
      return n;
    }
    case "duration": {
      const ms = parseDuration(text);
      if (ms === undefined) {
        throw new ConfigError(
          `${where}: expected a duration such as 168h, 10m or 30s, got "${text}"`,
        );
      }
      return ms;
    }
    case "size": {
      const bytes = parseSize(text);
      if (bytes === undefined) {
        throw new ConfigError(
          `${where}: expected a size such as 65536, 64KiB or 4MiB, got "${text}"`,
        );
      }
      return bytes;
    }
    case "level": {
      const level = LEVELS[text.toLowerCase()];
      if (!level) {
        throw new ConfigError(`${where}: expected error, warn, info or debug, got "${text}"`);
      }
      return level;
    }
    case "version":
      // YAML reads `0.1` as a number; distribution knows only 0.1.
      if (text !== "0.1") {
        throw new ConfigError(`${where}: unsupported version "${text}" (use 0.1)`);
      }
      return text;
  }
}

/** Set `value` at `path` in `tree`, creating sections on the way. */
function setPath(tree: Tree, path: string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (isTree(next)) node = next;
    else node = node[key] = {};
  }
  node[path.at(-1)!] = value;
}

/**
 * A YAML parser (the npm `yaml` package's `parse`). Loading that package costs a start ~80 ms of
 * CPU and ~7 MiB, so {@link loadConfig} loads it only when a config file or a variable needs it.
 */
export type YamlParse = (text: string, options?: { uniqueKeys?: boolean }) => unknown;

/** Plain scalars YAML (1.2, core schema) reads as a string: no indicator first, no `: `, no `#`. */
const PLAIN_TEXT = /^[A-Za-z0-9_/][A-Za-z0-9_/.:@+-]*$/;
/** Plain scalars YAML reads as a number (core schema: decimal, octal, hex, float). */
const YAML_NUMBER =
  /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)$/;
/** Plain scalars YAML reads as `null`, `true` or `false`. */
const YAML_WORDS: Record<string, null | boolean> = {
  "": null,
  "~": null,
  null: null,
  Null: null,
  NULL: null,
  true: true,
  True: true,
  TRUE: true,
  false: false,
  False: false,
  FALSE: false,
};

/**
 * What YAML reads `text` as, for the simple values variables usually hold (words, paths,
 * addresses, small integers, booleans), without a YAML parser; `undefined` for anything else.
 */
export function plainScalar(text: string): { value: unknown } | undefined {
  if (Object.hasOwn(YAML_WORDS, text)) return { value: YAML_WORDS[text] };
  if (/^(?:0|[1-9][0-9]{0,14})$/.test(text)) return { value: Number(text) };
  if (!PLAIN_TEXT.test(text) || text.endsWith(":") || YAML_NUMBER.test(text)) return undefined;
  return { value: text };
}

/** Whether parsing `text` with these variables needs a YAML parser (see {@link YamlParse}). */
export function needsYaml(text: string, env: Record<string, string>): boolean {
  if (text.trim() !== "") return true;
  return Object.entries(env).some(([name, value]) =>
    name.startsWith("REGISTRY_") && name !== "REGISTRY_STORAGE" && !plainScalar(value)
  );
}

/** Read a value of an environment variable as distribution does: as YAML, else as text. */
function envValue(text: string, yaml: YamlParse | undefined): unknown {
  const plain = plainScalar(text);
  if (plain) return plain.value;
  if (!yaml) throw new Error("a YAML parser is needed (see needsYaml)");
  try {
    return yaml(text);
  } catch {
    return text;
  }
}

/** Lower-case every key of a YAML tree (distribution matches keys case-insensitively). */
function lowerKeys(value: unknown, path: string): unknown {
  if (!isTree(value)) return value;
  const out: Tree = {};
  for (const [key, child] of Object.entries(value)) {
    const lower = key.toLowerCase();
    if (lower in out) throw new ConfigError(`${path}${lower}: given twice`);
    out[lower] = lowerKeys(child, `${path}${lower}.`);
  }
  return out;
}

/** Apply `REGISTRY_*` variables onto the file's tree. */
function applyEnv(
  tree: Tree,
  env: Record<string, string>,
  origins: Origins,
  warnings: string[],
  yaml: YamlParse | undefined,
) {
  const names = Object.keys(env).filter((k) => k.startsWith("REGISTRY_")).sort();
  for (const name of names) {
    const path = name.slice("REGISTRY_".length).toLowerCase().split("_");
    let rule: Rule | undefined = CONFIG_SCHEMA;
    for (const key of path) rule = rule?.kind === "section" ? rule.keys[key] : undefined;
    if (!rule) {
      warnings.push(`${name}: ignoring unrecognized environment variable`);
      continue;
    }
    if (name === "REGISTRY_STORAGE") {
      selectDriver(tree, env[name]!);
      origins.set("storage", name);
      continue;
    }
    setPath(tree, path, envValue(env[name]!, yaml));
    origins.set(path.join("."), name);
  }
}

const DRIVERS = ["filesystem", "inmemory", "s3", "azure", "gcs", "swift", "oss"];

/** `REGISTRY_STORAGE=<driver>`, as distribution: that driver, without the file's other one. */
function selectDriver(tree: Tree, driver: string): void {
  const name = driver.trim().toLowerCase();
  if (!DRIVERS.includes(name)) {
    throw new ConfigError(`REGISTRY_STORAGE: unknown storage driver "${driver}"`);
  }
  const storage = isTree(tree.storage) ? tree.storage : (tree.storage = {});
  for (const other of DRIVERS) if (other !== name) delete storage[other];
  if (!isTree(storage[name])) storage[name] = {};
}

const MIB = 1024 * 1024;

/** `storage.s3` with distribution's defaults; credentials fall back to the AWS variables. */
function mapS3(tree: Tree, env: Record<string, string>): NonNullable<Config["s3"]> {
  const s3 = (get(tree, "storage.s3") ?? {}) as Tree;
  const text = (
    key: string,
  ) => (typeof s3[key] === "string" && s3[key] !== "" ? s3[key] : undefined);
  const flag = (key: string, fallback: boolean) => (s3[key] ?? fallback) as boolean;
  const size = (key: string, fallback: number) => (s3[key] ?? fallback) as number;
  if (!flag("v4auth", true)) {
    throw new ConfigError("storage.s3.v4auth: berth signs requests with AWS Signature V4 only");
  }
  const region = text("region");
  if (!region) throw new ConfigError("storage.s3.region: required");
  const bucket = text("bucket");
  if (!bucket) throw new ConfigError("storage.s3.bucket: required");
  const accessKey = text("accesskey") ?? env.AWS_ACCESS_KEY_ID;
  const secretKey = text("secretkey") ?? env.AWS_SECRET_ACCESS_KEY;
  if (!accessKey || !secretKey) {
    throw new ConfigError(
      "storage.s3.accesskey, storage.s3.secretkey: required (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
    );
  }
  const sessionToken = text("sessiontoken") ?? env.AWS_SESSION_TOKEN;
  const scheme = flag("secure", true) ? "https" : "http";
  let endpoint = text("regionendpoint") ?? `${scheme}://s3.${region}.amazonaws.com`;
  if (!/^https?:\/\//.test(endpoint)) endpoint = `${scheme}://${endpoint}`;
  try {
    new URL(endpoint);
  } catch {
    throw new ConfigError(`storage.s3.regionendpoint: not a URL: "${endpoint}"`);
  }
  const chunkSize = size("chunksize", 10 * MIB);
  if (chunkSize < 5 * MIB) {
    throw new ConfigError(`storage.s3.chunksize: at least ${5 * MIB} (5 MiB), got ${chunkSize}`);
  }
  const copyChunk = size("multipartcopychunksize", 32 * MIB);
  if (copyChunk < 5 * MIB || copyChunk > 5 * 1024 * MIB) {
    throw new ConfigError("storage.s3.multipartcopychunksize: between 5 MiB and 5 GiB");
  }
  const threshold = size("multipartcopythresholdsize", 32 * MIB);
  if (threshold > 5 * 1024 * MIB) {
    throw new ConfigError("storage.s3.multipartcopythresholdsize: at most 5 GiB");
  }
  return {
    accessKey,
    secretKey,
    ...(sessionToken && { sessionToken }),
    region,
    regionEndpoint: endpoint,
    bucket,
    rootDirectory: (text("rootdirectory") ?? "").replace(/^\/+|\/+$/g, ""),
    chunkSize,
    forcePathStyle: flag("forcepathstyle", false),
    multipartCopyThresholdSize: threshold,
    multipartCopyChunkSize: copyChunk,
    redirect: !(get(tree, "storage.redirect.disable") ?? false),
  };
}

/** Read a checked tree at a path. */
function get(tree: Tree, path: string): unknown {
  let node: unknown = tree;
  for (const key of path.split(".")) node = isTree(node) ? node[key] : undefined;
  return node;
}

/** Shortest `http.secret` accepted (a guessable key would let anyone forge a session). */
const MIN_SECRET_LENGTH = 16;

/** Map the keys berth implements (all but auth and TLS) onto config overrides. */
function mapCore(tree: Tree, warnings: string[], env: Record<string, string>): Partial<Config> {
  const out: Partial<Config> = {};
  const level = get(tree, "log.level") ?? get(tree, "loglevel");
  if (get(tree, "loglevel") !== undefined) warnings.push("loglevel: deprecated, use log.level");
  if (level !== undefined) out.logLevel = level as Config["logLevel"];
  if (get(tree, "log.accesslog.disabled") !== undefined) {
    out.accessLog = !get(tree, "log.accesslog.disabled");
  }

  const storage = (get(tree, "storage") ?? {}) as Tree;
  const drivers = ["filesystem", "inmemory", "s3"].filter((d) => d in storage);
  if (drivers.length > 1) {
    throw new ConfigError(`storage: more than one driver configured (${drivers.join(", ")})`);
  }
  if (drivers[0] === "inmemory") out.storage = "memory";
  if (drivers[0] === "s3") {
    out.storage = "s3";
    out.s3 = mapS3(tree, env);
  }
  const root = get(tree, "storage.filesystem.rootdirectory");
  if (root !== undefined) {
    if (root === "") throw new ConfigError("storage.filesystem.rootdirectory: must not be empty");
    out.dataDir = root as string;
  }
  const del = get(tree, "storage.delete.enabled");
  if (del !== undefined) out.deleteEnabled = del as boolean;
  const readOnly = get(tree, "storage.maintenance.readonly.enabled");
  if (readOnly !== undefined) out.readOnly = readOnly as boolean;
  const purging = get(tree, "storage.maintenance.uploadpurging");
  if (isTree(purging)) {
    const base = makeConfig().uploadPurging;
    out.uploadPurging = {
      enabled: (purging.enabled ?? base.enabled) as boolean,
      ageMs: (purging.age ?? base.ageMs) as number,
      intervalMs: (purging.interval ?? base.intervalMs) as number,
      dryRun: (purging.dryrun ?? base.dryRun) as boolean,
    };
  }

  const gc = get(tree, "storage.maintenance.gc");
  if (isTree(gc)) {
    const base = makeConfig().gc;
    out.gc = {
      intervalMs: (gc.interval ?? base.intervalMs) as number,
      gracePeriodMs: (gc.graceperiod ?? base.gracePeriodMs) as number,
      adminEndpoint: (gc.adminendpoint ?? base.adminEndpoint) as boolean,
    };
  }

  const addr = get(tree, "http.addr");
  if (addr !== undefined) {
    try {
      parseAddr(addr as string);
    } catch (error) {
      throw new ConfigError(`http.addr: ${(error as Error).message}`);
    }
    out.addr = addr as string;
  }
  const net = get(tree, "http.net");
  if (net !== undefined && net !== "tcp") {
    throw new ConfigError(`http.net: only "tcp" is supported, got "${net}"`);
  }
  const drain = get(tree, "http.draintimeout");
  if (drain !== undefined) out.drainTimeoutMs = drain as number;
  const maxEntries = get(tree, "catalog.maxentries");
  if (maxEntries !== undefined) out.maxListEntries = maxEntries as number;
  const proxies = get(tree, "http.trustedproxies");
  if (proxies !== undefined) out.trustedProxies = parseTrustedProxies(String(proxies));
  const headerTimeout = get(tree, "http.headertimeout");
  if (headerTimeout !== undefined) out.headerTimeoutMs = headerTimeout as number;
  const idleTimeout = get(tree, "http.idletimeout");
  if (idleTimeout !== undefined) out.idleTimeoutMs = idleTimeout as number;
  const writeTimeout = get(tree, "http.writetimeout");
  if (writeTimeout !== undefined) out.writeTimeoutMs = writeTimeout as number;
  const maxConnections = get(tree, "http.maxconnections");
  if (maxConnections !== undefined) out.maxConnections = maxConnections as number;
  const secret = get(tree, "http.secret");
  if (secret !== undefined) {
    if (String(secret).length < MIN_SECRET_LENGTH) {
      throw new ConfigError(
        `http.secret: at least ${MIN_SECRET_LENGTH} characters (e.g. \`openssl rand -base64 32\`)`,
      );
    }
    out.httpSecret = String(secret);
  }
  const debugAddr = get(tree, "http.debug.addr");
  if (debugAddr !== undefined) {
    try {
      parseAddr(debugAddr as string);
    } catch (error) {
      throw new ConfigError(`http.debug.addr: ${(error as Error).message}`);
    }
    out.debugAddr = debugAddr as string;
  }
  const manifestBytes = get(tree, "limits.maxmanifestbytes");
  if (manifestBytes !== undefined) out.maxManifestBytes = manifestBytes as number;
  const cacheBytes = get(tree, "limits.manifestcachebytes");
  if (cacheBytes !== undefined) out.manifestCacheBytes = cacheBytes as number;
  const limits: Partial<LimitsConfig> = {};
  for (const [key, field] of Object.entries(LIMIT_KEYS)) {
    const value = get(tree, `limits.${key}`);
    if (value !== undefined) limits[field] = value as number;
  }
  if (Object.keys(limits).length > 0) out.limits = limits;
  const proxy = mapProxy(tree);
  if (proxy) out.proxy = proxy;
  return out;
}

/** `proxy`: distribution's one upstream (the whole registry) or berth's `mirrors` list. */
function mapProxy(tree: Tree): ProxyConfig | undefined {
  const proxy = get(tree, "proxy");
  if (!isTree(proxy) || Object.keys(proxy).length === 0) return undefined;
  const list = (proxy.mirrors ?? []) as Tree[];
  if (proxy.remoteurl !== undefined && list.length > 0) {
    throw new ConfigError("proxy: give either remoteurl (the whole registry) or mirrors, not both");
  }
  const entries = proxy.remoteurl !== undefined ? [{ ...proxy, prefix: "" }] : list;
  const mirrors: MirrorConfig[] = entries.map((entry, i) => {
    const where = proxy.remoteurl !== undefined ? "proxy" : `proxy.mirrors.${i}`;
    const prefix = String(entry.prefix ?? "").replace(/^\/+|\/+$/g, "");
    if (proxy.remoteurl === undefined && (prefix === "" || !isValidName(prefix))) {
      throw new ConfigError(
        `${where}.prefix: required, a repository name path (hub, mirrors/ghcr)`,
      );
    }
    const url = String(entry.remoteurl ?? "");
    if (!/^https?:\/\/[^/]/.test(url)) {
      throw new ConfigError(`${where}.remoteurl: required, an http:// or https:// URL`);
    }
    return {
      prefix,
      remoteUrl: url.replace(/\/+$/, ""),
      ...(entry.username !== undefined && { username: String(entry.username) }),
      ...(entry.password !== undefined && { password: String(entry.password) }),
      ...(entry.ttl !== undefined && { ttlMs: entry.ttl as number }),
      ...(entry.library !== undefined && { library: entry.library as boolean }),
    };
  });
  const prefixes = mirrors.map((m) => m.prefix);
  for (const prefix of prefixes) {
    const clash = prefixes.find((other) => other !== prefix && other.startsWith(`${prefix}/`));
    if (clash || prefixes.indexOf(prefix) !== prefixes.lastIndexOf(prefix)) {
      throw new ConfigError(`proxy.mirrors: prefix "${prefix}" overlaps another mirror's`);
    }
  }
  return {
    mirrors,
    revalidateMs: (proxy.revalidate ?? DEFAULT_REVALIDATE_MS) as number,
    timeoutMs: (proxy.timeout ?? DEFAULT_UPSTREAM_TIMEOUT_MS) as number,
  };
}

/** `http.trustedproxies`: addresses and CIDR ranges, separated by commas or spaces. */
export function parseTrustedProxies(text: string): string[] {
  const entries = text.split(/[\s,]+/).filter((entry) => entry !== "");
  try {
    new AddressSet(entries);
  } catch (error) {
    throw new ConfigError(`http.trustedproxies: ${(error as Error).message}`);
  }
  return entries;
}

/** `limits.*` keys that map onto {@link LimitsConfig} fields. */
const LIMIT_KEYS: Record<string, keyof LimitsConfig> = {
  maxheaderbytes: "maxHeaderBytes",
  maxbodybytes: "maxBodyBytes",
  maxuploadsperclient: "maxUploadsPerClient",
  uploadsessiontimeout: "uploadSessionTimeoutMs",
  bodyidletimeout: "bodyIdleTimeoutMs",
  minbodybytespersecond: "minBodyBytesPerSecond",
};

const DAY = 86_400_000;

/** One bounded number of the configuration: the key, flag and variable that set it. */
export interface BoundedSetting {
  /** The config file key (its `REGISTRY_*` variable is derived from it). */
  key: string;
  /** The `serve` flag, when there is one. */
  flag?: string;
  /** What the number counts. */
  unit: "duration" | "size" | "count";
  /** Smallest accepted value. */
  min: number;
  /** Largest accepted value (timers of longer delays would overflow or make no sense). */
  max: number;
  /** The value in force. */
  read(config: Config): number;
}

const limit = (config: Config, field: keyof LimitsConfig) =>
  config.limits?.[field] ?? DEFAULT_LIMITS[field];

/** Every bounded number berth reads, checked after files, variables and flags are merged. */
export const BOUNDED_SETTINGS: BoundedSetting[] = [
  {
    key: "limits.maxuploadsperclient",
    flag: "--max-uploads",
    unit: "count",
    min: 1,
    max: 1_000_000,
    read: (c) => limit(c, "maxUploadsPerClient"),
  },
  {
    key: "limits.uploadsessiontimeout",
    flag: "--upload-timeout",
    unit: "duration",
    min: 1,
    max: 365 * DAY,
    read: (c) => limit(c, "uploadSessionTimeoutMs"),
  },
  {
    key: "limits.bodyidletimeout",
    flag: "--body-timeout",
    unit: "duration",
    min: 1,
    max: DAY,
    read: (c) => limit(c, "bodyIdleTimeoutMs"),
  },
  {
    key: "limits.minbodybytespersecond",
    unit: "size",
    min: 0,
    max: 1024 ** 4,
    read: (c) => limit(c, "minBodyBytesPerSecond"),
  },
  {
    key: "limits.maxbodybytes",
    flag: "--max-body",
    unit: "size",
    min: 1,
    max: Number.MAX_SAFE_INTEGER,
    read: (c) => limit(c, "maxBodyBytes"),
  },
  {
    key: "limits.maxheaderbytes",
    unit: "size",
    min: 1024,
    max: 1024 ** 2,
    read: (c) => limit(c, "maxHeaderBytes"),
  },
  {
    key: "limits.maxmanifestbytes",
    flag: "--max-manifest",
    unit: "size",
    min: 1024,
    max: 64 * 1024 ** 2,
    read: (c) => c.maxManifestBytes,
  },
  {
    key: "limits.manifestcachebytes",
    flag: "--manifest-cache",
    unit: "size",
    min: 0,
    max: 64 * 1024 ** 3,
    read: (c) => c.manifestCacheBytes,
  },
  {
    key: "http.headertimeout",
    flag: "--header-timeout",
    unit: "duration",
    min: 0,
    max: DAY,
    read: (c) => c.headerTimeoutMs ?? DEFAULT_CONNECTION_LIMITS.headerTimeoutMs,
  },
  {
    key: "http.idletimeout",
    flag: "--idle-timeout",
    unit: "duration",
    min: 1,
    max: DAY,
    read: (c) => c.idleTimeoutMs ?? DEFAULT_CONNECTION_LIMITS.idleTimeoutMs,
  },
  {
    key: "http.writetimeout",
    flag: "--write-timeout",
    unit: "duration",
    min: 1,
    max: DAY,
    read: (c) => c.writeTimeoutMs ?? DEFAULT_CONNECTION_LIMITS.writeTimeoutMs,
  },
  {
    key: "http.maxconnections",
    flag: "--max-connections",
    unit: "count",
    min: 1,
    max: 1_000_000,
    read: (c) => c.maxConnections ?? DEFAULT_CONNECTION_LIMITS.maxConnections,
  },
  {
    key: "catalog.maxentries",
    unit: "count",
    min: 1,
    max: 100_000,
    read: (c) => c.maxListEntries,
  },
  {
    key: "http.draintimeout",
    flag: "--drain-timeout",
    unit: "duration",
    min: 0,
    max: DAY,
    read: (c) => c.drainTimeoutMs,
  },
  {
    key: "storage.maintenance.uploadpurging.age",
    unit: "duration",
    min: 0,
    max: 10 * 365 * DAY,
    read: (c) => c.uploadPurging.ageMs,
  },
  {
    key: "storage.maintenance.uploadpurging.interval",
    unit: "duration",
    min: 0,
    max: 365 * DAY,
    read: (c) => c.uploadPurging.intervalMs,
  },
  {
    key: "storage.maintenance.gc.interval",
    flag: "--gc-interval",
    unit: "duration",
    min: 0,
    max: 365 * DAY,
    read: (c) => c.gc.intervalMs,
  },
  {
    key: "storage.maintenance.gc.graceperiod",
    flag: "--gc-grace",
    unit: "duration",
    min: 0,
    max: 10 * 365 * DAY,
    read: (c) => c.gc.gracePeriodMs,
  },
];

/** The `REGISTRY_*` variable of a config key. */
export const envName = (key: string): string =>
  `REGISTRY_${key.toUpperCase().replaceAll(".", "_")}`;

/** A number as the config would write it: `720h`, `64MiB`, `1000`. */
export function formatSetting(unit: BoundedSetting["unit"], value: number): string {
  if (unit === "count") return String(value);
  if (unit === "size") {
    for (const [suffix, size] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
      if (value >= size && value % size === 0) return `${value / size}${suffix}`;
    }
    return String(value);
  }
  for (const [suffix, size] of [["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (value >= size && value % size === 0) return `${value / size}${suffix}`;
  }
  return `${value}ms`;
}

/** Refuse numbers out of their bounds, naming the key, its variable and its flag. */
export function checkBounds(config: Config): void {
  for (const setting of BOUNDED_SETTINGS) {
    const value = setting.read(config);
    if (Number.isFinite(value) && value >= setting.min && value <= setting.max) continue;
    const names = [envName(setting.key), setting.flag].filter(Boolean).join(" or ");
    const shown = Number.isFinite(value) ? formatSetting(setting.unit, value) : String(value);
    const bound = value > setting.max
      ? `at most ${formatSetting(setting.unit, setting.max)}`
      : `at least ${formatSetting(setting.unit, setting.min)}`;
    throw new ConfigError(`${setting.key}: ${shown} is out of range: use ${bound} (also ${names})`);
  }
}

const required = (tree: Tree, path: string): string => {
  const value = get(tree, path);
  if (typeof value !== "string" || value === "") throw new ConfigError(`${path}: required`);
  return value;
};

/**
 * Map `auth.*` and `http.tls.*` onto {@link Config} fields. Unlike distribution, `htpasswd` and
 * `token` may both be set: berth then issues tokens itself to the htpasswd users.
 */
export function mapAuthAndTls(tree: Tree): Pick<Config, "auth" | "tls"> {
  const out: Pick<Config, "auth" | "tls"> = {};
  const auth: AuthConfig = {};
  if (isTree(get(tree, "auth.htpasswd"))) {
    auth.htpasswd = {
      realm: optional(tree, "auth.htpasswd.realm") ?? "berth",
      path: required(tree, "auth.htpasswd.path"),
    };
  }
  if (isTree(get(tree, "auth.token"))) {
    const token: TokenConfig = {
      service: required(tree, "auth.token.service"),
      issuer: required(tree, "auth.token.issuer"),
    };
    const realm = optional(tree, "auth.token.realm");
    const bundle = optional(tree, "auth.token.rootcertbundle");
    const jwks = optional(tree, "auth.token.jwks");
    if (realm) token.realm = realm;
    if (bundle) token.rootcertbundle = bundle;
    if (jwks) token.jwks = jwks;
    const signingkey = optional(tree, "auth.token.signingkey");
    if (signingkey) token.signingkey = signingkey;
    if (!auth.htpasswd && !bundle && !jwks) {
      throw new ConfigError(
        "auth.token: needs rootcertbundle or jwks (an external issuer), or auth.htpasswd (berth issues tokens)",
      );
    }
    auth.token = token;
  }
  const policy = optional(tree, "auth.policy");
  if (policy) auth.policy = readPolicy(policy);
  if (Object.keys(auth).length > 0) out.auth = auth;
  if (isTree(get(tree, "http.tls"))) {
    out.tls = {
      certificate: required(tree, "http.tls.certificate"),
      key: required(tree, "http.tls.key"),
    };
  }
  return out;
}

const optional = (tree: Tree, path: string): string | undefined => {
  const value = get(tree, path);
  return typeof value === "string" && value !== "" ? value : undefined;
};

/** Flags over the file and environment; `auth` and `limits` merge part by part. */
function withFlags(base: Partial<Config>, flags: Partial<Config> = {}): Partial<Config> {
  const out: Partial<Config> = { ...base, ...flags };
  if (base.auth && flags.auth) out.auth = { ...base.auth, ...flags.auth };
  if (base.limits && flags.limits) out.limits = { ...base.limits, ...flags.limits };
  return out;
}

/**
 * Parse a distribution-style YAML config (`text` may be empty: defaults and environment only),
 * apply `REGISTRY_*` environment variables, then flags. Throws {@link ConfigError}. `sources.yaml`
 * parses YAML; it may be left out when {@link needsYaml} says none is needed
 * (`parseConfig` in src/config_yaml.ts always passes one).
 */
export function parseConfigWith(
  text: string,
  sources: ConfigSources & { source?: string; yaml?: YamlParse | undefined } = {},
): LoadedConfig {
  const warnings: string[] = [];
  let document: unknown = null;
  if (text.trim() !== "") {
    if (!sources.yaml) throw new Error("a YAML parser is needed (see needsYaml)");
    try {
      document = sources.yaml(text, { uniqueKeys: true });
    } catch (error) {
      throw new ConfigError(`${sources.source ?? "config"}: ${(error as Error).message}`);
    }
  }
  if (document !== null && document !== undefined && !isTree(document)) {
    throw new ConfigError(`${sources.source ?? "config"}: expected a YAML mapping of keys`);
  }
  const tree = lowerKeys(document ?? {}, "") as Tree;
  const fromFile = Object.keys(tree).length > 0;
  const origins: Origins = new Map();
  applyEnv(tree, sources.env ?? {}, origins, warnings, sources.yaml);
  const checked = check(CONFIG_SCHEMA, tree, "", origins, warnings) as Tree;
  if (fromFile && checked.version === undefined) {
    throw new ConfigError("version: required (distribution configs start with `version: 0.1`)");
  }
  const fromConfig: Partial<Config> = {
    ...mapCore(checked, warnings, sources.env ?? {}),
    ...mapAuthAndTls(checked),
    ...mapEvents(checked),
  };
  const config = makeConfig(withFlags(fromConfig, sources.flags));
  if (sources.gcFlags) config.gc = { ...config.gc, ...sources.gcFlags };
  checkBounds(config);
  return { config, warnings };
}

/** `policies` and `notifications` (src/config_events.ts). */
function mapEvents(tree: Tree): Pick<Config, "policies" | "notifications"> {
  const fail = (message: string) => new ConfigError(message);
  const policies = parsePolicies(tree.policies, parseDuration, fail);
  const notifications = parseNotifications(tree.notifications, parseDuration, fail);
  return {
    ...(policies.length > 0 && { policies }),
    ...(notifications && { notifications }),
  };
}

/** Read a config file (optional), the environment and flags into a {@link LoadedConfig}. */
export async function loadConfig(
  file: string | undefined,
  sources: ConfigSources = {},
): Promise<LoadedConfig> {
  let text = "";
  if (file !== undefined) {
    try {
      text = await Deno.readTextFile(file);
    } catch (error) {
      throw new ConfigError(`cannot read config file ${file}: ${(error as Error).message}`);
    }
  }
  const yaml = needsYaml(text, sources.env ?? {}) ? (await import("yaml")).parse : undefined;
  return parseConfigWith(text, { ...sources, source: file ?? "config", yaml });
}

/**
 * The `REGISTRY_*` variables that set `overrides` (the inverse of the mapping above), or
 * `undefined` when a field has no distribution key (e.g. `maxManifestBytes`). `addr` and
 * `dataDir` are left to flags.
 */
export function configToEnv(overrides: Partial<Config>): Record<string, string> | undefined {
  const env: Record<string, string> = {};
  const ms = (n: number) => `${n}ms`;
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined || key === "addr" || key === "dataDir") continue;
    const v = value as never;
    switch (key as keyof Config) {
      case "deleteEnabled":
        env.REGISTRY_STORAGE_DELETE_ENABLED = String(v);
        break;
      case "readOnly":
        env.REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED = String(v);
        break;
      case "logLevel":
        env.REGISTRY_LOG_LEVEL = v;
        break;
      case "accessLog":
        env.REGISTRY_LOG_ACCESSLOG_DISABLED = String(!v);
        break;
      case "drainTimeoutMs":
        env.REGISTRY_HTTP_DRAINTIMEOUT = ms(v);
        break;
      case "storage":
        if (v === "memory") env.REGISTRY_STORAGE_INMEMORY = "{}";
        if (v === "s3") env.REGISTRY_STORAGE = "s3";
        break;
      case "s3": {
        const s = v as NonNullable<Config["s3"]>;
        Object.assign(env, {
          REGISTRY_STORAGE_S3_ACCESSKEY: s.accessKey,
          REGISTRY_STORAGE_S3_SECRETKEY: s.secretKey,
          REGISTRY_STORAGE_S3_REGION: s.region,
          REGISTRY_STORAGE_S3_REGIONENDPOINT: s.regionEndpoint,
          REGISTRY_STORAGE_S3_BUCKET: s.bucket,
          ...(s.rootDirectory && { REGISTRY_STORAGE_S3_ROOTDIRECTORY: s.rootDirectory }),
          REGISTRY_STORAGE_S3_CHUNKSIZE: String(s.chunkSize),
          REGISTRY_STORAGE_S3_FORCEPATHSTYLE: String(s.forcePathStyle),
          REGISTRY_STORAGE_S3_MULTIPARTCOPYTHRESHOLDSIZE: String(s.multipartCopyThresholdSize),
          REGISTRY_STORAGE_S3_MULTIPARTCOPYCHUNKSIZE: String(s.multipartCopyChunkSize),
          REGISTRY_STORAGE_REDIRECT_DISABLE: String(!s.redirect),
        });
        break;
      }
      case "maxListEntries":
        env.REGISTRY_CATALOG_MAXENTRIES = String(v);
        break;
      case "maxManifestBytes":
        env.REGISTRY_LIMITS_MAXMANIFESTBYTES = String(v);
        break;
      case "manifestCacheBytes":
        env.REGISTRY_LIMITS_MANIFESTCACHEBYTES = String(v);
        break;
      case "debugAddr":
        env.REGISTRY_HTTP_DEBUG_ADDR = v;
        break;
      case "httpSecret":
        env.REGISTRY_HTTP_SECRET = v;
        break;
      case "trustedProxies":
        env.REGISTRY_HTTP_TRUSTEDPROXIES = (v as string[]).join(",");
        break;
      case "headerTimeoutMs":
        env.REGISTRY_HTTP_HEADERTIMEOUT = ms(v);
        break;
      case "idleTimeoutMs":
        env.REGISTRY_HTTP_IDLETIMEOUT = ms(v);
        break;
      case "writeTimeoutMs":
        env.REGISTRY_HTTP_WRITETIMEOUT = ms(v);
        break;
      case "maxConnections":
        env.REGISTRY_HTTP_MAXCONNECTIONS = String(v);
        break;
      case "limits": {
        const fields = Object.entries(LIMIT_KEYS);
        for (const [field, n] of Object.entries(v as Partial<LimitsConfig>)) {
          const key = fields.find(([, f]) => f === field)?.[0];
          if (key === undefined || n === undefined) return undefined;
          env[envName(`limits.${key}`)] = field.endsWith("Ms") ? ms(n) : String(n);
        }
        break;
      }
      case "uploadPurging": {
        const p = v as Config["uploadPurging"];
        env.REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING = JSON.stringify({
          enabled: p.enabled,
          age: ms(p.ageMs),
          interval: ms(p.intervalMs),
          dryrun: p.dryRun,
        });
        break;
      }
      case "gc": {
        const g = v as Config["gc"];
        env.REGISTRY_STORAGE_MAINTENANCE_GC = JSON.stringify({
          interval: ms(g.intervalMs),
          graceperiod: ms(g.gracePeriodMs),
          adminendpoint: g.adminEndpoint,
        });
        break;
      }
      default:
        return undefined;
    }
  }
  return env;
}
