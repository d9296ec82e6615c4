/**
 * The storage driver conformance suite: every {@link StorageDriver} (fs, memory, s3) registers
 * these tests through {@link driverSuite} and must pass all of them.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  type FileInfo,
  InvalidPath,
  SizeMismatch,
  type StorageDriver,
  walkByList,
} from "../../src/storage/driver.ts";

/** A fresh driver for one test, and how to dispose of it. */
export interface DriverFixture {
  /** The driver under test, over empty storage (or a fresh root). */
  driver: StorageDriver;
  /** Remove what the test stored and release the driver's resources. */
  cleanup: () => Promise<void>;
}

/** Options of {@link driverSuite}. */
export interface DriverSuiteOptions {
  /** Skip every test, with this reason (an external service is missing). */
  ignore?: boolean;
  /** Bytes to send before a failure for a writer to keep a prefix (object stores: > one part). */
  partialBytes?: number;
}

const MiB = 1 << 20;

/**
 * Register the conformance tests for one driver, named `driver(<label>): ...`. `makeDriver` is
 * called once per test.
 */
export function driverSuite(
  label: string,
  makeDriver: () => Promise<DriverFixture>,
  options: DriverSuiteOptions = {},
): void {
  const test = (name: string, body: (driver: StorageDriver) => Promise<void>): void => {
    Deno.test({
      name: `driver(${label}): ${name}`,
      ignore: options.ignore ?? false,
      async fn() {
        const { driver, cleanup } = await makeDriver();
        try {
          await body(driver);
        } finally {
          driver.close();
          await cleanup();
        }
      },
    });
  };

  // ---- content ------------------------------------------------------------------------------

  test("getContent of an absent file is undefined, putContent makes it readable", async (d) => {
    assert.equal(await d.getContent("/a/b/file"), undefined);
    await d.putContent("/a/b/file", text("hello"));
    assert.equal(decode(await d.getContent("/a/b/file")), "hello");
  });

  test("putContent replaces a file's content whole", async (d) => {
    await d.putContent("/f", text("a longer first content"));
    await d.putContent("/f", text("short"));
    assert.equal(decode(await d.getContent("/f")), "short");
    assert.equal((await d.stat("/f"))?.size, 5);
  });

  test("an empty file exists and reads as zero bytes", async (d) => {
    await d.putContent("/empty", new Uint8Array());
    assert.deepEqual(await d.getContent("/empty"), new Uint8Array());
    assert.equal((await d.stat("/empty"))?.size, 0);
  });

  test("putContent keeps its own copy of the bytes", async (d) => {
    const bytes = text("abc");
    await d.putContent("/copy", bytes);
    bytes[0] = 0x7a;
    assert.equal(decode(await d.getContent("/copy")), "abc");
  });

  test("concurrent putContent of one path leaves one whole content", async (d) => {
    const contents = Array.from({ length: 8 }, (_, i) => text(String(i).repeat(1000 + i)));
    await Promise.all(contents.map((c) => d.putContent("/race", c)));
    const got = decode(await d.getContent("/race"));
    assert.ok(contents.some((c) => decode(c) === got), "content is one of those written");
  });

  test("getContent of a folder is undefined", async (d) => {
    await d.putContent("/dir/file", text("x"));
    assert.equal(await d.getContent("/dir"), undefined);
  });

  // ---- stat and list ------------------------------------------------------------------------

  test("stat tells files from folders, with size and modification time", async (d) => {
    const before = Date.now() - 2_000;
    await d.putContent("/s/dir/file", text("12345"));
    const file = await d.stat("/s/dir/file");
    assert.equal(file?.isDir, false);
    assert.equal(file?.size, 5);
    assert.equal(file?.path, "/s/dir/file");
    assert.ok(file!.modifiedAt.getTime() >= before, "modifiedAt is recent");
    assert.equal((await d.stat("/s/dir"))?.isDir, true);
    assert.equal((await d.stat("/s"))?.isDir, true);
    assert.equal(await d.stat("/s/absent"), undefined);
    assert.equal(await d.stat("/s/dir/file/below"), undefined);
  });

  test("list gives the direct children, files and folders", async (d) => {
    await d.putContent("/l/a", text("1"));
    await d.putContent("/l/b/c", text("2"));
    await d.putContent("/l/b/d/e", text("3"));
    assert.deepEqual((await d.list("/l"))?.sort(), ["a", "b"]);
    assert.deepEqual((await d.list("/l/b"))?.sort(), ["c", "d"]);
    assert.equal(await d.list("/l/absent"), undefined);
    assert.equal(await d.list("/l/a"), undefined);
  });

  test("list sees files added and removed", async (d) => {
    await d.putContent("/grow/one", text("1"));
    assert.deepEqual(await d.list("/grow"), ["one"]);
    await d.putContent("/grow/two", text("2"));
    assert.deepEqual((await d.list("/grow"))?.sort(), ["one", "two"]);
    await d.delete("/grow/one");
    assert.deepEqual(await d.list("/grow"), ["two"]);
  });

  test("walk yields every file under a folder", async (d) => {
    const paths = ["/w/a", "/w/b/c", "/w/b/d/e", "/w/b/d/f"];
    for (const p of paths) await d.putContent(p, text(p));
    await d.putContent("/other", text("x"));
    const walked: FileInfo[] = [];
    for await (const info of d.walk ? d.walk("/w") : walkByList(d, "/w")) walked.push(info);
    assert.deepEqual(walked.map((i) => i.path).sort(), paths);
    assert.ok(walked.every((i) => !i.isDir && i.size === i.path.length));
  });

  // ---- readers ------------------------------------------------------------------------------

  test("reader streams a file whole, from an offset, or a range, with the whole size", async (d) => {
    const bytes = pattern(3 * MiB + 17);
    await d.putContent("/r/big", bytes);
    const whole = await d.reader("/r/big");
    assert.equal(whole?.size, bytes.byteLength);
    assert.ok(equal(await readAll(whole!.body), bytes));
    const tail = await d.reader("/r/big", { offset: MiB + 5 });
    assert.equal(tail?.size, bytes.byteLength);
    assert.ok(equal(await readAll(tail!.body), bytes.subarray(MiB + 5)));
    const range = await d.reader("/r/big", { offset: 10, length: 2 * MiB });
    assert.ok(equal(await readAll(range!.body), bytes.subarray(10, 10 + 2 * MiB)));
  });

  test("reader past the end gives an empty body; an absent file gives undefined", async (d) => {
    await d.putContent("/r/small", text("abc"));
    const past = await d.reader("/r/small", { offset: 10 });
    assert.equal(past?.size, 3);
    assert.equal((await readAll(past!.body)).byteLength, 0);
    assert.equal(await d.reader("/r/absent"), undefined);
    assert.equal(await d.reader("/r"), undefined);
  });

  test("a reader cancelled early releases the file", async (d) => {
    await d.putContent("/r/cancel", pattern(2 * MiB));
    const opened = await d.reader("/r/cancel");
    const reader = opened!.body.getReader();
    await reader.read();
    await reader.cancel();
    assert.ok(await d.delete("/r/cancel"));
  });

  // ---- move and delete ----------------------------------------------------------------------

  test("move puts a file at a new path (creating folders) and removes the old", async (d) => {
    await d.putContent("/m/from", text("moved"));
    assert.equal(await d.move("/m/from", "/m/deep/to/file"), true);
    assert.equal(decode(await d.getContent("/m/deep/to/file")), "moved");
    assert.equal(await d.getContent("/m/from"), undefined);
    assert.equal(await d.move("/m/from", "/m/again"), false);
  });

  test("move replaces what is at the target", async (d) => {
    await d.putContent("/m/a", text("new"));
    await d.putContent("/m/b", text("old content"));
    assert.equal(await d.move("/m/a", "/m/b"), true);
    assert.equal(decode(await d.getContent("/m/b")), "new");
  });

  test("delete removes a file, or a folder with everything under it", async (d) => {
    await d.putContent("/d/file", text("1"));
    await d.putContent("/d/dir/a", text("2"));
    await d.putContent("/d/dir/sub/b", text("3"));
    await d.putContent("/d/keep", text("4"));
    assert.equal(await d.delete("/d/file"), true);
    assert.equal(await d.delete("/d/file"), false);
    assert.equal(await d.delete("/d/dir"), true);
    assert.equal(await d.getContent("/d/dir/sub/b"), undefined);
    assert.equal(await d.stat("/d/dir/a"), undefined);
    assert.deepEqual(await d.list("/d"), ["keep"]);
    assert.equal(await d.delete("/d/absent"), false);
  });

  test("delete of a path sharing a prefix leaves its neighbour", async (d) => {
    await d.putContent("/p/ab/file", text("1"));
    await d.putContent("/p/abc/file", text("2"));
    await d.delete("/p/ab");
    assert.equal(decode(await d.getContent("/p/abc/file")), "2");
  });

  // ---- writers ------------------------------------------------------------------------------

  test("a writer appends streams, reads them back, and commits them to its path", async (d) => {
    const w = await d.writer("/u/session/data");
    assert.ok(w);
    assert.equal(w.size, 0);
    const first = pattern(MiB + 3, 1);
    const second = pattern(2 * MiB + 5, 2);
    assert.equal(await w.write(stream(first, 65_536)), first.byteLength);
    assert.equal(await w.write(stream(second, 100_000)), first.byteLength + second.byteLength);
    assert.equal(w.size, first.byteLength + second.byteLength);
    assert.ok(equal(await readAll(await w.readBack()), concat(first, second)));
    assert.ok(equal(await readAll(await w.readBack(first.byteLength)), second));
    await w.commit();
    const stored = await d.reader("/u/session/data");
    assert.equal(stored?.size, first.byteLength + second.byteLength);
    assert.ok(equal(await readAll(stored!.body), concat(first, second)));
  });

  test("a closed writer is resumed, from another driver object too, at its size", async (d) => {
    const w = await d.writer("/u/resume/data");
    await w!.write(stream(text("first part;"), 4));
    await w!.close();
    assert.equal(await d.writer("/u/absent/data", { append: true }), undefined);
    const again = await d.writer("/u/resume/data", { append: true });
    assert.equal(again?.size, 11);
    await again!.write(stream(text("second"), 3));
    assert.equal(decode(await readAll(await again!.readBack())), "first part;second");
    await again!.commit();
    assert.equal(decode(await d.getContent("/u/resume/data")), "first part;second");
  });

  test("the readBack stream stays readable after the writer is closed", async (d) => {
    const w = await d.writer("/u/rb/data");
    await w!.write(stream(text("kept bytes"), 3));
    const back = await w!.readBack();
    await w!.close();
    assert.equal(decode(await readAll(back)), "kept bytes");
  });

  test("observe sees every byte written, in order", async (d) => {
    const bytes = pattern(2 * MiB + 999, 3);
    const hash = createHash("sha256");
    let seen = 0;
    const w = await d.writer("/u/hash/data");
    await w!.write(stream(bytes, 70_000), {
      observe: (b) => {
        hash.update(b);
        seen += b.byteLength;
      },
    });
    assert.equal(seen, bytes.byteLength);
    assert.equal(hash.digest("hex"), createHash("sha256").update(bytes).digest("hex"));
    await w!.cancel();
  });

  test("a write of another length than expected fails and stores nothing of it", async (d) => {
    const w = await d.writer("/u/len/data");
    await w!.write(stream(text("base"), 4));
    await assert.rejects(
      w!.write(stream(text("too short"), 4), { expectedLength: 20 }),
      (error) => error instanceof SizeMismatch && error.expected === 20 && error.received === 9,
    );
    assert.equal(w!.size, 4);
    await assert.rejects(
      w!.write(stream(pattern(MiB + 10), 65_536), { expectedLength: 100 }),
      SizeMismatch,
    );
    assert.equal(w!.size, 4);
    assert.equal(decode(await readAll(await w!.readBack())), "base");
    assert.equal(await w!.write(stream(text("exact"), 2), { expectedLength: 5 }), 9);
    await w!.close();
    assert.equal((await d.writer("/u/len/data", { append: true }))?.size, 9);
  });

  test("a failed write is cut back to where it began", async (d) => {
    const w = await d.writer("/u/fail/data");
    await w!.write(stream(text("kept"), 4));
    const partial = options.partialBytes ?? 3 * MiB;
    await assert.rejects(w!.write(failing(pattern(partial), "boom")), /boom/);
    assert.equal(w!.size, 4);
    await w!.close();
    const again = await d.writer("/u/fail/data", { append: true });
    assert.equal(again?.size, 4);
    assert.equal(decode(await readAll(await again!.readBack())), "kept");
    await again!.cancel();
  });

  test("a failed write with keepPartial keeps the prefix that was stored", async (d) => {
    const w = await d.writer("/u/keep/data");
    await w!.write(stream(text("kept"), 4));
    const bytes = pattern(options.partialBytes ?? 3 * MiB);
    await assert.rejects(w!.write(failing(bytes, "cut"), { keepPartial: () => true }), /cut/);
    assert.ok(w!.size > 4, `a prefix was kept (${w!.size} bytes)`);
    assert.ok(w!.size <= 4 + bytes.byteLength);
    await w!.close();
    const again = await d.writer("/u/keep/data", { append: true });
    assert.equal(again?.size, w!.size);
    const back = await readAll(await again!.readBack());
    assert.ok(equal(back, concat(text("kept"), bytes.subarray(0, back.byteLength - 4))));
    await again!.cancel();
  });

  test("an aborted write fails with the reason and is cut back", async (d) => {
    const w = await d.writer("/u/abort/data");
    const controller = new AbortController();
    const never = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(text("some bytes"));
      },
    });
    const writing = w!.write(never, { signal: controller.signal });
    controller.abort(new Error("stopped"));
    await assert.rejects(writing, /stopped/);
    assert.equal(w!.size, 0);
    await w!.cancel();
  });

  test("cancel discards a writer; a new writer of a path starts empty", async (d) => {
    const w = await d.writer("/u/cancel/data");
    await w!.write(stream(text("gone"), 2));
    await w!.cancel();
    assert.equal(await d.writer("/u/cancel/data", { append: true }), undefined);
    const first = await d.writer("/u/fresh/data");
    await first!.write(stream(text("old"), 2));
    await first!.close();
    const fresh = await d.writer("/u/fresh/data");
    assert.equal(fresh?.size, 0);
    await fresh!.write(stream(text("new"), 2));
    await fresh!.commit();
    assert.equal(decode(await d.getContent("/u/fresh/data")), "new");
  });

  test("an empty writer commits an empty file", async (d) => {
    const w = await d.writer("/u/empty/data");
    await w!.commit();
    assert.deepEqual(await d.getContent("/u/empty/data"), new Uint8Array());
  });

  test("a committed upload moves into place", async (d) => {
    const w = await d.writer("/u/commit/data");
    const bytes = pattern(MiB + 1);
    await w!.write(stream(bytes, 65_536));
    await w!.commit();
    assert.equal(await d.move("/u/commit/data", "/blobs/ab/abcd/data"), true);
    assert.ok(equal((await d.getContent("/blobs/ab/abcd/data"))!, bytes));
  });

  // ---- paths --------------------------------------------------------------------------------

  test("paths outside the allowed shape are refused", async (d) => {
    for (const bad of ["relative", "/a/../b", "/a/./b", "/a//b", "/a/", "", "/a b", "/a\0b"]) {
      await assert.rejects(d.getContent(bad), InvalidPath, bad);
      await assert.rejects(d.putContent(bad, text("x")), InvalidPath, bad);
      await assert.rejects(d.delete(bad), InvalidPath, bad);
    }
  });

  test("redirectUrl, when offered, gives a URL or undefined", async (d) => {
    await d.putContent("/redirect/file", text("x"));
    if (!d.redirectUrl) return;
    const url = await d.redirectUrl("/redirect/file", { method: "GET", expiresIn: 60 });
    if (url !== undefined) assert.ok(new URL(url).protocol.startsWith("http"));
  });
}

const encoder = new TextEncoder();

function text(s: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(s);
}

function decode(bytes: Uint8Array | undefined): string | undefined {
  return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
}

/** Deterministic bytes. */
function pattern(size: number, seed = 1): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed * 7 + (i >> 11)) & 0xff;
  return bytes;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((v, i) => v === b[i]);
}

/** `bytes` as a stream of pieces of `piece` bytes. */
function stream(bytes: Uint8Array, piece: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.byteLength) return controller.close();
      controller.enqueue(bytes.slice(at, at + piece));
      at += piece;
    },
  });
}

/** `bytes` in 64 KiB pieces, then an error with `message`. */
function failing(bytes: Uint8Array, message: string): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.byteLength) return controller.error(new Error(message));
      controller.enqueue(bytes.slice(at, at + 65_536));
      at += 65_536;
    },
  });
}

async function readAll(body: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of body) parts.push(part);
  return concat(...parts);
}
