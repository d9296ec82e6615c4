/**
 * A small S3 client over `fetch`: the calls berth's S3 driver makes (objects, listings, server-side
 * copies, multipart uploads, presigned URLs), signed with SigV4 by `aws4fetch`, with a timeout per
 * attempt and retries with exponential backoff for calls that are safe to repeat.
 *
 * Failures that persist after the retries (network errors, timeouts, 5xx, 429) throw
 * {@link StorageUnavailable}; other unexpected answers throw {@link S3Error}.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { StorageUnavailable } from "../unavailable.ts";
import { sendBytes, sendsDirectly } from "./http_put.ts";

/** The SigV4 signer, loaded on first use: a registry on the filesystem starts without it. */
const signer = () => import("aws4fetch");

/** How to reach a bucket. */
export interface S3ClientOptions {
  /** Endpoint URL (`https://s3.us-east-1.amazonaws.com`, `http://127.0.0.1:7480`). */
  endpoint: string;
  /** Signing region. */
  region: string;
  /** Bucket name. */
  bucket: string;
  /** Access key id. */
  accessKey: string;
  /** Secret access key. */
  secretKey: string;
  /** Session token of temporary credentials. */
  sessionToken?: string;
  /** Path-style addressing (`endpoint/bucket/key`) instead of virtual-hosted (`bucket.host/key`). */
  pathStyle: boolean;
  /** Milliseconds an attempt may wait for the response headers (default 30 s). */
  timeoutMs?: number;
  /** Retries of a failed idempotent call (default 4). */
  retries?: number;
  /** First backoff delay in milliseconds, doubled per retry with jitter (default 100). */
  backoffMs?: number;
}

/** Size, time and entity tag of an object. */
export interface ObjectInfo {
  /** Size in bytes. */
  size: number;
  /** Last modification time. */
  modifiedAt: Date;
  /** Entity tag (quoted, as S3 returns it). */
  etag: string;
}

/** One entry of a listing: an object, or a common prefix when a delimiter was given. */
export type ListEntry =
  | { kind: "object"; key: string; size: number; modifiedAt: Date }
  | { kind: "prefix"; prefix: string };

/** A part of a multipart upload. */
export interface CompletedPart {
  /** 1-based part number. */
  partNumber: number;
  /** The entity tag S3 answered for the part. */
  etag: string;
}

/** S3 answered with an error this client does not turn into a result. */
export class S3Error extends Error {
  /** Build the error from the HTTP status and S3's error code. */
  constructor(readonly status: number, readonly code: string, message: string) {
    super(`S3 ${status} ${code}: ${message}`);
    this.name = "S3Error";
  }
}

interface SendOptions {
  key?: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Uint8Array<ArrayBuffer> | string;
  /** Statuses returned to the caller instead of thrown (2xx are always returned). */
  accept?: number[];
  /** Whether the call may be repeated after a failure. */
  idempotent: boolean;
  signal?: AbortSignal;
}

const RETRYABLE = new Set([429, 500, 502, 503, 504]);
/**
 * Bodies at least this large go out through {@link sendBytes}, not copied by `fetch` (unless a
 * proxy is configured for the endpoint: then `fetch`, which knows how to use it).
 */
const DIRECT_BODY = 64 * 1024;

/** An S3 bucket. */
export class S3Client {
  readonly #options: S3ClientOptions;
  readonly #base: URL;
  readonly #cache = new Map<string, ArrayBuffer>();
  /** Whether large bodies may go through {@link sendBytes} (no proxy in the way). */
  readonly #direct: boolean;

  /** A client for the bucket `options` names. */
  constructor(options: S3ClientOptions) {
    this.#options = options;
    const endpoint = new URL(options.endpoint);
    if (options.pathStyle) {
      this.#base = new URL(`${endpoint.origin}/${encodeURIComponent(options.bucket)}/`);
    } else {
      this.#base = new URL(`${endpoint.protocol}//${options.bucket}.${endpoint.host}/`);
    }
    this.#direct = sendsDirectly(this.#base);
  }

  /** The bucket's name. */
  get bucket(): string {
    return this.#options.bucket;
  }

  /** Whether the bucket exists and answers (a HEAD on it). */
  async bucketExists(): Promise<boolean> {
    const response = await this.#send("HEAD", { idempotent: true, accept: [404] });
    return response.status !== 404;
  }

  /** Create the bucket (tests and first setup); an existing bucket of ours is fine. */
  async createBucket(): Promise<void> {
    await this.#send("PUT", { idempotent: true, accept: [409] });
  }

  /** Delete the (empty) bucket; absent is fine. */
  async deleteBucket(): Promise<void> {
    const response = await this.#send("DELETE", { idempotent: true, accept: [404] });
    await response.body?.cancel();
  }

  /** Metadata of an object, or `undefined` when absent. */
  async head(key: string, signal?: AbortSignal): Promise<ObjectInfo | undefined> {
    const response = await this.#send("HEAD", {
      key,
      idempotent: true,
      accept: [404],
      ...(signal && { signal }),
    });
    if (response.status === 404) return undefined;
    return {
      size: Number(response.headers.get("content-length") ?? 0),
      modifiedAt: new Date(response.headers.get("last-modified") ?? 0),
      etag: response.headers.get("etag") ?? "",
    };
  }

  /**
   * Open an object, whole or from `start` to `end` (inclusive); `undefined` when absent, a 416
   * response (body released) when the range starts past its end. The body streams; the caller
   * reads or cancels it.
   */
  async get(
    key: string,
    range?: { start: number; end?: number },
    signal?: AbortSignal,
  ): Promise<Response | undefined> {
    const headers: Record<string, string> = {};
    if (range) headers.range = `bytes=${range.start}-${range.end ?? ""}`;
    const response = await this.#send("GET", {
      key,
      headers,
      idempotent: true,
      accept: [404, 416],
      ...(signal && { signal }),
    });
    // The error document of a 404 or 416 is not read: released, not left holding the connection.
    if (response.status === 404 || response.status === 416) await response.body?.cancel();
    return response.status === 404 ? undefined : response;
  }

  /** Read a whole (small) object, or `undefined` when absent. */
  async getBytes(key: string): Promise<Uint8Array<ArrayBuffer> | undefined> {
    const response = await this.get(key);
    if (!response || response.status === 416) return undefined;
    return new Uint8Array(await response.arrayBuffer());
  }

  /** Store an object from bytes in memory; returns its entity tag. */
  async put(key: string, body: Uint8Array<ArrayBuffer> | string): Promise<string> {
    const response = await this.#send("PUT", { key, body, idempotent: true });
    await response.body?.cancel();
    return response.headers.get("etag") ?? "";
  }

  /** Create an object only if its key is free (`If-None-Match: *`); `false` when it exists. */
  async putIfAbsent(key: string, body: Uint8Array<ArrayBuffer> | string): Promise<boolean> {
    const response = await this.#send("PUT", {
      key,
      body,
      headers: { "if-none-match": "*" },
      // A retry after a lost answer finds its own object: the caller checks the content.
      idempotent: true,
      accept: [409, 412],
    });
    await response.body?.cancel();
    return response.ok;
  }

  /** Delete an object (absent is fine). */
  async delete(key: string): Promise<void> {
    const response = await this.#send("DELETE", { key, idempotent: true, accept: [404] });
    await response.body?.cancel();
  }

  /** Delete many objects, 1000 per request. */
  async deleteMany(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const xml = `<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>true</Quiet>${
        batch.map((k) => `<Object><Key>${escapeXml(k)}</Key></Object>`).join("")
      }</Delete>`;
      const body = new TextEncoder().encode(xml);
      const md5 = createHash("md5").update(body).digest("base64");
      const response = await this.#send("POST", {
        query: { delete: "" },
        headers: { "content-md5": md5, "content-type": "application/xml" },
        body,
        idempotent: true,
      });
      const text = await response.text();
      const failed = blocks(text, "Error").map((b) => `${tag(b, "Key")}: ${tag(b, "Code")}`);
      if (failed.length > 0) throw new S3Error(200, "DeleteObjects", failed.join(", "));
    }
  }

  /**
   * Every object under `prefix` in key order (after `startAfter` when given); with a delimiter,
   * the common prefixes below it come as `prefix` entries instead of their objects.
   */
  async *list(
    prefix: string,
    options: { delimiter?: string; startAfter?: string; maxKeys?: number } = {},
  ): AsyncIterable<ListEntry> {
    let token: string | undefined;
    do {
      const maxKeys = String(options.maxKeys ?? 1000);
      const query: Record<string, string> = { "list-type": "2", prefix, "max-keys": maxKeys };
      if (options.delimiter) query.delimiter = options.delimiter;
      if (token) query["continuation-token"] = token;
      else if (options.startAfter) query["start-after"] = options.startAfter;
      const response = await this.#send("GET", { query, idempotent: true });
      const xml = await response.text();
      const entries: ListEntry[] = [];
      for (const b of blocks(xml, "Contents")) {
        entries.push({
          kind: "object",
          key: tag(b, "Key") ?? "",
          size: Number(tag(b, "Size") ?? 0),
          modifiedAt: new Date(tag(b, "LastModified") ?? 0),
        });
      }
      for (const b of blocks(xml, "CommonPrefixes")) {
        entries.push({ kind: "prefix", prefix: tag(b, "Prefix") ?? "" });
      }
      // Objects and prefixes come in two lists; one key order for the caller.
      entries.sort((a, b) => compareKeys(entryKey(a), entryKey(b)));
      yield* entries;
      token = tag(xml, "IsTruncated") === "true"
        ? tag(xml, "NextContinuationToken") ?? undefined
        : undefined;
    } while (token);
  }

  /** Server-side copy of a whole object (up to 5 GiB). */
  async copy(source: string, target: string): Promise<void> {
    const response = await this.#send("PUT", {
      key: target,
      headers: { "x-amz-copy-source": this.#copySource(source) },
      idempotent: true,
    });
    const text = await response.text();
    if (text.includes("<Error>")) throw errorFromXml(200, text);
  }

  /** Start a multipart upload to `key`; returns its upload id. */
  async createMultipart(key: string): Promise<string> {
    const response = await this.#send("POST", {
      key,
      query: { uploads: "" },
      idempotent: true,
    });
    const id = tag(await response.text(), "UploadId");
    if (!id) throw new S3Error(response.status, "NoUploadId", "CreateMultipartUpload gave no id");
    return id;
  }

  /** Upload one part from memory; returns its entity tag. */
  async uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Uint8Array<ArrayBuffer>,
  ): Promise<string> {
    const response = await this.#send("PUT", {
      key,
      query: { partNumber: String(partNumber), uploadId },
      body,
      idempotent: true,
    });
    await response.body?.cancel();
    return response.headers.get("etag") ?? "";
  }

  /** Copy bytes `start`..`end` (inclusive) of object `source` as one part; returns its tag. */
  async uploadPartCopy(
    key: string,
    uploadId: string,
    partNumber: number,
    source: string,
    range: { start: number; end: number },
  ): Promise<string> {
    const response = await this.#send("PUT", {
      key,
      query: { partNumber: String(partNumber), uploadId },
      headers: {
        "x-amz-copy-source": this.#copySource(source),
        "x-amz-copy-source-range": `bytes=${range.start}-${range.end}`,
      },
      idempotent: true,
    });
    const text = await response.text();
    if (text.includes("<Error>")) throw errorFromXml(200, text);
    return tag(text, "ETag") ?? "";
  }

  /** Complete a multipart upload from its parts in order. */
  async completeMultipart(key: string, uploadId: string, parts: CompletedPart[]): Promise<void> {
    const xml = `<CompleteMultipartUpload>${
      parts.map((p) =>
        `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${escapeXml(p.etag)}</ETag></Part>`
      ).join("")
    }</CompleteMultipartUpload>`;
    // Not repeated blindly: a retry after a lost answer finds the upload gone (NoSuchUpload).
    const response = await this.#send("POST", {
      key,
      query: { uploadId },
      body: xml,
      headers: { "content-type": "application/xml" },
      idempotent: true,
      accept: [404],
    });
    const text = await response.text();
    if (response.status === 404 || text.includes("<Error>")) {
      // A retried call whose first attempt succeeded: the object is there.
      if (text.includes("NoSuchUpload") && await this.head(key)) return;
      throw errorFromXml(response.status, text);
    }
  }

  /**
   * The parts stored in a multipart upload with numbers above `after`, in order, or `undefined`
   * when the upload is not there (completed or aborted).
   */
  async listParts(
    key: string,
    uploadId: string,
    after = 0,
  ): Promise<{ partNumber: number; etag: string; size: number }[] | undefined> {
    const parts: { partNumber: number; etag: string; size: number }[] = [];
    let marker = String(after);
    for (;;) {
      const response = await this.#send("GET", {
        key,
        query: { uploadId, "part-number-marker": marker },
        idempotent: true,
        accept: [404],
      });
      const xml = await response.text();
      if (response.status === 404) return undefined;
      for (const b of blocks(xml, "Part")) {
        parts.push({
          partNumber: Number(tag(b, "PartNumber")),
          etag: tag(b, "ETag") ?? "",
          size: Number(tag(b, "Size") ?? 0),
        });
      }
      const next = tag(xml, "NextPartNumberMarker");
      if (tag(xml, "IsTruncated") !== "true" || !next || next === marker) return parts;
      marker = next;
    }
  }

  /** Abandon a multipart upload (absent is fine). */
  async abortMultipart(key: string, uploadId: string): Promise<void> {
    const response = await this.#send("DELETE", {
      key,
      query: { uploadId },
      idempotent: true,
      accept: [404],
    });
    await response.body?.cancel();
  }

  /** A presigned URL that lets its holder `GET` (or `HEAD`) `key` for `expiresSeconds`. */
  async presign(key: string, expiresSeconds: number, method = "GET"): Promise<string> {
    const url = this.#url(key, { "X-Amz-Expires": String(expiresSeconds) });
    const { AwsV4Signer } = await signer();
    const signed = await new AwsV4Signer({
      ...this.#credentials(),
      method,
      url: url.toString(),
      signQuery: true,
    }).sign();
    return signed.url.toString();
  }

  #credentials() {
    const o = this.#options;
    return {
      accessKeyId: o.accessKey,
      secretAccessKey: o.secretKey,
      ...(o.sessionToken && { sessionToken: o.sessionToken }),
      region: o.region,
      service: "s3",
      cache: this.#cache,
    };
  }

  #url(key: string | undefined, query?: Record<string, string>): URL {
    const path = key === undefined ? "" : key.split("/").map(encodeURIComponent).join("/");
    const url = new URL(path, this.#base);
    if (key === undefined && this.#options.pathStyle) url.pathname = url.pathname.slice(0, -1);
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
    return url;
  }

  #copySource(key: string): string {
    return `/${this.#options.bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
  }

  async #send(method: string, options: SendOptions): Promise<Response> {
    const retries = options.idempotent ? this.#options.retries ?? 4 : 0;
    const backoff = this.#options.backoffMs ?? 100;
    let failure: string = "no attempt";
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) {
        const delay = backoff * 2 ** (attempt - 1) * (0.5 + Math.random());
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
      options.signal?.throwIfAborted();
      let response: Response;
      try {
        response = await this.#attempt(method, options);
      } catch (error) {
        if (options.signal?.aborted) throw error;
        failure = (error as Error).message;
        continue;
      }
      if (response.ok || options.accept?.includes(response.status)) return response;
      const text = await response.text().catch(() => "");
      if (RETRYABLE.has(response.status)) {
        failure = `${response.status} ${tag(text, "Code") ?? response.statusText}`;
        continue;
      }
      throw errorFromXml(response.status, text);
    }
    throw new StorageUnavailable(
      `S3 ${method} ${options.key ?? this.#options.bucket}: ${failure}`,
    );
  }

  async #attempt(method: string, options: SendOptions): Promise<Response> {
    const url = this.#url(options.key, options.query);
    const { AwsV4Signer } = await signer();
    const signed = await new AwsV4Signer({
      ...this.#credentials(),
      method,
      url: url.toString(),
      headers: options.headers ?? {},
    }).sign();
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new Error("timed out")),
      this.#options.timeoutMs ?? 30_000,
    );
    const signal = options.signal
      ? AbortSignal.any([options.signal, timeout.signal])
      : timeout.signal;
    try {
      const body = options.body;
      if (this.#direct && body instanceof Uint8Array && body.byteLength >= DIRECT_BODY) {
        return await sendBytes(method, new URL(signed.url), signed.headers, body, signal);
      }
      return await fetch(signed.url, {
        method,
        headers: signed.headers,
        ...(options.body !== undefined && { body: options.body }),
        signal,
      });
    } finally {
      clearTimeout(timer);
    }
  }
}

function entryKey(entry: ListEntry): string {
  return entry.kind === "object" ? entry.key : entry.prefix;
}

/** Byte order of UTF-8 keys, as S3 sorts them. */
function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function errorFromXml(status: number, text: string): S3Error {
  return new S3Error(
    status,
    tag(text, "Code") ?? "Unknown",
    tag(text, "Message") ?? text.slice(0, 200),
  );
}

/** The inner text of the first `<name>` element, unescaped, or `undefined`. */
function tag(xml: string, name: string): string | undefined {
  const match = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml);
  return match ? unescapeXml(match[1]!) : undefined;
}

/** The inner text of every `<name>` element, still escaped. */
function blocks(xml: string, name: string): string[] {
  return [...xml.matchAll(new RegExp(`<${name}>([\\s\\S]*?)</${name}>`, "g"))].map((m) => m[1]!);
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

function unescapeXml(text: string): string {
  return text.replace(/&(lt|gt|quot|apos|amp|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) => {
    switch (e) {
      case "lt":
        return "<";
      case "gt":
        return ">";
      case "quot":
        return '"';
      case "apos":
        return "'";
      case "amp":
        return "&";
      default:
        return String.fromCodePoint(
          e.startsWith("#x") ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10),
        );
    }
  });
}
