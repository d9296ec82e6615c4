import assert from "node:assert/strict";
import { sendBytes, sendsDirectly } from "../../src/storage/drivers/http_put.ts";
import { writeServerCert } from "../auth/fixtures.ts";
import { skipWithout } from "../helpers/tools.ts";

/** A server that answers with what it received (method, headers, a digest of the body). */
async function withEcho(
  fn: (url: URL) => Promise<void>,
  answer?: (request: Request, body: Uint8Array) => Response,
): Promise<void> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (r) => {
    const body = new Uint8Array(await r.arrayBuffer());
    if (answer) return answer(r, body);
    const sha = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
    return Response.json({
      method: r.method,
      path: new URL(r.url).pathname + new URL(r.url).search,
      length: r.headers.get("content-length"),
      chunked: r.headers.get("transfer-encoding"),
      custom: r.headers.get("x-amz-test"),
      size: body.byteLength,
      sha: Array.from(sha, (b) => b.toString(16).padStart(2, "0")).join(""),
    }, { headers: { etag: '"abc"' } });
  });
  try {
    await fn(new URL(`http://127.0.0.1:${server.addr.port}/bucket/key%2Fpart?partNumber=3&x=y`));
  } finally {
    await server.shutdown();
  }
}

Deno.test("sendBytes: the body goes out whole with its length; the answer comes back", async () => {
  const body = new Uint8Array(3 * 1024 * 1024 + 7);
  crypto.getRandomValues(body.subarray(0, 65536));
  body[body.length - 1] = 42;
  const sha = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  await withEcho(async (url) => {
    const headers = new Headers({ "x-amz-test": "yes", "content-type": "application/x-test" });
    const response = await sendBytes("PUT", url, headers, body, new AbortController().signal);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("etag"), '"abc"');
    const echo = await response.json();
    assert.equal(echo.method, "PUT");
    assert.equal(echo.path, "/bucket/key%2Fpart?partNumber=3&x=y");
    assert.equal(echo.length, String(body.byteLength));
    assert.equal(echo.chunked, null);
    assert.equal(echo.custom, "yes");
    assert.equal(echo.size, body.byteLength);
    assert.equal(echo.sha, Array.from(sha, (b) => b.toString(16).padStart(2, "0")).join(""));
  });
});

Deno.test("sendBytes: error answers, chunked answers and empty answers are read", async () => {
  const xml = "<Error><Code>NoSuchUpload</Code></Error>";
  await withEcho(async (url) => {
    const signal = new AbortController().signal;
    const chunked = await sendBytes("PUT", url, new Headers(), new Uint8Array(10), signal);
    assert.equal(chunked.status, 404);
    assert.equal(await chunked.text(), xml.repeat(3));
    const empty = await sendBytes(
      "PUT",
      new URL("?empty", url),
      new Headers(),
      new Uint8Array(1),
      signal,
    );
    assert.equal(empty.status, 204);
    assert.equal(await empty.text(), "");
  }, (request) => {
    if (new URL(request.url).search === "?empty") return new Response(null, { status: 204 });
    // A stream of unknown length: Deno.serve sends it chunked.
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 3; i++) controller.enqueue(new TextEncoder().encode(xml));
        controller.close();
      },
    });
    return new Response(body, { status: 404 });
  });
});

Deno.test("sendBytes: an abort ends the exchange with the signal's reason", async () => {
  const { promise: arrived, resolve } = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (r) => {
    await r.arrayBuffer();
    resolve();
    // Held until the client goes away.
    await new Promise<void>((done) => {
      const timer = setTimeout(done, 5_000);
      r.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        done();
      });
    });
    return new Response("late");
  });
  try {
    const controller = new AbortController();
    const url = new URL(`http://127.0.0.1:${server.addr.port}/k`);
    const sending = sendBytes("PUT", url, new Headers(), new Uint8Array(100), controller.signal);
    await arrived;
    controller.abort(new Error("timed out"));
    await assert.rejects(sending, /timed out/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("sendBytes: a refused connection throws", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await assert.rejects(
    sendBytes(
      "PUT",
      new URL(`http://127.0.0.1:${port}/`),
      new Headers(),
      new Uint8Array(1),
      new AbortController().signal,
    ),
  );
});

Deno.test("sendsDirectly: only when no proxy variable applies to the URL", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  const http = new URL("http://ceph.internal:7480/bucket/key");
  const https = new URL("https://s3.example.com/bucket/key");
  assert.equal(sendsDirectly(http, env({})), true);
  assert.equal(sendsDirectly(http, env({ HTTP_PROXY: "http://proxy:3128" })), false);
  assert.equal(sendsDirectly(http, env({ http_proxy: "http://proxy:3128" })), false);
  assert.equal(sendsDirectly(http, env({ ALL_PROXY: "http://proxy:3128" })), false);
  // A proxy for the other scheme does not apply.
  assert.equal(sendsDirectly(http, env({ HTTPS_PROXY: "http://proxy:3128" })), true);
  assert.equal(sendsDirectly(https, env({ HTTPS_PROXY: "http://proxy:3128" })), false);
  const proxied = (noProxy: string, url = http) =>
    sendsDirectly(
      url,
      env({ HTTP_PROXY: "http://p:1", HTTPS_PROXY: "http://p:1", NO_PROXY: noProxy }),
    );
  assert.equal(proxied("*"), true);
  assert.equal(proxied("localhost, ceph.internal"), true);
  assert.equal(proxied("example.com", https), true);
  assert.equal(proxied(".example.com", https), true);
  assert.equal(proxied("ample.com", https), false);
  assert.equal(proxied("other.internal"), false);
  assert.equal(proxied("127.0.0.1", new URL("http://127.0.0.1:7480/")), true);
  // Address ranges are left to fetch.
  assert.equal(proxied("127.0.0.0/8", new URL("http://127.0.0.1:7480/")), false);
  assert.equal(
    sendsDirectly(http, () => {
      throw new Error("no env access");
    }),
    false,
  );
});

/**
 * Run `code` in a fresh Deno process (the project's import map) with this environment changed by
 * `env` (a `null` value removes the variable); its status and output.
 */
async function inProcess(code: string, env: Record<string, string | null>) {
  const config = new URL("../../deno.json", import.meta.url).pathname;
  const vars = Deno.env.toObject();
  for (const [name, value] of Object.entries(env)) {
    if (value === null) delete vars[name];
    else vars[name] = value;
  }
  const { code: status, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", config, code],
    clearEnv: true,
    env: vars,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { status, stdout: text(stdout), stderr: text(stderr) };
}

Deno.test("S3 client: a part upload goes through the HTTP proxy the environment names", async () => {
  const seen: { method: string; url: string; size: number }[] = [];
  // The proxy answers as the store would: the store's host does not resolve.
  const proxy = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (r) => {
    seen.push({ method: r.method, url: r.url, size: (await r.arrayBuffer()).byteLength });
    return new Response(null, { headers: { etag: '"via-proxy"' } });
  });
  try {
    const client = new URL("../../src/storage/drivers/s3_client.ts", import.meta.url).href;
    const result = await inProcess(
      `import { S3Client } from "${client}";
      const c = new S3Client({ endpoint: "http://s3.berth-proxy-test.invalid:7480", region: "r",
        bucket: "b", accessKey: "a", secretKey: "s", pathStyle: true, retries: 0 });
      console.log(await c.uploadPart("k", "u", 1, new Uint8Array(1024 * 1024)));`,
      { HTTP_PROXY: `http://127.0.0.1:${proxy.addr.port}`, NO_PROXY: null, no_proxy: null },
    );
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), '"via-proxy"');
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.method, "PUT");
    assert.match(seen[0]!.url, /^http:\/\/s3\.berth-proxy-test\.invalid:7480\/b\/k\?/);
    assert.equal(seen[0]!.size, 1024 * 1024);
  } finally {
    await proxy.shutdown();
  }
});

Deno.test({
  name: "sendBytes: HTTPS trusts the CA fetch trusts (DENO_CERT), and no other",
  ignore: skipWithout("openssl"),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "berth-http-put-tls-" });
    const { ca, cert, key } = await writeServerCert(dir);
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      cert: await Deno.readTextFile(cert),
      key: await Deno.readTextFile(key),
      onListen: () => {},
    }, async (r) => new Response(String((await r.arrayBuffer()).byteLength)));
    try {
      const module = new URL("../../src/storage/drivers/http_put.ts", import.meta.url).href;
      const code = `import { sendBytes } from "${module}";
        const r = await sendBytes("PUT", new URL("https://127.0.0.1:${server.addr.port}/k"),
          new Headers(), new Uint8Array(100000), new AbortController().signal);
        console.log(r.status, await r.text());`;
      const trusted = await inProcess(code, { DENO_CERT: ca });
      assert.equal(trusted.status, 0, trusted.stderr);
      assert.equal(trusted.stdout.trim(), "200 100000");
      const unknown = await inProcess(code, { DENO_CERT: null });
      assert.notEqual(unknown.status, 0);
      assert.match(unknown.stderr, /UnknownIssuer|certificate/i);
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
