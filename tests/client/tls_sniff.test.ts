/**
 * The TLS sniff that lets a client with verification off skip the HTTPS attempt on a plain-HTTP
 * port: a TLS server answers the ClientHello with a TLS record, a plain one with `HTTP/1.1 400`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { speaksTls } from "../../src/client/tls_sniff.ts";
import { writeServerCert } from "../auth/fixtures.ts";
import { skipWithout } from "../helpers/tools.ts";

Deno.test("tls sniff: a plain HTTP server is plain, a closed port is unknown", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("ok"),
  );
  try {
    assert.equal(await speaksTls("127.0.0.1", server.addr.port), false);
    assert.equal(await speaksTls("localhost", server.addr.port), false);
  } finally {
    await server.shutdown();
  }
  assert.equal(await speaksTls("127.0.0.1", server.addr.port), undefined);
});

Deno.test("tls sniff: a port that says nothing is unknown once the wait is over", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    assert.equal(await speaksTls("127.0.0.1", port, { timeoutMs: 100 }), undefined);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const conn of held) conn.close();
  }
});

Deno.test({
  name: "tls sniff: a TLS server (any certificate) speaks TLS",
  ignore: skipWithout("openssl"),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "berth-tls-sniff-" });
    const { cert, key } = await writeServerCert(dir);
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      cert: await Deno.readTextFile(cert),
      key: await Deno.readTextFile(key),
      onListen() {},
    }, () => new Response("ok"));
    try {
      assert.equal(await speaksTls("127.0.0.1", server.addr.port), true);
      assert.equal(await speaksTls("localhost", server.addr.port), true);
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
