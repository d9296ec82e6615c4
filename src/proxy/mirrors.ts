/**
 * The mirrors of a pull-through cache: which local repositories mirror which upstream, and one
 * registry client per upstream (src/client/), with the cache's counters.
 *
 * @module
 */
import type { RegistryClient, RegistryClientOptions } from "../client/registry_client.ts";

/** One mirrored upstream registry. */
export interface MirrorConfig {
  /** Local repositories `<prefix>/REST` mirror upstream `REST`; `""`: the whole registry. */
  prefix: string;
  /** The upstream's base URL (`https://registry-1.docker.io`). */
  remoteUrl: string;
  /** Upstream user name (Basic or the token flow). */
  username?: string;
  /** Upstream password. */
  password?: string;
  /** How long unused cached content is kept (collected by the safe GC); none: kept. */
  ttlMs?: number;
  /** Map single-component names to `library/NAME` (Docker Hub); default: on for Docker Hub. */
  library?: boolean;
}

/** The `proxy` section. */
export interface ProxyConfig {
  /** The mirrors, longest prefix first when matching. */
  mirrors: MirrorConfig[];
  /** A cached tag is revalidated with its upstream at most once per this many ms. */
  revalidateMs: number;
  /** Time the upstream has to answer (response headers), ms. */
  timeoutMs: number;
}

/** Default revalidation interval of tags. */
export const DEFAULT_REVALIDATE_MS = 60_000;
/** Default upstream answer timeout. */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 10_000;

/** Counters of one mirror (rendered on `/metrics`). */
export interface MirrorCounters {
  /** Requests answered from the cache. */
  hits: number;
  /** Requests that fetched from the upstream. */
  misses: number;
  /** Failed upstream requests. */
  upstreamErrors: number;
  /** Cached manifests served because the upstream could not be asked. */
  staleServes: number;
  /** Bytes fetched from the upstream. */
  bytesFetched: number;
}

/** One mirror, live. */
export interface Mirror {
  /** Its configuration. */
  config: MirrorConfig;
  /** Its label in logs and metrics (the prefix, or `*` for the whole registry). */
  label: string;
  /** The upstream client. */
  client: UpstreamClient;
  /** Its counters. */
  counters: MirrorCounters;
}

/** A local repository routed to its mirror. */
export interface Route {
  /** The mirror. */
  mirror: Mirror;
  /** The repository's name upstream. */
  upstream: string;
}

/** The mirrors of one registry. */
export class Mirrors {
  readonly #mirrors: Mirror[];
  /** The `proxy` section in force. */
  readonly config: ProxyConfig;

  /** Clients for every mirror of `config`. */
  constructor(config: ProxyConfig) {
    this.config = config;
    this.#mirrors = [...config.mirrors]
      .sort((a, b) => b.prefix.length - a.prefix.length)
      .map((mirror) => ({
        config: mirror,
        label: mirror.prefix || "*",
        client: new UpstreamClient({
          registry: mirror.remoteUrl,
          ...(mirror.username !== undefined && {
            credentials: { username: mirror.username, password: mirror.password ?? "" },
          }),
          retry: { retries: 1, timeoutMs: config.timeoutMs },
          userAgent: "berth-mirror",
        }),
        counters: { hits: 0, misses: 0, upstreamErrors: 0, staleServes: 0, bytesFetched: 0 },
      }));
  }

  /** Every mirror. */
  get all(): readonly Mirror[] {
    return this.#mirrors;
  }

  /** The mirror of a local repository, or `undefined` for a local repository. */
  route(name: string): Route | undefined {
    for (const mirror of this.#mirrors) {
      const prefix = mirror.config.prefix;
      let rest: string;
      if (prefix === "") rest = name;
      else if (name.startsWith(`${prefix}/`)) rest = name.slice(prefix.length + 1);
      else continue;
      const library = mirror.config.library ?? isDockerHub(mirror.config.remoteUrl);
      return { mirror, upstream: library && !rest.includes("/") ? `library/${rest}` : rest };
    }
    return undefined;
  }

  /** The label of a repository's mirror, or `undefined` for a local repository. */
  label(name: string): string | undefined {
    return this.route(name)?.mirror.label;
  }

  /** Release the clients' connections. */
  close(): void {
    for (const mirror of this.#mirrors) mirror.client.close();
  }

  /** The counters in the Prometheus text format. */
  render(): string {
    const lines: string[] = [];
    const counter = (name: string, help: string, pick: (c: MirrorCounters) => number) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      for (const mirror of this.#mirrors) {
        lines.push(`${name}{mirror="${mirror.label}"} ${pick(mirror.counters)}`);
      }
    };
    counter("berth_mirror_hits_total", "Requests answered from the cache.", (c) => c.hits);
    counter("berth_mirror_misses_total", "Requests fetched from the upstream.", (c) => c.misses);
    counter(
      "berth_mirror_upstream_errors_total",
      "Upstream requests that failed.",
      (c) => c.upstreamErrors,
    );
    counter(
      "berth_mirror_stale_serves_total",
      "Cached manifests served while the upstream could not be asked.",
      (c) => c.staleServes,
    );
    counter(
      "berth_mirror_fetched_bytes_total",
      "Bytes fetched from the upstream.",
      (c) => c.bytesFetched,
    );
    return lines.join("\n") + "\n";
  }
}

/** What the cache asks of an upstream's {@link RegistryClient}. */
type Upstream = Pick<
  RegistryClient,
  "statBlob" | "openBlob" | "getManifest" | "headManifest" | "referrers" | "listTags" | "close"
>;

/**
 * An upstream's registry client, its module (src/client/) loaded on the first call: `berth serve`
 * without a cache, or with one that has not asked its upstream yet, does not load the client.
 */
export class UpstreamClient implements Upstream {
  readonly #options: RegistryClientOptions;
  #client: Promise<RegistryClient> | undefined;
  #loaded: RegistryClient | undefined;
  #closed = false;

  /** A client of `options`, made on first use. */
  constructor(options: RegistryClientOptions) {
    this.#options = options;
  }

  #get(): Promise<RegistryClient> {
    return this.#client ??= import("../client/registry_client.ts").then((module) => {
      const client = new module.RegistryClient(this.#options);
      this.#loaded = client;
      if (this.#closed) client.close();
      return client;
    });
  }

  /** {@link RegistryClient}'s `statBlob`. */
  async statBlob(...args: Parameters<RegistryClient["statBlob"]>) {
    return await (await this.#get()).statBlob(...args);
  }

  /** {@link RegistryClient}'s `openBlob`. */
  async openBlob(...args: Parameters<RegistryClient["openBlob"]>) {
    return await (await this.#get()).openBlob(...args);
  }

  /** {@link RegistryClient}'s `getManifest`. */
  async getManifest(...args: Parameters<RegistryClient["getManifest"]>) {
    return await (await this.#get()).getManifest(...args);
  }

  /** {@link RegistryClient}'s `headManifest`. */
  async headManifest(...args: Parameters<RegistryClient["headManifest"]>) {
    return await (await this.#get()).headManifest(...args);
  }

  /** {@link RegistryClient}'s `referrers`. */
  async referrers(...args: Parameters<RegistryClient["referrers"]>) {
    return await (await this.#get()).referrers(...args);
  }

  /** {@link RegistryClient}'s `listTags`. */
  async listTags(...args: Parameters<RegistryClient["listTags"]>) {
    return await (await this.#get()).listTags(...args);
  }

  /** Release the client's connections (now, or once it is made). */
  close(): void {
    this.#closed = true;
    this.#loaded?.close();
  }
}

/** Whether a URL is Docker Hub's registry. */
export function isDockerHub(url: string): boolean {
  return /^(https?:\/\/)?(registry-1\.docker\.io|docker\.io|index\.docker\.io)(:\d+)?\/?$/
    .test(url);
}
