/**
 * The floor under berth's own HTTP/1.1 server for small requests: a bare `Deno.listen` loop that
 * finds the end of each request head in what it read and answers every head with the same fixed
 * `200` and `{}` (what `GET /v2/` answers; `connection: keep-alive`, which `ab -k` needs),
 * pipelining included. No parsing beyond the blank line, no routing, no headers object: the least a
 * server written in JavaScript over the runtime's sockets does per request (one read and one write
 * through the runtime, one promise each), below berth and unlike `Deno.serve`, whose parsing and
 * writing run in Rust.
 *
 * Run as `deno run --allow-net small_floor.ts PORT`.
 *
 * @module
 */

const ANSWER = new TextEncoder().encode(
  "HTTP/1.1 200 OK\r\nconnection: keep-alive\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
);

/** Serve until the listener closes. */
export async function serveSmallFloor(listener: Deno.Listener): Promise<void> {
  for await (const conn of listener) void connection(conn).catch(() => {});
}

async function connection(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  let out = new Uint8Array(ANSWER.byteLength * 16);
  let carry = 0; // bytes of "\r\n\r\n" matched at the end of the last read
  try {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) return;
      let heads = 0;
      for (let i = 0; i < n; i++) {
        const byte = buffer[i];
        carry = byte === (carry % 2 === 0 ? 13 : 10) ? carry + 1 : byte === 13 ? 1 : 0;
        if (carry === 4) {
          heads++;
          carry = 0;
        }
      }
      if (heads === 0) continue;
      if (out.byteLength < heads * ANSWER.byteLength) {
        out = new Uint8Array(heads * ANSWER.byteLength);
      }
      for (let h = 0; h < heads; h++) out.set(ANSWER, h * ANSWER.byteLength);
      let written = 0;
      const total = heads * ANSWER.byteLength;
      while (written < total) written += await conn.write(out.subarray(written, total));
    }
  } finally {
    conn.close();
  }
}

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? 0);
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  console.log(`listening on ${(listener.addr as Deno.NetAddr).port}`);
  await serveSmallFloor(listener);
}
