/**
 * Notifications (distribution's `notifications`): events of pushes, pulls, mounts and deletes,
 * written to a durable on-disk queue per endpoint before the request that caused them returns,
 * then POSTed in distribution's envelope until the endpoint answers 2xx. At-least-once: a crash
 * between delivery and removal sends an event again with the same `id`.
 *
 * @module
 */
import type { RequestView } from "../http/request_view.ts";
import type { EndpointConfig, NotificationsConfig } from "../config_events.ts";
import type { Digest } from "../oci/digest.ts";
import { isNotFound, writeFileAtomic } from "../storage/drivers/fs/atomic.ts";

/** The envelope's media type. */
export const EVENTS_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json";

/** Most events one POST carries. */
const BATCH = 100;
/** Longest wait between attempts, as a multiple of the endpoint's `backoff`. */
const MAX_BACKOFF_FACTOR = 32;

/** A descriptor as events carry it. */
export interface EventDescriptor {
  /** Media type. */
  mediaType: string;
  /** Size in bytes. */
  size: number;
  /** Digest. */
  digest: string;
}

/** What an event is about (distribution's `target`; deletes carry the digest and tag only). */
export interface EventTarget extends Partial<EventDescriptor> {
  /** Digest. */
  digest: string;
  /** Same as `size` (distribution sends both). */
  length?: number;
  /** The repository. */
  repository: string;
  /** Where the content is fetched. */
  url?: string;
  /** The tag, when the request named one. */
  tag?: string;
  /** The repository a blob was mounted from. */
  fromRepository?: string;
  /** A manifest's layers, config and children (`events.includereferences`). */
  references?: EventDescriptor[];
}

/** One event, as distribution sends it. */
export interface RegistryEvent {
  /** Stable id (receivers deduplicate on it). */
  id: string;
  /** When it happened (RFC 3339). */
  timestamp: string;
  /** `push`, `pull`, `delete` or `mount`. */
  action: EventAction;
  /** What it is about. */
  target: EventTarget;
  /** The request that caused it. */
  request: { id: string; addr: string; host: string; method: string; useragent: string };
  /** Who made it. */
  actor: { name?: string };
  /** This registry. */
  source: { addr: string; instanceID: string };
}

/** The actions events report. */
export type EventAction = "push" | "pull" | "delete" | "mount";

/** What the notifier needs of the request (the request context has it). */
export interface EventRequest {
  /** Request id. */
  readonly id: string;
  /** The HTTP request. */
  readonly request: RequestView;
  /** The client's address. */
  readonly client: string;
  /** The caller, when authenticated. */
  readonly identity: { user?: string } | undefined;
}

/** Delivery figures of one endpoint. */
export interface EndpointStats {
  /** Its name. */
  name: string;
  /** Events queued, not yet delivered. */
  pending: number;
  /** Events delivered since start. */
  delivered: number;
  /** Failed delivery attempts since start. */
  failedAttempts: number;
  /** Events dropped by the queue's size or age bound since start. */
  dropped: number;
  /** Time of the last successful delivery (ms since the epoch), 0 if none. */
  lastSuccess: number;
}

/** Where the notifier logs. */
export type EventLog = (
  level: "error" | "info",
  msg: string,
  fields: Record<string, unknown>,
) => void;

/** Options of {@link Notifier}. */
export interface NotifierOptions {
  /** Where the queues live (one folder per endpoint). */
  dir: string;
  /** `host:port` of this registry (the events' `source.addr`). */
  sourceAddr: string;
  /** Logging. */
  log: EventLog;
  /** The size of a blob (for blob events). */
  sizeOf: (digest: Digest) => Promise<number | undefined>;
}

/** The notifications of one registry: a queue and a delivery loop per endpoint. */
export class Notifier {
  readonly #config: NotificationsConfig;
  readonly #queues: EndpointQueue[];
  readonly #source: { addr: string; instanceID: string };
  readonly #sizeOf: NotifierOptions["sizeOf"];
  #ready: Promise<void> | undefined;

  /** Queues under `options.dir` for the configured endpoints (disabled ones get none). */
  constructor(config: NotificationsConfig, options: NotifierOptions) {
    this.#config = config;
    this.#source = { addr: options.sourceAddr, instanceID: crypto.randomUUID() };
    this.#sizeOf = options.sizeOf;
    this.#queues = config.endpoints.filter((e) => !e.disabled).map((endpoint) =>
      new EndpointQueue(endpoint, `${options.dir}/${endpoint.name}`, config, options.log)
    );
  }

  /** Whether manifest events carry their references. */
  get includeReferences(): boolean {
    return this.#config.includeReferences;
  }

  /** Load the queues left on disk and start delivering (once). */
  start(): Promise<void> {
    this.#ready ??= Promise.all(this.#queues.map((q) => q.start())).then(() => {});
    return this.#ready;
  }

  /** Stop delivering (queued events stay on disk for the next start). */
  async close(): Promise<void> {
    await this.#ready?.catch(() => {});
    await Promise.all(this.#queues.map((q) => q.close()));
  }

  /** Record a manifest event (`ref`: the tag or digest the request named). */
  async manifest(
    ctx: EventRequest,
    action: EventAction,
    repository: string,
    ref: string,
    manifest: { digest: Digest; mediaType: string; bytes: Uint8Array },
  ): Promise<void> {
    const target: EventTarget = {
      mediaType: manifest.mediaType,
      size: manifest.bytes.byteLength,
      digest: manifest.digest.value,
      repository,
    };
    if (!ref.includes(":")) target.tag = ref;
    if (this.#config.includeReferences) target.references = manifestReferences(manifest.bytes);
    await this.record(ctx, action, target);
  }

  /** Record a blob event (push, pull, mount: `from` the source repository). */
  async blob(
    ctx: EventRequest,
    action: EventAction,
    repository: string,
    digest: Digest,
    from?: string,
  ): Promise<void> {
    const target: EventTarget = {
      mediaType: "application/octet-stream",
      size: await this.#sizeOf(digest) ?? 0,
      digest: digest.value,
      repository,
    };
    if (from !== undefined) target.fromRepository = from;
    await this.record(ctx, action, target);
  }

  /** Record a delete of a manifest (by digest) or a tag. */
  async deleted(ctx: EventRequest, repository: string, ref: string): Promise<void> {
    const target: EventTarget = ref.includes(":")
      ? { digest: ref, repository }
      : { digest: "", repository, tag: ref };
    await this.record(ctx, "delete", target);
  }

  /** Delivery figures per endpoint. */
  stats(): EndpointStats[] {
    return this.#queues.map((q) => q.stats());
  }

  /**
   * Record an event: durable in every endpoint's queue that does not ignore it when this returns.
   * `target.url` is built from the request's host when not given.
   */
  async record(ctx: EventRequest, action: EventAction, target: EventTarget): Promise<void> {
    await this.start();
    const { request } = ctx;
    const url = new URL(request.url);
    const host = request.headers.get("Host") ?? url.host;
    const kind = target.mediaType === "application/octet-stream" ? "blobs" : "manifests";
    const full = { ...target };
    if (target.size !== undefined) {
      full.length = target.size;
      full.url ??= `${url.protocol}//${host}/v2/${target.repository}/${kind}/${target.digest}`;
    }
    if (full.digest === "") delete (full as Partial<EventTarget>).digest;
    const event: RegistryEvent = {
      id: crypto.randomUUID(),
      timestamp: new Date().toISOString(),
      action,
      target: full,
      request: {
        id: ctx.id,
        addr: ctx.client,
        host,
        method: request.method,
        useragent: request.headers.get("User-Agent") ?? "",
      },
      actor: ctx.identity?.user ? { name: ctx.identity.user } : {},
      source: this.#source,
    };
    await Promise.all(this.#queues.map((q) => q.accepts(event) ? q.enqueue(event) : undefined));
  }
}

/** Per-endpoint metrics in the Prometheus text format (empty without notifications). */
export function notificationMetrics(notifier: Notifier | undefined): string {
  if (!notifier) return "";
  const out: string[] = [];
  const stats = notifier.stats();
  const metric = (
    name: string,
    type: string,
    help: string,
    value: (s: EndpointStats) => number,
  ) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const s of stats) out.push(`${name}{endpoint="${s.name}"} ${value(s)}`);
  };
  metric(
    "berth_notifications_pending",
    "gauge",
    "Events queued, not yet delivered.",
    (s) => s.pending,
  );
  metric("berth_notifications_delivered_total", "counter", "Events delivered.", (s) => s.delivered);
  metric(
    "berth_notifications_failed_attempts_total",
    "counter",
    "Failed delivery attempts.",
    (s) => s.failedAttempts,
  );
  metric(
    "berth_notifications_dropped_total",
    "counter",
    "Events dropped by the queue's size or age bound.",
    (s) => s.dropped,
  );
  metric(
    "berth_notifications_last_success_timestamp_seconds",
    "gauge",
    "Time of the last delivery accepted, seconds since the epoch (0: none yet).",
    (s) => s.lastSuccess / 1000,
  );
  return out.join("\n") + "\n";
}

/** Descriptors a manifest document names (config, layers, children), for `references`. */
export function manifestReferences(bytes: Uint8Array): EventDescriptor[] {
  try {
    const doc = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    const list = [doc.config, ...asArray(doc.layers), ...asArray(doc.manifests)];
    return list.flatMap((d) => {
      if (typeof d !== "object" || d === null) return [];
      const { mediaType, size, digest } = d as Record<string, unknown>;
      if (typeof digest !== "string") return [];
      return [{ mediaType: String(mediaType ?? ""), size: Number(size ?? 0), digest }];
    });
  } catch {
    return [];
  }
}

const asArray = (value: unknown): unknown[] => Array.isArray(value) ? value : [];

/** Queue file names: the enqueue time and a counter, zero-padded so names sort in order. */
function queueName(time: number, counter: number): string {
  return `${String(time).padStart(15, "0")}-${String(counter).padStart(9, "0")}.json`;
}

function nameTime(name: string): number {
  return Number(name.slice(0, 15));
}

/** One endpoint's durable queue (a folder of one-event files) and its delivery loop. */
class EndpointQueue {
  readonly #endpoint: EndpointConfig;
  readonly #dir: string;
  readonly #limits: NotificationsConfig;
  readonly #log: EventLog;
  /** Queued file names, oldest first (names grow, so appending keeps the order). */
  #pending: string[] = [];
  #last = { time: 0, counter: 0 };
  #delivered = 0;
  #failedAttempts = 0;
  #dropped = 0;
  #lastSuccess = 0;
  #wake = Promise.withResolvers<void>();
  #closed = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(endpoint: EndpointConfig, dir: string, limits: NotificationsConfig, log: EventLog) {
    this.#endpoint = endpoint;
    this.#dir = dir;
    this.#limits = limits;
    this.#log = log;
  }

  accepts(event: RegistryEvent): boolean {
    return !this.#endpoint.ignoredActions.includes(event.action) &&
      !this.#endpoint.ignoredMediaTypes.includes(event.target.mediaType ?? "");
  }

  async start(): Promise<void> {
    await Deno.mkdir(`${this.#dir}/tmp`, { recursive: true });
    const names: string[] = [];
    for await (const entry of Deno.readDir(this.#dir)) {
      if (entry.isFile && /^\d{15}-\d{9}\.json$/.test(entry.name)) names.push(entry.name);
    }
    names.sort();
    this.#pending = names;
    const last = names.at(-1);
    if (last) this.#last = { time: nameTime(last), counter: Number(last.slice(16, 25)) };
    if (names.length > 0) {
      this.#log("info", "notification queue loaded", {
        endpoint: this.#endpoint.name,
        pending: names.length,
      });
    }
    this.#loop = this.#run();
  }

  async close(): Promise<void> {
    this.#closed.abort();
    this.#wake.resolve();
    await this.#loop;
  }

  stats(): EndpointStats {
    return {
      name: this.#endpoint.name,
      pending: this.#pending.length,
      delivered: this.#delivered,
      failedAttempts: this.#failedAttempts,
      dropped: this.#dropped,
      lastSuccess: this.#lastSuccess,
    };
  }

  async enqueue(event: RegistryEvent): Promise<void> {
    // Names never go backwards, even if the clock does: order on disk is enqueue order.
    const now = Math.max(Date.now(), this.#last.time);
    const counter = now === this.#last.time ? this.#last.counter + 1 : 0;
    this.#last = { time: now, counter };
    const name = queueName(now, counter);
    const bytes = new TextEncoder().encode(JSON.stringify(event));
    await writeFileAtomic(`${this.#dir}/${name}`, bytes, `${this.#dir}/tmp`);
    // Concurrent enqueues may finish out of order: insert in place.
    let at = this.#pending.length;
    while (at > 0 && this.#pending[at - 1]! > name) at--;
    this.#pending.splice(at, 0, name);
    await this.#trim();
    this.#wake.resolve();
  }

  /** Drop the oldest events beyond the size or age bound, with a logged count. */
  async #trim(): Promise<void> {
    const oldest = Date.now() - this.#limits.maxQueueAgeMs;
    let drop = Math.max(0, this.#pending.length - this.#limits.maxQueuedEvents);
    while (drop < this.#pending.length && nameTime(this.#pending[drop]!) < oldest) drop++;
    if (drop === 0) return;
    const dropped = this.#pending.splice(0, drop);
    await Promise.all(dropped.map((name) => this.#remove(name)));
    this.#dropped += dropped.length;
    this.#log("error", "notification queue over its bound: oldest events dropped", {
      endpoint: this.#endpoint.name,
      dropped: dropped.length,
      pending: this.#pending.length,
      maxEvents: this.#limits.maxQueuedEvents,
      maxAgeMs: this.#limits.maxQueueAgeMs,
    });
  }

  async #remove(name: string): Promise<void> {
    await Deno.remove(`${this.#dir}/${name}`).catch((error) => {
      if (!isNotFound(error)) throw error;
    });
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#closed.signal.aborted) {
      if (this.#pending.length === 0) {
        await this.#wake.promise;
        this.#wake = Promise.withResolvers<void>();
        continue;
      }
      try {
        await this.#trim();
        const names = this.#pending.slice(0, BATCH);
        const events = await this.#read(names);
        if (events.length > 0) await this.#send(events);
        const sent = new Set(names);
        this.#pending = this.#pending.filter((name) => !sent.has(name));
        await Promise.all(names.map((name) => this.#remove(name)));
        this.#delivered += events.length;
        this.#lastSuccess = Date.now();
        failures = 0;
      } catch (error) {
        if (this.#closed.signal.aborted) break;
        failures++;
        this.#failedAttempts++;
        const factor = Math.min(
          MAX_BACKOFF_FACTOR,
          2 ** Math.floor(failures / this.#endpoint.threshold),
        );
        const delay = this.#endpoint.backoffMs * factor;
        if (failures === 1 || failures % this.#endpoint.threshold === 0) {
          this.#log("error", "notification delivery failed", {
            endpoint: this.#endpoint.name,
            error: String(error),
            failures,
            pending: this.#pending.length,
            retryInMs: delay,
          });
        }
        await this.#sleep(delay);
      }
    }
  }

  /** The events of queued files (a file that vanished or is torn is skipped). */
  async #read(names: string[]): Promise<RegistryEvent[]> {
    const events: RegistryEvent[] = [];
    for (const name of names) {
      try {
        events.push(JSON.parse(await Deno.readTextFile(`${this.#dir}/${name}`)));
      } catch (error) {
        if (!(isNotFound(error) || error instanceof SyntaxError)) throw error;
        this.#log("error", "notification queue entry unreadable: skipped", {
          endpoint: this.#endpoint.name,
          file: name,
        });
      }
    }
    return events;
  }

  async #send(events: RegistryEvent[]): Promise<void> {
    const headers = new Headers({ "Content-Type": EVENTS_MEDIA_TYPE });
    for (const [key, values] of Object.entries(this.#endpoint.headers)) {
      for (const value of values) headers.append(key, value);
    }
    const signal = AbortSignal.any([
      this.#closed.signal,
      AbortSignal.timeout(this.#endpoint.timeoutMs),
    ]);
    const response = await fetch(this.#endpoint.url, {
      method: "POST",
      headers,
      body: JSON.stringify({ events }),
      signal,
    });
    await response.body?.cancel();
    if (response.status < 200 || response.status > 299) {
      throw new Error(`endpoint answered ${response.status}`);
    }
  }

  async #sleep(ms: number): Promise<void> {
    const signal = this.#closed.signal;
    const { promise, resolve } = Promise.withResolvers<void>();
    const timer = setTimeout(resolve, ms);
    const onAbort = () => resolve();
    signal.addEventListener("abort", onAbort, { once: true });
    await promise;
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
  }
}
