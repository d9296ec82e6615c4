/**
 * The S3 driver against a real S3-compatible store (Ceph radosgw): what only an object store has
 * (writers resumed by another process, parts and tails, sealing for read-back, multipart copies,
 * presigned URLs, an unreachable store).
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { WriterBusy } from "../../src/storage/driver.ts";
import { S3Driver } from "../../src/storage/drivers/s3.ts";
import { StorageUnavailable } from "../../src/storage/unavailable.ts";
import { s3Options, skipWithoutS3, tempBucket } from "../helpers/s3.ts";

const MIB = 1024 * 1024;
const ignore = skipWithoutS3();

function bytes(n: number, seed = 1): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function stream(data: Uint8Array, piece = 64 * 1024): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= data.length) return controller.close();
      controller.enqueue(data.slice(at, at + piece));
      at += piece;
    },
  });
}

/**
 * A body of `data` in 1 MiB pieces that stalls once `stallAt` bytes are out: `stalled` settles
 * then, and the rest follows after `release()`.
 */
function stallingBody(data: Uint8Array, stallAt: number) {
  let sent = 0;
  const { promise: stalled, resolve } = Promise.withResolvers<void>();
  const { promise: go, resolve: release } = Promise.withResolvers<void>();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent === stallAt) {
        resolve();
        await go;
      }
      if (sent >= data.length) return controller.close();
      controller.enqueue(data.slice(sent, sent + MIB));
      sent += MIB;
    },
  });
  return { body, stalled, release };
}

async function collect(body: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(body).arrayBuffer());
}

function sha(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Run `fn` with two drivers (two "processes") on one fresh bucket under a root directory. */
async function withDrivers(
  fn: (a: S3Driver, b: S3Driver) => Promise<void>,
): Promise<void> {
  const bucket = await tempBucket();
  try {
    const options = s3Options(bucket.name, { rootDirectory: "reg/root" });
    await fn(new S3Driver(options), new S3Driver(options));
  } finally {
    await bucket.remove();
  }
}

Deno.test({
  name: "s3 driver: keys are distribution's (rootdirectory + /docker/registry/v2/...)",
  ignore,
  fn: () =>
    withDrivers(async (a) => {
      await a.putContent("/docker/registry/v2/repositories/x/_layers/sha256/ab/link", bytes(3));
      const keys: string[] = [];
      for await (const e of a.client.list("")) if (e.kind === "object") keys.push(e.key);
      assert.deepEqual(keys, ["reg/root/docker/registry/v2/repositories/x/_layers/sha256/ab/link"]);
      assert.deepEqual(await a.list("/docker/registry/v2/repositories"), ["x"]);
      assert.equal((await a.stat("/docker/registry/v2/repositories/x"))?.isDir, true);
    }),
});

Deno.test({
  name: "s3 driver: a writer resumed by another process continues across parts and tails",
  ignore,
  fn: () =>
    withDrivers(async (a, b) => {
      const data = bytes(13 * MIB + 12345);
      const path = "/up/data";
      const w1 = (await a.writer(path))!;
      // 3 MiB: only a tail; then 7 MiB on the other driver: one 5 MiB part and a tail.
      assert.equal(await w1.write(stream(data.subarray(0, 3 * MIB))), 3 * MIB);
      await w1.close();
      const w2 = (await b.writer(path, { append: true }))!;
      assert.equal(w2.size, 3 * MIB);
      assert.equal(await w2.write(stream(data.subarray(3 * MIB, 10 * MIB))), 10 * MIB);
      await w2.close();
      const w3 = (await a.writer(path, { append: true }))!;
      assert.equal(w3.size, 10 * MIB);
      assert.equal(await w3.write(stream(data.subarray(10 * MIB))), data.length);
      await w3.close();
      // Committed by another process: the tail is copied in the store as the last part.
      await (await b.writer(path, { append: true }))!.commit();
      assert.equal(sha(await collect((await b.reader(path))!.body)), sha(data));
      assert.equal(await a.writer(path, { append: true }), undefined);
      // Nothing of the writer is left beside the file.
      const keys: string[] = [];
      for await (const e of a.client.list("reg/root/up/")) {
        if (e.kind === "object") keys.push(e.key);
      }
      assert.deepEqual(keys, ["reg/root/up/data"]);
    }),
});

Deno.test({
  name: "s3 driver: a write ending in a part shorter than the part size stores only its bytes",
  ignore,
  fn: async () => {
    const bucket = await tempBucket();
    try {
      // 8 MiB parts: a write that ends with 5 MiB or more sends them as a short part.
      const driver = new S3Driver(s3Options(bucket.name, { chunkSize: 8 * MIB }));
      const data = bytes(19 * MIB + 3, 11);
      const path = "/short/data";
      const w1 = (await driver.writer(path))!;
      assert.equal(await w1.write(stream(data.subarray(0, 6 * MIB))), 6 * MIB);
      await w1.close();
      const w2 = (await driver.writer(path, { append: true }))!;
      assert.equal(await w2.write(stream(data.subarray(6 * MIB))), data.length);
      await w2.commit();
      assert.equal((await driver.stat(path))?.size, data.length);
      assert.equal(sha(await collect((await driver.reader(path))!.body)), sha(data));
      // Only a tail (no part), committed by a fresh writer: the tail becomes the file.
      const small = (await driver.writer("/short/small"))!;
      await small.write(stream(data.subarray(0, MIB + 5)));
      await small.close();
      await (await driver.writer("/short/small", { append: true }))!.commit();
      assert.deepEqual(await driver.getContent("/short/small"), data.subarray(0, MIB + 5));
    } finally {
      await bucket.remove();
    }
  },
});

Deno.test({
  name: "s3 driver: readBack from another process, then more writes, then commit",
  ignore,
  fn: () =>
    withDrivers(async (a, b) => {
      const data = bytes(12 * MIB, 7);
      const path = "/up2/data";
      const w1 = (await a.writer(path))!;
      await w1.write(stream(data.subarray(0, 6 * MIB + 5)));
      await w1.close();
      const w2 = (await b.writer(path, { append: true }))!;
      assert.equal(sha(await collect(await w2.readBack())), sha(data.subarray(0, 6 * MIB + 5)));
      assert.deepEqual(
        await collect(await w2.readBack(6 * MIB)),
        data.subarray(6 * MIB, 6 * MIB + 5),
      );
      await w2.close();
      const w3 = (await a.writer(path, { append: true }))!;
      assert.equal(w3.size, 6 * MIB + 5);
      await w3.write(stream(data.subarray(6 * MIB + 5)));
      assert.equal(sha(await collect(await w3.readBack())), sha(data));
      await w3.commit();
      assert.equal((await a.stat(path))?.size, data.length);
      assert.equal(sha(await collect((await a.reader(path))!.body)), sha(data));
    }),
});

Deno.test({
  name: "s3 driver: a small sealed upload continues in the buffer",
  ignore,
  fn: () =>
    withDrivers(async (a, b) => {
      const data = bytes(2 * MIB, 9);
      const path = "/up3/data";
      const w1 = (await a.writer(path))!;
      await w1.write(stream(data.subarray(0, MIB)));
      assert.deepEqual(await collect(await w1.readBack()), data.subarray(0, MIB));
      await w1.close();
      const w2 = (await b.writer(path, { append: true }))!;
      await w2.write(stream(data.subarray(MIB)));
      await w2.close();
      const w3 = (await a.writer(path, { append: true }))!;
      await w3.commit();
      assert.deepEqual(await a.getContent(path), data);
    }),
});

Deno.test({
  name: "s3 driver: a failed write is rolled back; keepPartial keeps what was stored",
  ignore,
  fn: () =>
    withDrivers(async (a, b) => {
      const path = "/up4/data";
      const data = bytes(14 * MIB, 3);
      const w = (await a.writer(path))!;
      await w.write(stream(data.subarray(0, 2 * MIB)));
      const failing = (after: number) => {
        let sent = 0;
        return new ReadableStream<Uint8Array>({
          pull(controller) {
            if (sent >= after) return controller.error(new Error("client went away"));
            controller.enqueue(data.slice(2 * MIB + sent, 2 * MIB + sent + MIB));
            sent += MIB;
          },
        });
      };
      await assert.rejects(w.write(failing(7 * MIB)), /client went away/);
      assert.equal(w.size, 2 * MIB);
      const other = (await b.writer(path, { append: true }))!;
      assert.equal(other.size, 2 * MIB);
      await assert.rejects(
        w.write(failing(7 * MIB), { keepPartial: () => true }),
        /client went away/,
      );
      assert.ok(w.size >= 5 * MIB, `kept ${w.size}`);
      const resumed = (await b.writer(path, { append: true }))!;
      assert.equal(resumed.size, w.size);
      await resumed.write(stream(data.subarray(resumed.size)));
      await resumed.commit();
      assert.equal(sha((await a.getContent(path))!), sha(data));
    }),
});

Deno.test({
  name: "s3 driver: parts a dead writer stored but did not record count; a failed write's do not",
  ignore,
  fn: () =>
    withDrivers(async (a, b) => {
      const path = "/up7/data";
      const stateKey = `${a.key(path)}.s3writer`;
      const data = bytes(22 * MIB + 17, 8);
      const w1 = (await a.writer(path))!;
      // One 5 MiB part and a 2 MiB tail, recorded.
      assert.equal(await w1.write(stream(data.subarray(0, 7 * MIB))), 7 * MIB);
      await w1.close();
      const recorded = (await a.client.getBytes(stateKey))!;
      // Parts 2 and 3 (the old tail and 8 MiB more) and a 3 MiB tail; then the state object as it
      // was before: the bucket as a process killed before its state writes leaves it.
      const w2 = (await a.writer(path, { append: true }))!;
      assert.equal(await w2.write(stream(data.subarray(7 * MIB, 18 * MIB))), 18 * MIB);
      await w2.close();
      await a.client.put(stateKey, recorded);
      const resumed = (await b.writer(path, { append: true }))!;
      assert.equal(resumed.size, 15 * MIB, "parts 1-3 are in the upload");
      await resumed.close();
      // A write that fails after storing parts 4-6 (of other bytes) is rolled back: they do not
      // count, here or in another process.
      const w3 = (await b.writer(path, { append: true }))!;
      const junk = bytes(16 * MIB, 99);
      let out = 0;
      const failing = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (out >= junk.length) return controller.error(new Error("client went away"));
          controller.enqueue(junk.slice(out, out + MIB));
          out += MIB;
        },
      });
      await assert.rejects(w3.write(failing), /client went away/);
      assert.equal(w3.size, 15 * MIB);
      const after = (await a.writer(path, { append: true }))!;
      assert.equal(after.size, 15 * MIB);
      // Part 4 again and a tail: stale parts 5 and 6 are still in the upload.
      assert.equal(await after.write(stream(data.subarray(15 * MIB))), data.length);
      await after.close();
      const last = (await b.writer(path, { append: true }))!;
      assert.equal(last.size, data.length);
      // Committed (the tail becomes part 5; RGW wants stale part 6 completed too): only the data.
      await last.commit();
      assert.equal((await a.stat(path))?.size, data.length);
      assert.equal(sha((await b.getContent(path))!), sha(data));
    }),
});

Deno.test({
  name: "s3 driver: parts sent are recorded at once; a second writer is refused while one writes",
  ignore,
  fn: () =>
    withDrivers(async (a, b) => {
      const path = "/up5/data";
      const data = bytes(12 * MIB, 5);
      const w = (await a.writer(path))!;
      // The body stalls after 11 MiB (two parts sent).
      const { body, stalled, release } = stallingBody(data, 11 * MIB);
      const writing = w.write(body);
      await stalled;
      // The second part is recorded as soon as it is stored, for every process to see.
      let seen = 0;
      for (let i = 0; i < 200 && seen < 10 * MIB; i++) {
        const probe = (await b.writer(path, { append: true }))!;
        seen = probe.size;
        await probe.close();
        if (seen < 10 * MIB) await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(seen, 10 * MIB);
      // Another process's write, or commit, while the first one writes: refused, nothing stored.
      const other = (await b.writer(path, { append: true }))!;
      await assert.rejects(other.write(stream(bytes(6 * MIB, 9))), WriterBusy);
      await assert.rejects(other.commit(), WriterBusy);
      release();
      assert.equal(await writing, 12 * MIB);
      // The refused writer saw an older state: it stays refused.
      await assert.rejects(other.write(stream(bytes(1, 9))), WriterBusy);
      const resumed = (await b.writer(path, { append: true }))!;
      assert.equal(resumed.size, 12 * MIB);
      await resumed.commit();
      assert.equal(sha((await b.getContent(path))!), sha(data));
    }),
});

Deno.test({
  name: "s3 driver: a cancel from another process waits for the write under way, then removes all",
  ignore,
  fn: () =>
    withDrivers(async (a, b) => {
      const path = "/up6/data";
      const data = bytes(12 * MIB, 6);
      const w = (await a.writer(path))!;
      // The body stalls after 6 MiB (one part sent).
      const { body, stalled, release } = stallingBody(data, 6 * MIB);
      const writing = w.write(body);
      await stalled;
      let cancelled = false;
      const cancelling = (await b.writer(path, { append: true }))!.cancel()
        .then(() => cancelled = true);
      await new Promise((r) => setTimeout(r, 1_000));
      assert.equal(cancelled, false, "the cancel went ahead during the write");
      release();
      // The write ends whole (its upload was not aborted under it), then the cancel removes it.
      assert.equal(await writing, 12 * MIB);
      await cancelling;
      assert.equal(await a.writer(path, { append: true }), undefined);
      const keys: string[] = [];
      for await (const e of a.client.list("reg/root/up6/")) {
        if (e.kind === "object") keys.push(e.key);
      }
      assert.deepEqual(keys, []);
    }),
});

Deno.test({
  name: "s3 driver: move uses a multipart copy above the threshold; ranges; redirect URL",
  ignore,
  fn: async () => {
    const bucket = await tempBucket();
    try {
      const d = new S3Driver(
        s3Options(bucket.name, {
          multipartCopyThresholdSize: 6 * MIB,
          multipartCopyChunkSize: 5 * MIB,
        }),
      );
      const data = bytes(11 * MIB + 3, 11);
      const w = (await d.writer("/a/data"))!;
      await w.write(stream(data));
      await w.commit();
      assert.equal(await d.move("/a/data", "/b/data"), true);
      assert.equal(await d.stat("/a/data"), undefined);
      assert.equal(await d.move("/a/data", "/c/data"), false);
      assert.equal(sha((await d.getContent("/b/data"))!), sha(data));
      const head = await d.client.head("b/data");
      assert.match(head!.etag, /-2"$/, "two copied parts (5 MiB and 6 MiB + 3)");
      const part = (await d.reader("/b/data", { offset: 5, length: 10 }))!;
      assert.equal(part.size, data.length);
      assert.deepEqual(await collect(part.body), data.subarray(5, 15));
      const past = (await d.reader("/b/data", { offset: data.length + 10 }))!;
      assert.equal(past.size, data.length);
      assert.equal((await collect(past.body)).length, 0);
      const url = await d.redirectUrl("/b/data", { method: "GET", expiresIn: 60 });
      const response = await fetch(url!, { headers: { range: "bytes=0-3" } });
      assert.equal(response.status, 206);
      assert.deepEqual(new Uint8Array(await response.arrayBuffer()), data.subarray(0, 4));
      // Handed out again for a while, signed for that much longer than asked.
      assert.equal(await d.redirectUrl("/b/data", { method: "GET", expiresIn: 60 }), url);
      assert.ok(Number(new URL(url!).searchParams.get("X-Amz-Expires")) >= 60);
      const other = await d.redirectUrl("/b/data", { method: "HEAD", expiresIn: 60 });
      assert.notEqual(other, url);
      assert.equal((await fetch(other!, { method: "HEAD" })).status, 200);
      assert.equal(await d.delete("/b"), true);
      assert.equal(await d.delete("/b"), false);
      assert.equal(await d.list("/b"), undefined);
    } finally {
      await bucket.remove();
    }
  },
});

Deno.test({
  name: "s3 driver: an unreachable store throws StorageUnavailable after its retries",
  async fn() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const d = new S3Driver({
      endpoint: `http://127.0.0.1:${port}`,
      region: "us-east-1",
      bucket: "nowhere",
      accessKey: "a",
      secretKey: "b",
      pathStyle: true,
      rootDirectory: "",
      chunkSize: 5 * MIB,
      multipartCopyThresholdSize: 32 * MIB,
      multipartCopyChunkSize: 32 * MIB,
      retries: 2,
      backoffMs: 5,
    });
    await assert.rejects(d.getContent("/x"), StorageUnavailable);
    assert.match(await d.health(), /^unreachable/);
  },
});

Deno.test({
  name:
    "s3 driver: the root of an empty bucket (or prefix) is a folder; of a missing bucket, absent",
  ignore,
  async fn() {
    const bucket = await tempBucket();
    try {
      const d = new S3Driver(s3Options(bucket.name, { rootDirectory: "fresh/prefix" }));
      assert.equal((await d.stat("/"))?.isDir, true);
      const missing = new S3Driver(s3Options(`${bucket.name}-missing`));
      assert.equal(await missing.stat("/"), undefined);
    } finally {
      await bucket.remove();
    }
  },
});
