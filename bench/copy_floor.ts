/**
 * The floor under `berth copy`: the least a Deno client does to copy an image from one registry
 * to another over plain HTTP/1.1, what any client in this runtime pays at least.
 *
 * It reads one OCI image manifest by tag and copies its config and layers with `JOBS` workers
 * (default 6), each on a kept-alive connection to each registry: it sends the destination's
 * `POST .../blobs/uploads/` and the source's blob `GET` together, then `PUT`s the body to the
 * session as it arrives (`Content-Length`, chunk by chunk from a 1 MiB receive buffer) and checks
 * the `201`; then `PUT`s the manifest's bytes. The destination verifies each digest before the
 * blob is visible (as `berth copy` leaves it to a registry destination), so nothing is hashed
 * here. No existence checks, mounts, auth, retries, redirects, progress or streams.
 *
 * Run as `deno run --allow-net copy_floor.ts docker://HOST/REPO:TAG docker://HOST/REPO:TAG`.
 *
 * @module
 */
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Head {
  status: number;
  headers: Map<string, string>;
}

/** One kept-alive HTTP/1.1 connection with its receive buffer. */
class Connection {
  #buffer = new Uint8Array(1 << 20);
  #start = 0;
  #end = 0;

  private constructor(readonly host: string, readonly conn: Deno.TcpConn) {}

  static async open(host: string): Promise<Connection> {
    const url = new URL(`http://${host}`);
    const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port || 80) });
    conn.setNoDelay(true);
    return new Connection(host, conn);
  }

  async write(bytes: Uint8Array): Promise<void> {
    for (let done = 0; done < bytes.length;) done += await this.conn.write(bytes.subarray(done));
  }

  send(method: string, path: string, headers: Record<string, string | number> = {}) {
    let head = `${method} ${path} HTTP/1.1\r\nHost: ${this.host}\r\n`;
    for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
    return this.write(encoder.encode(`${head}\r\n`));
  }

  async #fill(): Promise<void> {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#end === this.#buffer.length) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    const n = await this.conn.read(this.#buffer.subarray(this.#end));
    if (n === null) throw new Error(`${this.host}: connection closed`);
    this.#end += n;
  }

  async head(): Promise<Head> {
    for (let scanned = this.#start;;) {
      for (; scanned + 3 < this.#end; scanned++) {
        if (
          this.#buffer[scanned] === 13 && this.#buffer[scanned + 1] === 10 &&
          this.#buffer[scanned + 2] === 13 && this.#buffer[scanned + 3] === 10
        ) {
          const lines = decoder.decode(this.#buffer.subarray(this.#start, scanned)).split("\r\n");
          this.#start = scanned + 4;
          const headers = new Map<string, string>();
          for (const line of lines.slice(1)) {
            const colon = line.indexOf(":");
            headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
          }
          return { status: Number(lines[0]!.split(" ")[1]), headers };
        }
      }
      const offset = scanned - this.#start;
      await this.#fill();
      scanned = this.#start + offset;
    }
  }

  /** The body's bytes as they arrive, views into the receive buffer valid until the next. */
  async *body(head: Head): AsyncGenerator<Uint8Array> {
    for (let left = Number(head.headers.get("content-length") ?? 0); left > 0;) {
      if (this.#start === this.#end) await this.#fill();
      const n = Math.min(left, this.#end - this.#start);
      yield this.#buffer.subarray(this.#start, this.#start + n);
      this.#start += n;
      left -= n;
    }
  }

  async bytes(head: Head): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for await (const part of this.body(head)) parts.push(part.slice());
    const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
    parts.reduce((offset, part) => (out.set(part, offset), offset + part.length), 0);
    return out;
  }
}

function expect(what: string, head: Head, status: number): void {
  if (head.status !== status) throw new Error(`${what}: ${head.status}, expected ${status}`);
}

function parseReference(argument: string | undefined): { host: string; repo: string; tag: string } {
  const match = /^docker:\/\/([^/]+)\/(.+):([\w][\w.-]*)$/.exec(argument ?? "");
  if (!match) {
    console.error("usage: copy_floor.ts docker://HOST/REPO:TAG docker://HOST/REPO:TAG");
    Deno.exit(2);
  }
  return { host: match[1]!, repo: match[2]!, tag: match[3]! };
}

const source = parseReference(Deno.args[0]);
const destination = parseReference(Deno.args[1]);
const jobs = Number(Deno.env.get("JOBS") ?? 6);

const first = await Connection.open(source.host);
await first.send("GET", `/v2/${source.repo}/manifests/${source.tag}`, { Accept: MANIFEST });
const manifestHead = await first.head();
expect("manifest GET", manifestHead, 200);
const manifestBytes = await first.bytes(manifestHead);
first.conn.close();
const manifest = JSON.parse(decoder.decode(manifestBytes));
const blobs: { digest: string; size: number }[] = [manifest.config, ...manifest.layers];

let next = 0;
async function worker(): Promise<void> {
  const [from, to] = await Promise.all([
    Connection.open(source.host),
    Connection.open(destination.host),
  ]);
  for (let blob = blobs[next++]; blob; blob = blobs[next++]) {
    await Promise.all([
      to.send("POST", `/v2/${destination.repo}/blobs/uploads/`, { "Content-Length": 0 }),
      from.send("GET", `/v2/${source.repo}/blobs/${blob.digest}`),
    ]);
    const post = await to.head();
    expect("POST", post, 202);
    const session = new URL(post.headers.get("location")!, `http://${destination.host}`);
    session.searchParams.set("digest", blob.digest);
    const got = await from.head();
    expect(`GET ${blob.digest}`, got, 200);
    await to.send("PUT", session.pathname + session.search, {
      "Content-Type": "application/octet-stream",
      "Content-Length": blob.size,
    });
    for await (const part of from.body(got)) await to.write(part);
    const put = await to.head();
    await to.bytes(put);
    expect(`PUT ${blob.digest}`, put, 201);
  }
  from.conn.close();
  to.conn.close();
}
await Promise.all(Array.from({ length: jobs }, worker));

const last = await Connection.open(destination.host);
await last.send("PUT", `/v2/${destination.repo}/manifests/${destination.tag}`, {
  "Content-Type": MANIFEST,
  "Content-Length": manifestBytes.length,
});
await last.write(manifestBytes);
expect("manifest PUT", await last.head(), 201);
last.conn.close();
