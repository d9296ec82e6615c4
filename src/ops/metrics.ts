/**
 * Prometheus metrics of one registry: requests by route, method and status, bytes in and out,
 * latency histograms, requests in flight, storage errors; rendered in the text exposition format.
 *
 * @module
 */

/** Latency buckets in seconds (distribution's and Prometheus' usual spread, up to a minute). */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** One finished request, as {@link Metrics.observe} records it. */
export interface RequestSample {
  /** Route label (`manifests`, `blobs`, `uploads`, ...). */
  route: string;
  /** HTTP method. */
  method: string;
  /** Response status. */
  status: number;
  /** Request body bytes. */
  bytesIn: number;
  /** Response body bytes. */
  bytesOut: number;
  /** Seconds from request to response headers. */
  seconds: number;
}

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

/** How old a background gauge's value may be before a scrape starts a new count. */
export const GAUGE_MAX_AGE_MS = 15_000;

/**
 * A gauge whose count is expensive (it walks the store): a scrape answers the last count and,
 * when that is older than `maxAgeMs`, starts a new one in the background. Only the first scrape
 * waits for a count. At most one count runs at a time.
 */
export class BackgroundGauge {
  readonly #count: () => Promise<number>;
  readonly #maxAgeMs: number;
  #value: number | undefined;
  #countedAt = -Infinity;
  #running: Promise<number> | undefined;

  /** A gauge over `count`. */
  constructor(count: () => Promise<number>, maxAgeMs = GAUGE_MAX_AGE_MS) {
    this.#count = count;
    this.#maxAgeMs = maxAgeMs;
  }

  /** The last count (waiting for the first); throws when the first count fails. */
  async read(): Promise<number> {
    if (performance.now() - this.#countedAt > this.#maxAgeMs) this.#refresh();
    if (this.#value === undefined) return await this.#running!;
    return this.#value;
  }

  #refresh(): void {
    if (this.#running) return;
    const running = this.#count().then((value) => {
      this.#value = value;
      this.#countedAt = performance.now();
      return value;
    }).finally(() => {
      this.#running = undefined;
    });
    running.catch(() => {});
    this.#running = running;
  }
}

/** Gauges read at scrape time. */
export interface GaugeSources {
  /** Open upload sessions in the store. */
  uploadSessions(): Promise<number>;
}

/** Counters of one route and method. */
interface MethodSeries {
  /** Requests by status. */
  statuses: Map<number, number>;
  latency: Histogram;
}

/** Counters of one route. */
interface RouteSeries {
  bytesIn: number;
  bytesOut: number;
  methods: Map<string, MethodSeries>;
}

/** The metrics of one app (no global registry: built by `createApp`). */
export class Metrics {
  /** By route, then method, then status: found with map lookups, no label text per request. */
  readonly #routes = new Map<string, RouteSeries>();
  readonly #started = Date.now() / 1000;
  #inFlight = 0;
  #storageErrors = 0;

  /** A request started. */
  begin(): void {
    this.#inFlight++;
  }

  /** A request finished. */
  observe(sample: RequestSample): void {
    this.#inFlight--;
    const { route, method, status, seconds } = sample;
    let series = this.#routes.get(route);
    if (!series) {
      series = { bytesIn: 0, bytesOut: 0, methods: new Map() };
      this.#routes.set(route, series);
    }
    series.bytesIn += sample.bytesIn;
    series.bytesOut += sample.bytesOut;
    let byMethod = series.methods.get(method);
    if (!byMethod) {
      const latency = { counts: LATENCY_BUCKETS.map(() => 0), sum: 0, count: 0 };
      byMethod = { statuses: new Map(), latency };
      series.methods.set(method, byMethod);
    }
    const { statuses, latency } = byMethod;
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
      if (seconds <= LATENCY_BUCKETS[i]!) {
        latency.counts[i]!++;
        break;
      }
    }
    latency.sum += seconds;
    latency.count++;
  }

  /** An unexpected storage (I/O) error happened. */
  storageError(): void {
    this.#storageErrors++;
  }

  /** The exposition text. */
  async render(gauges: GaugeSources): Promise<string> {
    const out: string[] = [];
    const family = (name: string, type: string, help: string) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    const methods = function* (routes: Map<string, RouteSeries>) {
      for (const [route, series] of routes) {
        for (const [method, byMethod] of series.methods) {
          yield { labels: `route="${route}",method="${method}"`, byMethod };
        }
      }
    };

    family("berth_http_requests_total", "counter", "HTTP requests by route, method and status.");
    for (const { labels, byMethod } of methods(this.#routes)) {
      for (const [status, count] of byMethod.statuses) {
        out.push(`berth_http_requests_total{${labels},status="${status}"} ${count}`);
      }
    }
    family(
      "berth_http_request_duration_seconds",
      "histogram",
      "Time from request to response headers, by route and method.",
    );
    for (const { labels, byMethod: { latency: h } } of methods(this.#routes)) {
      let cumulative = 0;
      LATENCY_BUCKETS.forEach((le, i) => {
        cumulative += h.counts[i]!;
        out.push(`berth_http_request_duration_seconds_bucket{${labels},le="${le}"} ${cumulative}`);
      });
      out.push(`berth_http_request_duration_seconds_bucket{${labels},le="+Inf"} ${h.count}`);
      out.push(`berth_http_request_duration_seconds_sum{${labels}} ${h.sum}`);
      out.push(`berth_http_request_duration_seconds_count{${labels}} ${h.count}`);
    }
    family("berth_http_request_bytes_total", "counter", "Request body bytes received, by route.");
    for (const [route, series] of this.#routes) {
      out.push(`berth_http_request_bytes_total{route="${route}"} ${series.bytesIn}`);
    }
    family("berth_http_response_bytes_total", "counter", "Response body bytes sent, by route.");
    for (const [route, series] of this.#routes) {
      out.push(`berth_http_response_bytes_total{route="${route}"} ${series.bytesOut}`);
    }
    family("berth_http_requests_in_flight", "gauge", "Requests being answered now.");
    out.push(`berth_http_requests_in_flight ${this.#inFlight}`);
    family(
      "berth_upload_sessions_open",
      "gauge",
      `Upload sessions open in the store (counted at most every ${GAUGE_MAX_AGE_MS / 1000} s).`,
    );
    let sessions = Number.NaN;
    try {
      sessions = await gauges.uploadSessions();
    } catch {
      this.#storageErrors++;
    }
    out.push(`berth_upload_sessions_open ${sessions}`);
    family(
      "berth_storage_errors_total",
      "counter",
      "Unexpected storage errors (requests answered 500, failed health and metrics probes).",
    );
    out.push(`berth_storage_errors_total ${this.#storageErrors}`);
    family("berth_process_start_time_seconds", "gauge", "Start time, seconds since the epoch.");
    out.push(`berth_process_start_time_seconds ${this.#started}`);
    family("berth_process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    out.push(`berth_process_resident_memory_bytes ${Deno.memoryUsage().rss}`);
    return out.join("\n") + "\n";
  }
}
