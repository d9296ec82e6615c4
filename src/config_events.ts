/**
 * The `policies` (immutable tags, retention) and `notifications` sections of the configuration:
 * their types and the checks that turn the YAML lists into them.
 *
 * @module
 */

/** One entry of `policies:` (the first entry whose `repositories` glob matches applies). */
export interface RepositoryPolicy {
  /** Glob over repository names (`*`: within one path component, `**`: across them). */
  repositories: string;
  /** Globs of tags that, once set, cannot be moved or deleted. */
  immutableTags: string[];
  /** Retention after each push, when set. */
  retention?: RetentionRule;
}

/** `retention:` of a policy. */
export interface RetentionRule {
  /** Keep this many most recently pushed tags (older ones are deleted); none: keep all. */
  keepLast?: number;
  /** Delete manifests without a tag pushed longer ago than this (ms); none: keep them. */
  untaggedAfterMs?: number;
}

/** One webhook endpoint (distribution's `notifications.endpoints[]`). */
export interface EndpointConfig {
  /** Its name (metrics, logs, the queue directory). */
  name: string;
  /** Where envelopes are POSTed. */
  url: string;
  /** Extra request headers. */
  headers: Record<string, string[]>;
  /** Time one delivery may take (ms). */
  timeoutMs: number;
  /** Failed attempts before the endpoint backs off for `backoffMs`. */
  threshold: number;
  /** Wait after failures (ms; doubles while failures go on, up to 32 times). */
  backoffMs: number;
  /** Events for this endpoint are neither queued nor sent. */
  disabled: boolean;
  /** Target media types not sent. */
  ignoredMediaTypes: string[];
  /** Actions not sent. */
  ignoredActions: string[];
}

/** `notifications:`. */
export interface NotificationsConfig {
  /** The endpoints. */
  endpoints: EndpointConfig[];
  /** Add the manifest's references (layers, config, children) to push and pull events. */
  includeReferences: boolean;
  /** Most events one endpoint's queue holds; beyond, the oldest are dropped (logged). */
  maxQueuedEvents: number;
  /** Queued events older than this are dropped (ms, logged). */
  maxQueueAgeMs: number;
}

/** Default queue bounds: a million events or a week, whichever comes first. */
export const DEFAULT_MAX_QUEUED_EVENTS = 1_000_000;
/** Default age bound of a queued event. */
export const DEFAULT_MAX_QUEUE_AGE_MS = 7 * 24 * 3_600_000;

type Tree = Record<string, unknown>;
type Fail = (message: string) => Error;
type Duration = (text: string) => number | undefined;

const isTree = (value: unknown): value is Tree =>
  typeof value === "object" && value !== null && !Array.isArray(value);

function keys(value: unknown, where: string, allowed: string[], fail: Fail): Tree {
  if (!isTree(value)) throw fail(`${where}: expected a section`);
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key.toLowerCase())) throw fail(`${where}.${key}: unknown key`);
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.toLowerCase(), v]));
}

function stringList(value: unknown, where: string, fail: Fail): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === "string") return [value];
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    throw fail(`${where}: expected a list of strings`);
  }
  return value as string[];
}

function duration(value: unknown, where: string, parse: Duration, fail: Fail): number {
  const ms = typeof value === "number" ? value / 1e6 : parse(String(value));
  if (ms === undefined || ms < 0) throw fail(`${where}: expected a duration such as 72h or 30s`);
  return ms;
}

function positive(value: unknown, where: string, fail: Fail): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw fail(`${where}: expected a positive integer`);
  return n;
}

/** Check `policies:` (a list) into rules. */
export function parsePolicies(value: unknown, parse: Duration, fail: Fail): RepositoryPolicy[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw fail("policies: expected a list of entries");
  return value.map((entry, i) => {
    const where = `policies[${i}]`;
    const e = keys(entry, where, ["repositories", "immutabletags", "retention"], fail);
    if (typeof e.repositories !== "string" || e.repositories === "") {
      throw fail(`${where}.repositories: expected a glob such as "release/**"`);
    }
    const rule: RepositoryPolicy = {
      repositories: e.repositories,
      immutableTags: stringList(e.immutabletags, `${where}.immutabletags`, fail),
    };
    if (e.retention !== undefined) {
      const r = keys(e.retention, `${where}.retention`, ["keeplast", "untaggedafter"], fail);
      const retention: RetentionRule = {};
      if (r.keeplast !== undefined) {
        retention.keepLast = positive(r.keeplast, `${where}.retention.keeplast`, fail);
      }
      if (r.untaggedafter !== undefined) {
        retention.untaggedAfterMs = duration(
          r.untaggedafter,
          `${where}.retention.untaggedafter`,
          parse,
          fail,
        );
      }
      rule.retention = retention;
    }
    return rule;
  });
}

/** Check `notifications:` into endpoints and settings. */
export function parseNotifications(
  value: unknown,
  parse: Duration,
  fail: Fail,
): NotificationsConfig | undefined {
  if (value === undefined || value === null) return undefined;
  const n = keys(value, "notifications", ["endpoints", "events", "queue"], fail);
  const events = n.events === undefined
    ? {}
    : keys(n.events, "notifications.events", ["includereferences"], fail);
  const queue = n.queue === undefined
    ? {}
    : keys(n.queue, "notifications.queue", ["maxevents", "maxage"], fail);
  if (n.endpoints !== undefined && !Array.isArray(n.endpoints)) {
    throw fail("notifications.endpoints: expected a list of endpoints");
  }
  const names = new Set<string>();
  const endpoints = ((n.endpoints ?? []) as unknown[]).map((entry, i) => {
    const where = `notifications.endpoints[${i}]`;
    const e = keys(entry, where, [
      "name",
      "url",
      "headers",
      "timeout",
      "threshold",
      "backoff",
      "disabled",
      "ignoredmediatypes",
      "ignore",
    ], fail);
    if (typeof e.name !== "string" || !/^[A-Za-z0-9._-]{1,100}$/.test(e.name)) {
      throw fail(`${where}.name: expected a name of letters, digits, '.', '_' or '-'`);
    }
    if (names.has(e.name)) throw fail(`${where}.name: "${e.name}" given twice`);
    names.add(e.name);
    let url: URL;
    try {
      url = new URL(String(e.url));
    } catch {
      throw fail(`${where}.url: expected an http or https URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw fail(`${where}.url: expected an http or https URL`);
    }
    const headers: Record<string, string[]> = {};
    if (e.headers !== undefined) {
      if (!isTree(e.headers)) throw fail(`${where}.headers: expected a section`);
      for (const [key, v] of Object.entries(e.headers)) {
        headers[key] = stringList(v, `${where}.headers.${key}`, fail);
      }
    }
    const ignore = e.ignore === undefined
      ? {}
      : keys(e.ignore, `${where}.ignore`, ["mediatypes", "actions"], fail);
    return {
      name: e.name,
      url: url.href,
      headers,
      timeoutMs: e.timeout === undefined
        ? 1000
        : duration(e.timeout, `${where}.timeout`, parse, fail),
      threshold: e.threshold === undefined ? 10 : positive(e.threshold, `${where}.threshold`, fail),
      backoffMs: e.backoff === undefined
        ? 1000
        : duration(e.backoff, `${where}.backoff`, parse, fail),
      disabled: e.disabled === true || e.disabled === "true",
      ignoredMediaTypes: [
        ...stringList(e.ignoredmediatypes, `${where}.ignoredmediatypes`, fail),
        ...stringList(ignore.mediatypes, `${where}.ignore.mediatypes`, fail),
      ],
      ignoredActions: stringList(ignore.actions, `${where}.ignore.actions`, fail),
    };
  });
  return {
    endpoints,
    includeReferences: events.includereferences === true || events.includereferences === "true",
    maxQueuedEvents: queue.maxevents === undefined
      ? DEFAULT_MAX_QUEUED_EVENTS
      : positive(queue.maxevents, "notifications.queue.maxevents", fail),
    maxQueueAgeMs: queue.maxage === undefined
      ? DEFAULT_MAX_QUEUE_AGE_MS
      : duration(queue.maxage, "notifications.queue.maxage", parse, fail),
  };
}
