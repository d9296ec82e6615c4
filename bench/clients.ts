/**
 * The clients the benchmark drives registries with: `curl` for bulk transfers (a C client, so the
 * client is not what is measured), `ab`/`wrk` for request rates at many connections, and `fetch`
 * for small protocol steps.
 *
 * @module
 */

/** Result of one curl transfer. */
export interface Transfer {
  /** HTTP status. */
  status: number;
  /** Seconds from start to end of the transfer, as curl measured it. */
  seconds: number;
  /** Bytes uploaded. */
  uploaded: number;
  /** Bytes downloaded. */
  downloaded: number;
  /** The response's `Location` header ("" when none). */
  location: string;
}

const WRITE_OUT = "%{http_code} %{time_total} %{size_upload} %{size_download} %header{location}\\n";

/** One step of a curl run: a URL and its own options. */
export interface CurlStep {
  /** Absolute URL. */
  url: string;
  /** Method (default GET). */
  method?: string;
  /** A file to upload as the body. */
  upload?: string;
  /** Request headers. */
  headers?: Record<string, string>;
  /** `Range` to ask for, e.g. `0-1023`. */
  range?: string;
}

/**
 * Run one curl process doing the steps in order over one keep-alive connection; returns one
 * {@link Transfer} per step. Response bodies are discarded.
 */
export async function curl(steps: CurlStep[]): Promise<Transfer[]> {
  const args = ["-sS", "--http1.1"];
  steps.forEach((step, i) => {
    if (i > 0) args.push("--next");
    args.push("-o", "/dev/null", "-w", WRITE_OUT, "-H", "Expect:");
    if (step.method) args.push("-X", step.method);
    if (step.upload) args.push("-T", step.upload);
    if (step.range) args.push("-r", step.range);
    for (const [key, value] of Object.entries(step.headers ?? {})) {
      args.push("-H", `${key}: ${value}`);
    }
    args.push(step.url);
  });
  const { code, stdout, stderr } = await new Deno.Command("curl", { args, stdin: "null" }).output();
  const text = new TextDecoder().decode(stdout);
  if (code !== 0) throw new Error(`curl exited ${code}: ${new TextDecoder().decode(stderr)}`);
  const lines = text.trim().split("\n");
  if (lines.length !== steps.length) {
    throw new Error(`curl printed ${lines.length} results: ${text}`);
  }
  return lines.map((line) => {
    const [status, seconds, uploaded, downloaded, location = ""] = line.trim().split(" ");
    return {
      status: Number(status),
      seconds: Number(seconds),
      uploaded: Number(uploaded),
      downloaded: Number(downloaded),
      location,
    };
  });
}

/** Whether a command is on the PATH. */
export function hasCommand(name: string): boolean {
  try {
    return new Deno.Command("sh", {
      args: ["-c", `command -v ${name}`],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

/** How long or how much a load run lasts. */
export interface LoadSize {
  /** Run for this many seconds (`wrk` when installed, else `ab -t`). */
  seconds?: number;
  /** Or send exactly this many requests (`ab -n`). */
  requests?: number;
}

/** Result of a load run. */
export interface LoadResult {
  /** Completed requests per second. */
  rate: number;
  /** Requests answered with an unexpected status, or failed. */
  errors: number;
  /** Requests completed. */
  completed: number;
  /** The tool used. */
  tool: string;
}

/**
 * Load a URL at `connections` keep-alive connections. HEAD goes through `ab -k -i` (wrk 4.1 hangs
 * on HEAD answers that carry a Content-Length); GET through `wrk -t1` when installed and the run
 * is timed (it drives ~1.5–2x more requests per core than `ab` here), else {@link fetchLoad}
 * (HTTP/1.1: berth closes HTTP/1.0 keep-alive connections after some GET answers, which `ab`
 * takes as a failure).
 */
export async function load(
  method: "GET" | "HEAD",
  url: string,
  connections: number,
  size: LoadSize,
  headers: Record<string, string> = {},
): Promise<LoadResult> {
  const headerArgs = Object.entries(headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
  if (method === "GET" && size.seconds !== undefined && hasCommand("wrk")) {
    const args = ["-t1", `-c${connections}`, `-d${size.seconds}s`, ...headerArgs, url];
    const text = await output("wrk", args);
    const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
    const completed = Number(/(\d+) requests in/.exec(text)?.[1]);
    const bad = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
    const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(
      text,
    );
    const socketErrors = socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
    if (!Number.isFinite(rate)) throw new Error(`wrk printed no rate: ${text}`);
    return { rate, errors: bad + socketErrors, completed, tool: "wrk -t1" };
  }
  if (method === "GET") return await fetchLoad(url, connections, size, headers);
  const args = ["-q", "-k", "-c", String(connections)];
  args.push("-i");
  // `-t` implies `-n 50000`; a later `-n` lifts that cap.
  if (size.seconds !== undefined) args.push("-t", String(size.seconds), "-n", "100000000");
  else args.push("-n", String(size.requests ?? 1000));
  args.push(...headerArgs, url);
  const text = await output("ab", args);
  const rate = Number(/Requests per second:\s+([\d.]+)/.exec(text)?.[1]);
  const completed = Number(/Complete requests:\s+(\d+)/.exec(text)?.[1]);
  const failed = Number(/Failed requests:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const bad = Number(/Non-2xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  if (!Number.isFinite(rate)) throw new Error(`ab printed no rate: ${text}`);
  return { rate, errors: failed + bad, completed, tool: "ab -k -i" };
}

/**
 * A load generator in Deno: `connections` workers sending requests with keep-alive `fetch`
 * (HTTP/1.1), for GET runs without `wrk` or with a request count. It shares the machine's cores
 * with the server, so it understates fast servers; `wrk` is preferred for timed runs.
 */
export async function fetchLoad(
  url: string,
  connections: number,
  size: LoadSize,
  headers: Record<string, string> = {},
): Promise<LoadResult> {
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: connections });
  const deadline = size.seconds === undefined ? Infinity : performance.now() + size.seconds * 1000;
  let budget = size.seconds === undefined ? size.requests ?? 1000 : Infinity;
  let completed = 0;
  let errors = 0;
  const started = performance.now();
  const worker = async () => {
    while (budget-- > 0 && performance.now() < deadline) {
      try {
        const response = await fetch(url, { headers, client });
        await response.arrayBuffer();
        if (response.status >= 300) errors++;
      } catch {
        errors++;
      }
      completed++;
    }
  };
  try {
    await Promise.all(Array.from({ length: connections }, worker));
  } finally {
    client.close();
  }
  const rate = completed / ((performance.now() - started) / 1000);
  return { rate, errors, completed, tool: "fetch (Deno)" };
}

async function output(command: string, args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(command, { args, stdin: "null" })
    .output();
  const text = new TextDecoder().decode(stdout);
  if (code !== 0) {
    throw new Error(`${command} exited ${code}: ${text}\n${new TextDecoder().decode(stderr)}`);
  }
  return text;
}

/** Run `work` over `items` with at most `concurrency` at a time. */
export async function pool<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      await work(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** `fetch` that reads the whole body and checks the status; returns the response and its text. */
export async function request(
  url: string,
  init: RequestInit & { expect: number | number[] },
): Promise<{ response: Response; text: string }> {
  const response = await fetch(url, init);
  const text = await response.text();
  const expected = Array.isArray(init.expect) ? init.expect : [init.expect];
  if (!expected.includes(response.status)) {
    throw new Error(
      `${init.method ?? "GET"} ${url} answered ${response.status}, expected ${expected}: ${
        text.slice(0, 300)
      }`,
    );
  }
  return { response, text };
}
