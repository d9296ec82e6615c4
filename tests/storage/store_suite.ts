/**
 * The store conformance suite: every {@link Store} implementation registers these tests through
 * {@link storeSuite} and must pass all of them.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Digest, digestBytes, Digester } from "../../src/oci/digest.ts";
import { SizeMismatch, type Store } from "../../src/storage/store.ts";

/** A fresh, empty store for one test, and how to dispose of it. */
export interface StoreFixture {
  /** The store under test. */
  store: Store;
  /** Release everything the store holds (temporary directories, ...). */
  cleanup: () => Promise<void>;
}

/** When every upload of the suite starts (whole milliseconds survive any serialisation). */
const STARTED_AT = new Date("2024-05-06T07:08:09.123Z");

/** A later start time, to tell sessions apart. */
const STARTED_LATER = new Date("2024-05-06T08:00:00.456Z");

/** Larger than a typical 64 KiB read buffer, and not a multiple of it. */
const LARGE = 200_003;

/**
 * Register the conformance tests for one store implementation, named `store(<label>): ...`.
 * `makeStore` is called once per test and must give an empty store.
 */
export function storeSuite(label: string, makeStore: () => Promise<StoreFixture>): void {
  const test = (name: string, body: (store: Store) => Promise<void>): void => {
    Deno.test(`store(${label}): ${name}`, async () => {
      const { store, cleanup } = await makeStore();
      try {
        await body(store);
      } finally {
        store.close();
        await cleanup();
      }
    });
  };

  // ---- blobs ------------------------------------------------------------------------------

  test("a fresh store has no blobs and no repositories", async (store) => {
    assert.deepEqual(await collect(store.listBlobs()), []);
    assert.deepEqual(await store.listRepositories(), []);
  });

  test("statBlob, openBlob and readBlob return undefined for an absent blob", async (store) => {
    const digest = digestBytes(text("absent"));
    assert.equal(await store.statBlob(digest), undefined);
    assert.equal(await store.openBlob(digest), undefined);
    assert.equal(await store.openBlob(digest, { start: 0, end: 0 }), undefined);
    assert.equal(await store.readBlob(digest), undefined);
  });

  test("putBlob makes a blob statable, readable and openable", async (store) => {
    const bytes = text("a small manifest");
    const digest = digestBytes(bytes);
    await store.putBlob(digest, bytes);
    assert.equal(await store.statBlob(digest), bytes.byteLength);
    assertBytes(await store.readBlob(digest), bytes);
    const content = await store.openBlob(digest);
    assert.ok(content);
    assert.equal(content.size, bytes.byteLength);
    assertBytes(await readAll(content.body), bytes);
    assert.deepEqual(values(await collect(store.listBlobs())), [digest.value]);
  });

  test("an empty blob is stored and read back empty", async (store) => {
    const bytes = new Uint8Array(0);
    const digest = digestBytes(bytes);
    await store.putBlob(digest, bytes);
    assert.equal(await store.statBlob(digest), 0);
    assertBytes(await store.readBlob(digest), bytes);
    const content = await store.openBlob(digest);
    assert.ok(content);
    assert.equal(content.size, 0);
    assertBytes(await readAll(content.body), bytes);
  });

  test("putBlob keeps its own copy of the bytes", async (store) => {
    const bytes = text("mutable");
    const digest = digestBytes(bytes);
    await store.putBlob(digest, bytes);
    bytes.fill(0);
    const read = await store.readBlob(digest);
    assertBytes(read, text("mutable"));
    read?.fill(0);
    assertBytes(await store.readBlob(digest), text("mutable"));
  });

  test("putBlob is idempotent", async (store) => {
    const bytes = text("twice");
    const digest = digestBytes(bytes);
    await store.putBlob(digest, bytes);
    await store.putBlob(digest, bytes);
    assertBytes(await store.readBlob(digest), bytes);
    assert.deepEqual(values(await collect(store.listBlobs())), [digest.value]);
  });

  test("openBlob with a range returns only those bytes, end inclusive", async (store) => {
    const bytes = pseudoRandom(LARGE, 1);
    const digest = digestBytes(bytes);
    await store.putBlob(digest, bytes);
    const ranges = [
      { start: 0, end: 0 },
      { start: 0, end: LARGE - 1 },
      { start: LARGE - 1, end: LARGE - 1 },
      { start: 1000, end: 1999 },
      { start: 65_530, end: 131_080 },
      { start: 7, end: LARGE - 2 },
    ];
    for (const range of ranges) {
      const content = await store.openBlob(digest, range);
      assert.ok(content, `range ${range.start}-${range.end}`);
      assert.equal(content.size, LARGE, `size with range ${range.start}-${range.end}`);
      const got = await readAll(content.body);
      assert.equal(got.byteLength, range.end - range.start + 1, `${range.start}-${range.end}`);
      assertBytes(got, bytes.subarray(range.start, range.end + 1));
    }
    const whole = await store.openBlob(digest);
    assert.ok(whole);
    assertBytes(await readAll(whole.body), bytes);
  });

  test("deleteBlob removes a blob and ignores an absent one", async (store) => {
    const kept = text("kept");
    const gone = text("gone");
    await store.putBlob(digestBytes(kept), kept);
    await store.putBlob(digestBytes(gone), gone);
    await store.deleteBlob(digestBytes(gone));
    assert.equal(await store.statBlob(digestBytes(gone)), undefined);
    assert.equal(await store.readBlob(digestBytes(gone)), undefined);
    assert.equal(await store.openBlob(digestBytes(gone)), undefined);
    assertBytes(await store.readBlob(digestBytes(kept)), kept);
    assert.deepEqual(values(await collect(store.listBlobs())), [digestBytes(kept).value]);
    await store.deleteBlob(digestBytes(gone));
    await store.deleteBlob(digestBytes(text("never stored")));
  });

  test("listBlobs lists every blob exactly once", async (store) => {
    const contents = ["one", "two", "three", "four"].map(text);
    for (const bytes of contents) await store.putBlob(digestBytes(bytes), bytes);
    await store.putBlob(digestBytes(contents[0] as Uint8Array), contents[0] as Uint8Array);
    const expected = contents.map((bytes) => digestBytes(bytes).value).sort();
    assert.deepEqual(values(await collect(store.listBlobs())), expected);
  });

  test("sha512 digests work for blobs, links and tags", async (store) => {
    const bytes = pseudoRandom(70_001, 2);
    const sha512 = digestBytes(bytes, "sha512");
    const sha256 = digestBytes(bytes, "sha256");
    await store.putBlob(sha512, bytes);
    assert.equal(await store.statBlob(sha512), bytes.byteLength);
    assert.equal(await store.statBlob(sha256), undefined);
    assertBytes(await store.readBlob(sha512), bytes);
    const content = await store.openBlob(sha512, { start: 100, end: 65_700 });
    assert.ok(content);
    assert.equal(content.size, bytes.byteLength);
    assertBytes(await readAll(content.body), bytes.subarray(100, 65_701));
    const listed = await collect(store.listBlobs());
    assert.deepEqual(listed.map(plain), [plain(sha512)]);

    await store.putBlob(sha256, bytes);
    assert.deepEqual(values(await collect(store.listBlobs())), [sha256.value, sha512.value]);
    await store.deleteBlob(sha256);
    assertBytes(await store.readBlob(sha512), bytes);

    await store.putLink("repo", "manifest", sha512);
    assert.equal(await store.hasLink("repo", "manifest", sha512), true);
    assert.equal(await store.hasLink("repo", "manifest", sha256), false);
    assert.deepEqual((await collect(store.listLinks("repo", "manifest"))).map(plain), [
      plain(sha512),
    ]);
    await store.putTag("repo", "latest", sha512);
    const tagged = await store.getTag("repo", "latest");
    assert.ok(tagged);
    assert.deepEqual(plain(tagged), plain(sha512));
  });

  // ---- links ------------------------------------------------------------------------------

  test("hasLink is false for an unknown repository or digest", async (store) => {
    const digest = digestBytes(text("layer"));
    assert.equal(await store.hasLink("nobody", "layer", digest), false);
    assert.equal(await store.hasLink("nobody", "manifest", digest), false);
    await store.putLink("repo", "layer", digestBytes(text("other layer")));
    assert.equal(await store.hasLink("repo", "layer", digest), false);
    assert.deepEqual(await collect(store.listLinks("nobody", "layer")), []);
  });

  test("putLink links into one repository and one kind only", async (store) => {
    const layer = digestBytes(text("layer"));
    const manifest = digestBytes(text("manifest"));
    await store.putLink("repo", "layer", layer);
    await store.putLink("repo", "manifest", manifest);
    assert.equal(await store.hasLink("repo", "layer", layer), true);
    assert.equal(await store.hasLink("repo", "manifest", manifest), true);
    assert.equal(await store.hasLink("repo", "manifest", layer), false);
    assert.equal(await store.hasLink("repo", "layer", manifest), false);
    assert.equal(await store.hasLink("other", "layer", layer), false);
    assert.deepEqual(values(await collect(store.listLinks("repo", "layer"))), [layer.value]);
    assert.deepEqual(values(await collect(store.listLinks("repo", "manifest"))), [manifest.value]);
    assert.deepEqual(await collect(store.listLinks("other", "layer")), []);
  });

  test("putLink is idempotent", async (store) => {
    const digest = digestBytes(text("layer"));
    await store.putLink("repo", "layer", digest);
    await store.putLink("repo", "layer", digest);
    assert.equal(await store.hasLink("repo", "layer", digest), true);
    assert.deepEqual(values(await collect(store.listLinks("repo", "layer"))), [digest.value]);
  });

  test("listLinks lists every linked digest", async (store) => {
    const digests = ["a", "b", "c", "d", "e"].map((s) => digestBytes(text(s)));
    for (const digest of digests) await store.putLink("org/repo", "manifest", digest);
    const expected = digests.map((digest) => digest.value).sort();
    assert.deepEqual(values(await collect(store.listLinks("org/repo", "manifest"))), expected);
    assert.deepEqual(await collect(store.listLinks("org/repo", "layer")), []);
  });

  test("deleteLink returns true once, then false", async (store) => {
    const digest = digestBytes(text("layer"));
    const kept = digestBytes(text("kept"));
    await store.putLink("repo", "layer", digest);
    await store.putLink("repo", "layer", kept);
    assert.equal(await store.deleteLink("repo", "manifest", digest), false);
    assert.equal(await store.deleteLink("repo", "layer", digest), true);
    assert.equal(await store.hasLink("repo", "layer", digest), false);
    assert.equal(await store.deleteLink("repo", "layer", digest), false);
    assert.equal(await store.deleteLink("nobody", "layer", digest), false);
    assert.equal(await store.hasLink("repo", "layer", kept), true);
    assert.deepEqual(values(await collect(store.listLinks("repo", "layer"))), [kept.value]);
  });

  // ---- tags -------------------------------------------------------------------------------

  test("getTag returns undefined for an absent tag or repository", async (store) => {
    assert.equal(await store.getTag("nobody", "latest"), undefined);
    await store.putTag("repo", "v1", digestBytes(text("v1")));
    assert.equal(await store.getTag("repo", "latest"), undefined);
  });

  test("putTag points a tag at a digest", async (store) => {
    const digest = digestBytes(text("manifest"));
    await store.putTag("repo", "latest", digest);
    assert.equal((await store.getTag("repo", "latest"))?.value, digest.value);
    assert.equal(await store.getTag("other", "latest"), undefined);
  });

  test("putTag overwrites an existing tag", async (store) => {
    const first = digestBytes(text("first"));
    const second = digestBytes(text("second"));
    await store.putTag("repo", "latest", first);
    await store.putTag("repo", "latest", second);
    assert.equal((await store.getTag("repo", "latest"))?.value, second.value);
    assert.deepEqual(await store.listTags("repo"), ["latest"]);
  });

  test("tagModifiedAt tells when a tag was last put, undefined once deleted", async (store) => {
    assert.equal(await store.tagModifiedAt("repo", "latest"), undefined);
    const before = Date.now() - 2000;
    await store.putTag("repo", "latest", digestBytes(text("manifest")));
    const at = await store.tagModifiedAt("repo", "latest");
    assert.ok(at instanceof Date);
    assert.ok(at.getTime() >= before && at.getTime() <= Date.now() + 2000);
    assert.equal(await store.tagModifiedAt("repo", "other"), undefined);
    await store.deleteTag("repo", "latest");
    assert.equal(await store.tagModifiedAt("repo", "latest"), undefined);
  });

  test("putTag makes the repository exist", async (store) => {
    await store.putTag("org/tagged", "latest", digestBytes(text("manifest")));
    assert.equal(await store.hasRepository("org/tagged"), true);
    assert.deepEqual(await store.listRepositories(), ["org/tagged"]);
  });

  test("deleteTag returns true once, then false", async (store) => {
    const digest = digestBytes(text("manifest"));
    await store.putTag("repo", "latest", digest);
    await store.putTag("repo", "v1", digest);
    assert.equal(await store.deleteTag("repo", "latest"), true);
    assert.equal(await store.getTag("repo", "latest"), undefined);
    assert.equal(await store.deleteTag("repo", "latest"), false);
    assert.equal(await store.deleteTag("repo", "never"), false);
    assert.equal(await store.deleteTag("nobody", "latest"), false);
    assert.equal((await store.getTag("repo", "v1"))?.value, digest.value);
    assert.deepEqual(await store.listTags("repo"), ["v1"]);
  });

  test("listTags returns undefined for an unknown repository", async (store) => {
    assert.equal(await store.listTags("nobody"), undefined);
    await store.putTag("repo", "latest", digestBytes(text("manifest")));
    assert.equal(await store.listTags("nobody"), undefined);
  });

  test("listTags lists every tag of the repository", async (store) => {
    const digest = digestBytes(text("manifest"));
    const tags = ["latest", "v1.0", "v1.0.1-rc_2", "A"];
    for (const tag of tags) await store.putTag("repo", tag, digest);
    await store.putTag("other", "elsewhere", digest);
    assert.deepEqual((await store.listTags("repo"))?.sort(), [...tags].sort());
    assert.deepEqual(await store.listTags("other"), ["elsewhere"]);
  });

  test("listTags is empty, not undefined, for a repository without tags", async (store) => {
    await store.putLink("linked", "layer", digestBytes(text("layer")));
    assert.deepEqual(await store.listTags("linked"), []);
  });

  // ---- repositories -----------------------------------------------------------------------

  test("hasRepository is true once a link, tag or upload exists", async (store) => {
    assert.equal(await store.hasRepository("linked"), false);
    assert.equal(await store.hasRepository("tagged"), false);
    assert.equal(await store.hasRepository("uploading"), false);
    await store.putLink("linked", "layer", digestBytes(text("layer")));
    await store.putTag("tagged", "latest", digestBytes(text("manifest")));
    await store.createUpload("uploading", "upload-1", STARTED_AT);
    assert.equal(await store.hasRepository("linked"), true);
    assert.equal(await store.hasRepository("tagged"), true);
    assert.equal(await store.hasRepository("uploading"), true);
    assert.equal(await store.hasRepository("nobody"), false);
  });

  test("putBlob alone creates no repository", async (store) => {
    const bytes = text("global");
    await store.putBlob(digestBytes(bytes), bytes);
    assert.deepEqual(await store.listRepositories(), []);
  });

  test("the parents of a nested repository are not repositories", async (store) => {
    await store.putLink("a/b/c", "layer", digestBytes(text("layer")));
    assert.equal(await store.hasRepository("a/b/c"), true);
    assert.equal(await store.hasRepository("a/b"), false);
    assert.equal(await store.hasRepository("a"), false);
    assert.equal(await store.listTags("a/b"), undefined);
    assert.deepEqual(await store.listRepositories(), ["a/b/c"]);
  });

  test("listRepositories lists nested names, sorted", async (store) => {
    const digest = digestBytes(text("manifest"));
    await store.putLink("z", "layer", digest);
    await store.putTag("a/b/c", "latest", digest);
    await store.createUpload("library/alpine", "upload-1", STARTED_AT);
    await store.putLink("a", "manifest", digest);
    await store.putTag("a/b", "latest", digest);
    await store.putTag("a/b", "v2", digest);
    assert.deepEqual(await store.listRepositories(), [
      "a",
      "a/b",
      "a/b/c",
      "library/alpine",
      "z",
    ]);
  });

  test("listRepositories sorts whole names, not path segments", async (store) => {
    const digest = digestBytes(text("manifest"));
    for (const name of ["a/b", "a.b", "a", "a-b"]) await store.putTag(name, "latest", digest);
    assert.deepEqual(await store.listRepositories(), ["a", "a-b", "a.b", "a/b"]);
  });

  // ---- uploads ----------------------------------------------------------------------------

  test("statUpload and readUpload return undefined for an unknown session", async (store) => {
    assert.equal(await store.statUpload("repo", "missing"), undefined);
    assert.equal(await store.readUpload("repo", "missing"), undefined);
    await store.createUpload("repo", "upload-1", STARTED_AT);
    assert.equal(await store.statUpload("repo", "missing"), undefined);
    assert.equal(await store.statUpload("other", "upload-1"), undefined);
    assert.equal(await store.readUpload("other", "upload-1"), undefined);
  });

  test("createUpload opens an empty session", async (store) => {
    await store.createUpload("org/repo", "upload-1", STARTED_AT);
    const info = await store.statUpload("org/repo", "upload-1");
    assert.ok(info);
    assert.equal(info.size, 0);
    assert.equal(info.startedAt.getTime(), STARTED_AT.getTime());
    const body = await store.readUpload("org/repo", "upload-1");
    assert.ok(body);
    assertBytes(await readAll(body), new Uint8Array(0));
  });

  test("appendUpload appends in order and returns the new size", async (store) => {
    await store.createUpload("repo", "upload-1", STARTED_AT);
    assert.equal(await store.appendUpload("repo", "upload-1", 0, streamOf(text("hello"))), 5);
    assert.equal((await store.statUpload("repo", "upload-1"))?.size, 5);
    const more = streamOf(text(", "), new Uint8Array(0), text("world"));
    assert.equal(await store.appendUpload("repo", "upload-1", 5, more), 12);
    assert.equal(await store.appendUpload("repo", "upload-1", 12, streamOf()), 12);
    const info = await store.statUpload("repo", "upload-1");
    assert.equal(info?.size, 12);
    assert.equal(info?.startedAt.getTime(), STARTED_AT.getTime());
    const body = await store.readUpload("repo", "upload-1");
    assert.ok(body);
    assertBytes(await readAll(body), text("hello, world"));
  });

  test("appendUpload with the expected length succeeds", async (store) => {
    await store.createUpload("repo", "upload-1", STARTED_AT);
    const size = await store.appendUpload("repo", "upload-1", 0, streamOf(text("ab"), text("c")), {
      expectedLength: 3,
    });
    assert.equal(size, 3);
  });

  test("appendUpload at a wrong offset fails", async (store) => {
    await store.createUpload("repo", "upload-1", STARTED_AT);
    await store.appendUpload("repo", "upload-1", 0, streamOf(text("abc")));
    for (const offset of [0, 2, 4, 100]) {
      await assert.rejects(
        store.appendUpload("repo", "upload-1", offset, streamOf(text("xyz"))),
        (error) => error instanceof Error && !(error instanceof SizeMismatch),
        `offset ${offset}`,
      );
    }
    assert.equal((await store.statUpload("repo", "upload-1"))?.size, 3);
    const body = await store.readUpload("repo", "upload-1");
    assert.ok(body);
    assertBytes(await readAll(body), text("abc"));
  });

  test("appendUpload to an unknown session fails and creates nothing", async (store) => {
    await assert.rejects(store.appendUpload("repo", "missing", 0, streamOf(text("abc"))));
    assert.equal(await store.statUpload("repo", "missing"), undefined);
    assert.deepEqual(await store.listUploads("repo"), []);
  });

  test("appendUpload longer than expected throws SizeMismatch and rolls back", async (store) => {
    await store.createUpload("repo", "upload-1", STARTED_AT);
    await store.appendUpload("repo", "upload-1", 0, streamOf(text("keep")));
    await assert.rejects(
      store.appendUpload("repo", "upload-1", 4, streamOf(text("ab"), text("cdef")), {
        expectedLength: 3,
      }),
      (error) => error instanceof SizeMismatch && error.expected === 3 && error.received > 3,
    );
    await assertUpload(store, "repo", "upload-1", text("keep"));
    assert.equal(await store.appendUpload("repo", "upload-1", 4, streamOf(text("!"))), 5);
    await assertUpload(store, "repo", "upload-1", text("keep!"));
  });

  test("appendUpload shorter than expected throws SizeMismatch and rolls back", async (store) => {
    await store.createUpload("repo", "upload-1", STARTED_AT);
    await store.appendUpload("repo", "upload-1", 0, streamOf(text("keep")));
    await assert.rejects(
      store.appendUpload("repo", "upload-1", 4, streamOf(text("ab"), text("c")), {
        expectedLength: 10,
      }),
      (error) => error instanceof SizeMismatch && error.expected === 10 && error.received === 3,
    );
    await assertUpload(store, "repo", "upload-1", text("keep"));
    assert.equal(await store.appendUpload("repo", "upload-1", 4, streamOf(text("!"))), 5);
    await assertUpload(store, "repo", "upload-1", text("keep!"));
  });

  test("appendUpload from a failing stream rolls back to the offset", async (store) => {
    await store.createUpload("repo", "upload-1", STARTED_AT);
    await store.appendUpload("repo", "upload-1", 0, streamOf(text("hello ")));
    const failure = new Error("connection reset");
    let pulls = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls += 1;
        if (pulls === 1) controller.enqueue(pseudoRandom(LARGE, 3));
        else controller.error(failure);
      },
    }, { highWaterMark: 0 });
    await assert.rejects(store.appendUpload("repo", "upload-1", 6, body), (error) => {
      return error === failure;
    });
    await assertUpload(store, "repo", "upload-1", text("hello "));
    assert.equal(await store.appendUpload("repo", "upload-1", 6, streamOf(text("world"))), 11);
    await assertUpload(store, "repo", "upload-1", text("hello world"));
  });

  test("appendUpload with a throwing observer rolls back to the offset", async (store) => {
    await store.createUpload("repo", "upload-1", STARTED_AT);
    await store.appendUpload("repo", "upload-1", 0, streamOf(text("hello ")));
    const failure = new Error("observer failed");
    let seen = 0;
    const observe = (bytes: Uint8Array) => {
      seen += bytes.byteLength;
      if (seen > 3) throw failure;
    };
    const body = streamOf(text("wo"), text("rld"), text("!!"));
    await assert.rejects(
      store.appendUpload("repo", "upload-1", 6, body, { observe }),
      (error) => error === failure,
    );
    await assertUpload(store, "repo", "upload-1", text("hello "));
  });

  test("appendUpload honours an aborted signal", async (store) => {
    await store.createUpload("repo", "upload-1", STARTED_AT);
    await store.appendUpload("repo", "upload-1", 0, streamOf(text("keep")));
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(
      store.appendUpload("repo", "upload-1", 4, streamOf(text("no")), { signal: aborted.signal }),
    );
    await assertUpload(store, "repo", "upload-1", text("keep"));

    const midway = new AbortController();
    let pulls = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls += 1;
        if (pulls === 1) {
          controller.enqueue(text("partial"));
          return;
        }
        midway.abort();
        try {
          controller.enqueue(text("rest"));
          controller.close();
        } catch {
          // The store cancelled the body when the signal fired.
        }
      },
    }, { highWaterMark: 0 });
    await assert.rejects(
      store.appendUpload("repo", "upload-1", 4, body, { signal: midway.signal }),
    );
    await assertUpload(store, "repo", "upload-1", text("keep"));
    assert.equal(await store.appendUpload("repo", "upload-1", 4, streamOf(text("!"))), 5);
  });

  test("the observer sees exactly the bytes written, in order", async (store) => {
    const first = pseudoRandom(LARGE, 4);
    const second = text("tail");
    await store.createUpload("repo", "upload-1", STARTED_AT);

    const observed: Uint8Array[] = [];
    const digester = new Digester();
    const observe = (bytes: Uint8Array) => {
      observed.push(bytes.slice());
      digester.update(bytes);
    };
    const parts = [
      first.subarray(0, 1),
      first.subarray(1, 65_537),
      new Uint8Array(0),
      first.subarray(65_537),
    ];
    await store.appendUpload("repo", "upload-1", 0, streamOf(...parts), { observe });
    assertBytes(concat(observed), first);
    assert.equal(digester.size, first.byteLength);
    assert.equal(digester.peek().value, digestBytes(first).value);

    const later: Uint8Array[] = [];
    await store.appendUpload("repo", "upload-1", LARGE, streamOf(second), {
      observe: (bytes) => later.push(bytes.slice()),
    });
    assertBytes(concat(later), second);
  });

  test("readUpload returns the bytes received so far", async (store) => {
    const bytes = pseudoRandom(LARGE, 5);
    await store.createUpload("repo", "upload-1", STARTED_AT);
    await store.appendUpload("repo", "upload-1", 0, streamOf(bytes.subarray(0, 70_000)));
    const partial = await store.readUpload("repo", "upload-1");
    assert.ok(partial);
    assertBytes(await readAll(partial), bytes.subarray(0, 70_000));
    await store.appendUpload("repo", "upload-1", 70_000, streamOf(bytes.subarray(70_000)));
    const whole = await store.readUpload("repo", "upload-1");
    assert.ok(whole);
    assertBytes(await readAll(whole), bytes);
  });

  test("commitUpload makes the blob readable and linked and removes the session", async (store) => {
    const bytes = pseudoRandom(LARGE, 6);
    const digest = digestBytes(bytes);
    await store.createUpload("org/repo", "upload-1", STARTED_AT);
    await store.appendUpload("org/repo", "upload-1", 0, streamOf(bytes.subarray(0, 100)));
    await store.appendUpload("org/repo", "upload-1", 100, streamOf(bytes.subarray(100)));
    await store.commitUpload("org/repo", "upload-1", digest);

    assert.equal(await store.statBlob(digest), LARGE);
    assertBytes(await store.readBlob(digest), bytes);
    const content = await store.openBlob(digest, { start: 99, end: 65_636 });
    assert.ok(content);
    assert.equal(content.size, LARGE);
    assertBytes(await readAll(content.body), bytes.subarray(99, 65_637));
    assert.deepEqual(values(await collect(store.listBlobs())), [digest.value]);

    assert.equal(await store.hasLink("org/repo", "layer", digest), true);
    assert.equal(await store.hasLink("org/repo", "manifest", digest), false);
    assert.equal(await store.hasLink("other", "layer", digest), false);

    assert.equal(await store.statUpload("org/repo", "upload-1"), undefined);
    assert.equal(await store.readUpload("org/repo", "upload-1"), undefined);
    assert.deepEqual(await store.listUploads("org/repo"), []);
    assert.equal(await store.hasRepository("org/repo"), true);
  });

  test("commitUpload of an empty upload stores an empty blob", async (store) => {
    const digest = digestBytes(new Uint8Array(0));
    await store.createUpload("repo", "upload-1", STARTED_AT);
    await store.commitUpload("repo", "upload-1", digest);
    assert.equal(await store.statBlob(digest), 0);
    assertBytes(await store.readBlob(digest), new Uint8Array(0));
    assert.equal(await store.hasLink("repo", "layer", digest), true);
    assert.equal(await store.statUpload("repo", "upload-1"), undefined);
  });

  test("commitUpload of a blob that already exists links it", async (store) => {
    const bytes = text("shared layer");
    const digest = digestBytes(bytes);
    await store.putBlob(digest, bytes);
    await store.createUpload("second", "upload-2", STARTED_AT);
    await store.appendUpload("second", "upload-2", 0, streamOf(bytes));
    await store.commitUpload("second", "upload-2", digest);
    assertBytes(await store.readBlob(digest), bytes);
    assert.equal(await store.hasLink("second", "layer", digest), true);
    assert.equal(await store.statUpload("second", "upload-2"), undefined);
    assert.deepEqual(values(await collect(store.listBlobs())), [digest.value]);
  });

  test("commitUpload under a sha512 digest", async (store) => {
    const bytes = pseudoRandom(1234, 7);
    const digest = digestBytes(bytes, "sha512");
    await store.createUpload("repo", "upload-1", STARTED_AT);
    await store.appendUpload("repo", "upload-1", 0, streamOf(bytes));
    await store.commitUpload("repo", "upload-1", digest);
    assertBytes(await store.readBlob(digest), bytes);
    assert.equal(await store.statBlob(digestBytes(bytes, "sha256")), undefined);
    assert.equal(await store.hasLink("repo", "layer", digest), true);
    assert.deepEqual((await collect(store.listBlobs())).map(plain), [plain(digest)]);
  });

  test("commitUpload of an unknown session fails", async (store) => {
    const digest = digestBytes(text("nothing"));
    await assert.rejects(store.commitUpload("repo", "missing", digest));
    assert.equal(await store.statBlob(digest), undefined);
    assert.equal(await store.hasLink("repo", "layer", digest), false);
  });

  test("deleteUpload returns true once, then false", async (store) => {
    await store.createUpload("repo", "upload-1", STARTED_AT);
    await store.createUpload("repo", "upload-2", STARTED_AT);
    await store.appendUpload("repo", "upload-1", 0, streamOf(text("data")));
    assert.equal(await store.deleteUpload("other", "upload-1"), false);
    assert.equal(await store.deleteUpload("repo", "upload-1"), true);
    assert.equal(await store.statUpload("repo", "upload-1"), undefined);
    assert.equal(await store.readUpload("repo", "upload-1"), undefined);
    assert.equal(await store.deleteUpload("repo", "upload-1"), false);
    assert.equal(await store.deleteUpload("repo", "never"), false);
    await assert.rejects(store.appendUpload("repo", "upload-1", 4, streamOf(text("more"))));
    assert.equal((await store.statUpload("repo", "upload-2"))?.size, 0);
  });

  test("listUploads lists the open sessions of one repository", async (store) => {
    assert.deepEqual(await store.listUploads("repo"), []);
    await store.createUpload("repo", "upload-1", STARTED_AT);
    await store.createUpload("repo", "upload-2", STARTED_LATER);
    await store.createUpload("repo", "upload-3", STARTED_AT);
    await store.createUpload("other", "upload-4", STARTED_AT);
    await store.appendUpload("repo", "upload-2", 0, streamOf(text("bytes")));
    assert.deepEqual(await uploads(store, "repo"), [
      ["upload-1", STARTED_AT.getTime()],
      ["upload-2", STARTED_LATER.getTime()],
      ["upload-3", STARTED_AT.getTime()],
    ]);
    assert.deepEqual(await uploads(store, "other"), [["upload-4", STARTED_AT.getTime()]]);

    await store.deleteUpload("repo", "upload-1");
    await store.commitUpload("repo", "upload-2", digestBytes(text("bytes")));
    assert.deepEqual(await uploads(store, "repo"), [["upload-3", STARTED_AT.getTime()]]);
    assert.deepEqual(await store.listUploads("nobody"), []);
  });

  // ---- catalog pages, blob info, referrers ------------------------------------------------

  test("repositoryPage pages through sorted names after last", async (store) => {
    const digest = digestBytes(text("manifest"));
    for (const name of ["c", "a/b", "a", "b", "a-b"]) await store.putTag(name, "latest", digest);
    await store.putLink("d", "layer", digest);
    await store.createUpload("e", "upload-1", STARTED_AT);
    assert.deepEqual(await store.repositoryPage(undefined, 100), await store.listRepositories());
    assert.deepEqual(await store.repositoryPage(undefined, 2), ["a", "a-b"]);
    assert.deepEqual(await store.repositoryPage("a-b", 2), ["a/b", "b"]);
    assert.deepEqual(await store.repositoryPage("b", 10), ["c", "d", "e"]);
    assert.deepEqual(await store.repositoryPage("e", 10), []);
    assert.deepEqual(await store.repositoryPage("0", 1), ["a"]);
    assert.deepEqual(await store.repositoryPage("bb", 1), ["c"]);
    assert.deepEqual(await store.repositoryPage(undefined, 0), []);
  });

  test("repositoryPage sees repositories created after an earlier page", async (store) => {
    const digest = digestBytes(text("manifest"));
    await store.putTag("m", "latest", digest);
    assert.deepEqual(await store.repositoryPage(undefined, 10), ["m"]);
    await store.putLink("a", "manifest", digest);
    await store.putTag("z", "latest", digest);
    assert.deepEqual(await store.repositoryPage(undefined, 10), ["a", "m", "z"]);
  });

  test("repositoryPage from any marker agrees with the sorted walk of every name", async (store) => {
    const digest = digestBytes(text("manifest"));
    // Repositories inside repositories, names that sort between a folder and its children.
    const names = ["a", "a/b", "a/b/c", "a-b", "a.b/c", "a/b-c", "a0", "ab/x", "b/a/b", "b/a-c"];
    for (const name of names) await store.putLink(name, "layer", digest);
    await store.createUpload("a/b.c", "upload-1", STARTED_AT);
    const all = [...names, "a/b.c"].sort();
    assert.deepEqual(await store.listRepositories(), all);
    const markers = [undefined, ...all, "", "a/", "a/b/", "a-", "a/zz", "b/a", "b/a/", "zzz", "0"];
    for (const last of markers) {
      const after = all.filter((name) => last === undefined || name > last);
      for (const limit of [1, 2, 3, 100]) {
        const page = await store.repositoryPage(last, limit);
        assert.deepEqual(page, after.slice(0, limit), `after ${last}, ${limit}`);
      }
      assert.deepEqual(await collect(store.repositories(last)), after, `after ${last}`);
    }
  });

  test("tagPage pages through sorted tags; undefined for an unknown repository", async (store) => {
    const digest = digestBytes(text("manifest"));
    for (const tag of ["v2", "latest", "v10", "V1", "1.0"]) await store.putTag("repo", tag, digest);
    await store.putLink("empty", "layer", digest);
    assert.deepEqual(await store.tagPage("repo", undefined, 10), {
      entries: ["1.0", "V1", "latest", "v10", "v2"],
      more: false,
    });
    assert.deepEqual(await store.tagPage("repo", undefined, 2), {
      entries: ["1.0", "V1"],
      more: true,
    });
    assert.deepEqual(await store.tagPage("repo", "V1", 2), {
      entries: ["latest", "v10"],
      more: true,
    });
    assert.deepEqual(await store.tagPage("repo", "v10", 2), { entries: ["v2"], more: false });
    assert.deepEqual(await store.tagPage("repo", "w", 2), { entries: [], more: false });
    assert.deepEqual(await store.tagPage("empty", undefined, 2), { entries: [], more: false });
    assert.equal(await store.tagPage("nobody", undefined, 2), undefined);
    await store.deleteTag("repo", "latest");
    await store.putTag("repo", "a", digest);
    assert.deepEqual((await store.tagPage("repo", "1.0", 10))?.entries, ["V1", "a", "v10", "v2"]);
  });

  test("blobInfo gives size and a recent modification time", async (store) => {
    const bytes = text("info");
    const digest = digestBytes(bytes);
    assert.equal(await store.blobInfo(digest), undefined);
    const before = Date.now() - 2_000;
    await store.putBlob(digest, bytes);
    const info = await store.blobInfo(digest);
    assert.equal(info?.size, bytes.byteLength);
    assert.ok(info.modifiedAt.getTime() >= before, "modifiedAt is recent");
    assert.ok(info.modifiedAt.getTime() <= Date.now() + 2_000, "modifiedAt is not in the future");
  });

  test("referrers are recorded per repository and subject", async (store) => {
    const subject = digestBytes(text("subject"));
    const other = digestBytes(text("other subject"));
    const sig = digestBytes(text("signature"));
    const sbom = digestBytes(text("sbom"));
    assert.deepEqual(await collect(store.listReferrers("repo", subject)), []);
    await store.putReferrer("repo", subject, sig);
    await store.putReferrer("repo", subject, sig);
    await store.putReferrer("repo", subject, sbom);
    await store.putReferrer("repo", other, sbom);
    assert.deepEqual(
      values(await collect(store.listReferrers("repo", subject))),
      values([sig, sbom]),
    );
    assert.deepEqual(values(await collect(store.listReferrers("repo", other))), [sbom.value]);
    assert.deepEqual(await collect(store.listReferrers("elsewhere", subject)), []);
  });

  test("deleteReferrer returns true once, then false, and keeps the others", async (store) => {
    const subject = digestBytes(text("subject"));
    const sig = digestBytes(text("signature"));
    const sbom = digestBytes(text("sbom"));
    await store.putReferrer("repo", subject, sig);
    await store.putReferrer("repo", subject, sbom);
    assert.equal(await store.deleteReferrer("repo", subject, sig), true);
    assert.equal(await store.deleteReferrer("repo", subject, sig), false);
    assert.deepEqual(values(await collect(store.listReferrers("repo", subject))), [sbom.value]);
    assert.equal(await store.deleteReferrer("repo", subject, sbom), true);
    assert.deepEqual(await collect(store.listReferrers("repo", subject)), []);
    assert.equal(await store.deleteReferrer("nobody", subject, sbom), false);
    await store.putReferrer("repo", subject, sig);
    assert.deepEqual(values(await collect(store.listReferrers("repo", subject))), [sig.value]);
  });
}

/** Assert that an upload session holds exactly `bytes`. */
async function assertUpload(store: Store, name: string, id: string, bytes: Uint8Array) {
  assert.equal((await store.statUpload(name, id))?.size, bytes.byteLength, "upload size");
  const body = await store.readUpload(name, id);
  assert.ok(body, "upload exists");
  assertBytes(await readAll(body), bytes, "upload content");
}

/** A repository's uploads as sorted `[id, startedAt ms]` pairs. */
async function uploads(store: Store, name: string): Promise<[string, number][]> {
  const list = await store.listUploads(name);
  return list
    .map(({ id, startedAt }): [string, number] => [id, startedAt.getTime()])
    .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
}

/** UTF-8 bytes of `s`. */
function text(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** `size` deterministic pseudo-random bytes (xorshift32 seeded with `seed`). */
function pseudoRandom(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let state = (seed * 2_654_435_761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

/** A lazy stream of copies of `chunks`. */
function streamOf(...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  let index = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = chunks[index++];
      if (chunk) controller.enqueue(chunk.slice());
      else controller.close();
    },
  }, { highWaterMark: 0 });
}

/** Read a stream to its end. */
async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return concat(chunks);
}

/** Join byte arrays. */
function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0));
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}

/** Everything an async iterable yields. */
async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/** The sorted `algorithm:hex` strings of some digests. */
function values(digests: readonly Digest[]): string[] {
  return digests.map((digest) => digest.value).sort();
}

/** A digest's fields as a plain object, to compare digests from different sources. */
function plain(digest: Digest): { algorithm: string; hex: string; value: string } {
  return { algorithm: digest.algorithm, hex: digest.hex, value: digest.value };
}

/** Assert that `actual` holds exactly `expected`, reporting the first difference briefly. */
function assertBytes(actual: Uint8Array | undefined, expected: Uint8Array, message = "bytes") {
  assert.ok(actual, `${message}: expected ${expected.byteLength} bytes, got undefined`);
  const length = Math.min(actual.byteLength, expected.byteLength);
  let at = 0;
  while (at < length && actual[at] === expected[at]) at++;
  if (at === length && actual.byteLength === expected.byteLength) return;
  assert.fail(
    `${message}: expected ${expected.byteLength} bytes, got ${actual.byteLength}; ` +
      `first difference at byte ${at}`,
  );
}
