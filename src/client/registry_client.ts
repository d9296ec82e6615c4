/**
 * {@link RegistryClient}: the distribution API as a client, for one registry. It pings `/v2/` to
 * learn the scheme and how to authenticate, then sends every request with Basic credentials or a
 * Bearer token for the request's scopes (cached, renewed on a 401). Downloads are verified against
 * their digest while they stream and resume with `Range` after a dropped connection; uploads skip
 * blobs that exist, mount across repositories, and send exact lengths. Used by `berth copy` and
 * meant for anything else in berth that talks to another registry (a pull-through cache):
 *
 * ```ts
 * const upstream = new RegistryClient({
 *   registry: "https://registry-1.docker.io", // or host[:port]
 *   credentials: { username, password }, // optional
 *   retry: { retries: 2, timeoutMs: 5_000 }, // give up on a silent upstream
 * });
 * const head = await upstream.headManifest("library/alpine", "3.20"); // digest, type, size
 * const manifest = await upstream.getManifest("library/alpine", "3.20"); // exact bytes + digest
 * const blob = await upstream.getBlob("library/alpine", { digest, size }); // verified stream
 * ```
 *
 * @module
 */
import { digestBytes, tryParseDigest } from "../oci/digest.ts";
import type { Descriptor } from "../oci/manifest.ts";
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  DOCKER_SCHEMA1,
  essence,
  OCI_INDEX,
  OCI_MANIFEST,
} from "../oci/media_types.ts";
import { type AuthMode, basicHeader, parseChallenges, TokenCache } from "./auth.ts";
import type { Credentials } from "./credentials.ts";
import { ClientError, errorMessage } from "./errors.ts";
import {
  type HttpResponse,
  HttpSender,
  type RequestBody,
  type RetryOptions,
  type TlsOptions,
} from "./http.ts";
import { type ViewReader, viewReader, viewSourceStream } from "./byte_streams.ts";
import { apiHost } from "./reference.ts";
import { speaksTls } from "./tls_sniff.ts";
import { verifying } from "./verify.ts";

/** Manifest types a client accepts, in order of preference. */
export const MANIFEST_ACCEPT = [
  OCI_INDEX,
  OCI_MANIFEST,
  DOCKER_MANIFEST_LIST,
  DOCKER_MANIFEST,
  ...DOCKER_SCHEMA1,
].join(", ");

/** Largest manifest the client reads (bytes). */
export const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;

/** Options of a {@link RegistryClient}. */
export interface RegistryClientOptions {
  /** `host[:port]` (HTTPS; plain HTTP too when `tls.verify` is false), or a base URL. */
  registry: string;
  /** Credentials for Basic auth or the token server. */
  credentials?: Credentials;
  /** TLS settings; `verify: false` also allows plain HTTP (skopeo's `--tls-verify=false`). */
  tls?: TlsOptions;
  /** Retry policy. */
  retry?: RetryOptions;
  /** Blobs up to this size are pushed with one PUT, larger ones with a streamed PATCH. */
  monolithicLimit?: number;
  /** `User-Agent`. */
  userAgent?: string;
}

/** A manifest as fetched: its exact bytes, media type and digest. */
export interface FetchedManifest {
  /** Exact bytes. */
  bytes: Uint8Array;
  /** Media type (`Content-Type`, else the `mediaType` field). */
  mediaType: string;
  /** Digest of the bytes (the algorithm of the requested digest, else sha256). */
  digest: string;
}

/** What a blob upload did. */
export type PushOutcome = "exists" | "mounted" | "uploaded";

/** Options of one call. */
export interface CallOptions {
  /** Abort signal. */
  signal?: AbortSignal;
}

/** A client of one registry; create once and reuse (it caches tokens and connections). */
export class RegistryClient {
  /** The registry as given. */
  readonly registry: string;
  #options: RegistryClientOptions;
  #sender: HttpSender;
  #tokens = new TokenCache();
  #base: Promise<string> | undefined;
  /**
   * Per repository, whether a mount from itself (`POST ?mount=D&from=<the same repository>`)
   * answers 201 for a blob it has (learned from a blob known to be there; a promise meanwhile).
   */
  #selfMount = new Map<string, boolean | Promise<boolean>>();

  /** A client for `options.registry`. */
  constructor(options: RegistryClientOptions) {
    this.registry = options.registry;
    this.#options = options;
    this.#sender = new HttpSender(options.tls ?? {}, options.retry ?? {});
  }

  /** Release connections. */
  close(): void {
    this.#sender.close();
  }

  /** How the registry authenticates, once known (after the first request). */
  get authMode(): AuthMode {
    return this.#tokens.mode;
  }

  /**
   * Whether the repository is known to answer a mount from itself with 201 for a blob it has (and
   * with an upload session for one it lacks): that one `POST` then checks for a blob and starts its
   * upload, instead of a `HEAD` and then a `POST`. Undefined until learned: {@link pushBlob} asks
   * with one extra `POST` after its first upload to the repository (a registry that does not
   * mount answers 202 for a blob it has, and the `HEAD`s stay).
   */
  selfMounts(repository: string): boolean | undefined {
    const known = this.#selfMount.get(repository);
    return typeof known === "boolean" ? known : undefined;
  }

  /** Ping `/v2/`: resolves the base URL and learns the auth challenge. */
  async ping(options: CallOptions = {}): Promise<string> {
    this.#base ??= this.#discover(options.signal);
    try {
      return await this.#base;
    } catch (error) {
      this.#base = undefined;
      throw error;
    }
  }

  async #discover(signal?: AbortSignal): Promise<string> {
    const given = this.#options.registry;
    const host = apiHost(given);
    // Without verification plain HTTP is allowed too. A port speaks one of the two, and a TLS port
    // answers a plain request with a 400 or by closing: on a given port plain HTTP is tried
    // first, which costs a plain registry nothing more than its ping. Without a port the two are
    // ports 443 and 80, and HTTPS comes first.
    const plainFirst = this.#options.tls?.verify === false && new URL(`http://${host}`).port !== "";
    let candidates = /^https?:\/\//.test(given)
      ? [given.replace(/\/+$/, "")]
      : plainFirst
      ? [`http://${host}`, `https://${host}`]
      : this.#options.tls?.verify === false
      ? [`https://${host}`, `http://${host}`]
      : [`https://${host}`];
    const ping = (base: string, options: { retries?: number; signal?: AbortSignal }) =>
      this.#sender.send({
        method: "GET",
        url: `${base}/v2/`,
        headers: this.#baseHeaders(),
        ...(options.retries !== undefined && { retries: options.retries }),
        ...(options.signal && { signal: options.signal }),
      });
    let early: Promise<HttpResponse> | undefined;
    if (candidates.length > 1 && !plainFirst) {
      // HTTPS first, unless the port answers a ClientHello in plain HTTP: then the HTTPS attempt
      // (and the modules it loads) would only fail. The plain ping goes out with the ClientHello,
      // so a plain registry costs no extra round trip; it is dropped when the port speaks TLS.
      const url = new URL(candidates[0]!);
      const speculative = new AbortController();
      early = ping(candidates[1]!, {
        retries: 0,
        signal: signal ? AbortSignal.any([signal, speculative.signal]) : speculative.signal,
      });
      early.catch(() => {});
      const tls = await speaksTls(url.hostname.replace(/^\[|\]$/g, ""), Number(url.port || 443), {
        ...(signal && { signal }),
      });
      if (tls === false) candidates = candidates.slice(1);
      else {
        speculative.abort();
        early = undefined;
      }
    }
    let lastError: unknown;
    for (const base of candidates) {
      let response: HttpResponse;
      // Only the last candidate is retried: an earlier one failing says "try the next".
      const last = base === candidates.at(-1);
      try {
        const sig = { ...(!last && { retries: 0 }), ...(signal && { signal }) };
        const pending = early;
        early = undefined;
        response = await (pending ? pending.catch(() => ping(base, sig)) : ping(base, sig));
        if (!last && base.startsWith("http:")) {
          if (response.status === 400) {
            // A TLS port's answer to plain HTTP.
            await response.body?.cancel();
            lastError = new ClientError("protocol", `plain HTTP answered ${response.status}`);
            continue;
          }
          // A plain registry that is busy or failing: its ping with the usual retries.
          if (response.status === 429 || response.status >= 500) {
            await response.body?.cancel();
            response = await ping(base, { ...(signal && { signal }) });
          }
        }
      } catch (error) {
        if (error instanceof ClientError && error.kind === "aborted") throw error;
        lastError = error;
        continue;
      }
      await response.body?.cancel();
      if (response.status === 401) this.#learn(response.headers.get("WWW-Authenticate"));
      else if (!response.ok && response.status !== 404) {
        throw new ClientError("protocol", `${given}: /v2/ answered ${response.status}`, {
          status: response.status,
        });
      }
      return base;
    }
    const cause = lastError instanceof ClientError && lastError.cause !== undefined
      ? lastError.cause
      : lastError;
    const hint = this.#options.tls?.verify === false || /^https?:/.test(given)
      ? ""
      : " (plain HTTP or a self-signed certificate? use --tls-verify=false or a cert dir)";
    throw new ClientError("unreachable", `${given} unreachable: ${errorMessage(cause)}${hint}`);
  }

  #learn(header: string | null): boolean {
    const challenges = parseChallenges(header ?? "");
    const bearer = challenges.find((c) => c.scheme === "bearer" && c.params.realm);
    const before = JSON.stringify(this.#tokens.mode);
    if (bearer) {
      this.#tokens.mode = {
        kind: "bearer",
        realm: bearer.params.realm!,
        service: bearer.params.service,
      };
    } else if (challenges.some((c) => c.scheme === "basic")) {
      this.#tokens.mode = { kind: "basic" };
    }
    return JSON.stringify(this.#tokens.mode) !== before;
  }

  #baseHeaders(): Record<string, string> {
    return { "User-Agent": this.#options.userAgent ?? "berth" };
  }

  async #authorization(scopes: string[], signal?: AbortSignal): Promise<string | undefined> {
    const mode = this.#tokens.mode;
    const credentials = this.#options.credentials;
    if (mode.kind === "basic") return credentials ? basicHeader(credentials) : undefined;
    if (mode.kind !== "bearer") return undefined;
    const token = this.#tokens.get(scopes) ??
      await this.#tokens.fetch(this.#sender, scopes, credentials, signal);
    return `Bearer ${token}`;
  }

  /**
   * Send a request to `path` (under the base URL, or absolute) with the credentials the scopes
   * need; a 401 renews the token (or learns the challenge) once. The response is returned as is.
   */
  async request(
    method: string,
    path: string,
    options: {
      scopes: string[];
      headers?: Record<string, string>;
      body?: RequestBody;
      retries?: number;
      signal?: AbortSignal;
    },
  ): Promise<HttpResponse> {
    const base = await this.ping(options.signal ? { signal: options.signal } : {});
    const url = /^https?:\/\//.test(path) ? path : `${base}${path}`;
    for (let attempt = 0;; attempt++) {
      const headers = { ...this.#baseHeaders(), ...options.headers };
      const auth = await this.#authorization(options.scopes, options.signal);
      if (auth) headers.Authorization = auth;
      const response = await this.#sender.send({
        method,
        url,
        headers,
        ...(options.body && { body: options.body }),
        ...(options.retries !== undefined && { retries: options.retries }),
        ...(options.signal && { signal: options.signal }),
      });
      if (response.status !== 401 || attempt > 0) return response;
      const changed = this.#learn(response.headers.get("WWW-Authenticate"));
      if (!changed && !auth) return response;
      if (!changed && this.#tokens.mode.kind !== "bearer") return response;
      await response.body?.cancel();
      this.#tokens.drop(options.scopes);
    }
  }

  /** Turn an unexpected answer into a {@link ClientError} naming `what`. */
  async fail(response: HttpResponse, what: string): Promise<ClientError> {
    let detail = "";
    try {
      const text = (await response.text()).slice(0, 2000);
      const parsed = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
      const first = parsed.errors?.[0];
      if (first) detail = `: ${first.code ?? ""}${first.message ? ` ${first.message}` : ""}`;
    } catch { /* no JSON body */ }
    const status = response.status;
    if (status === 401) {
      return new ClientError(
        "auth",
        `${what}: authentication required${
          this.#options.credentials ? " (credentials refused)" : ""
        }${detail}`,
        { status },
      );
    }
    if (status === 403) {
      return new ClientError("denied", `${what}: access denied${detail}`, { status });
    }
    if (status === 404) {
      return new ClientError("not-found", `${what}: not found${detail}`, { status });
    }
    return new ClientError("protocol", `${what}: registry answered ${status}${detail}`, { status });
  }

  /** Fetch a manifest by tag or digest; a digest reference is verified against the bytes. */
  async getManifest(
    repository: string,
    reference: string,
    options: CallOptions & { accept?: string } = {},
  ): Promise<FetchedManifest> {
    const what = `${this.registry}/${repository}${reference.includes(":") ? "@" : ":"}${reference}`;
    const response = await this.request("GET", `/v2/${repository}/manifests/${reference}`, {
      scopes: [pullScope(repository)],
      headers: { Accept: options.accept ?? MANIFEST_ACCEPT },
      ...(options.signal && { signal: options.signal }),
    });
    if (!response.ok) throw await this.fail(response, what);
    const bytes = await readLimited(response, MAX_MANIFEST_BYTES, what);
    const requested = tryParseDigest(reference);
    const digest = digestBytes(bytes, requested?.algorithm ?? "sha256").value;
    if (requested && digest !== requested.value) {
      throw new ClientError("digest-mismatch", `digest mismatch for ${reference}: got ${digest}`);
    }
    return {
      bytes,
      mediaType: manifestMediaType(response.headers.get("Content-Type"), bytes),
      digest,
    };
  }

  /** HEAD a manifest: its digest, media type and size, or undefined when absent. */
  async headManifest(
    repository: string,
    reference: string,
    options: CallOptions = {},
  ): Promise<{ digest: string | undefined; mediaType: string; size: number } | undefined> {
    const response = await this.request("HEAD", `/v2/${repository}/manifests/${reference}`, {
      scopes: [pullScope(repository)],
      headers: { Accept: MANIFEST_ACCEPT },
      ...(options.signal && { signal: options.signal }),
    });
    await response.body?.cancel();
    if (response.status === 404) return undefined;
    if (!response.ok) {
      throw await this.fail(response, `${this.registry}/${repository}:${reference}`);
    }
    return {
      digest: response.headers.get("Docker-Content-Digest") ?? undefined,
      mediaType: essence(response.headers.get("Content-Type")),
      size: Number(response.headers.get("Content-Length") ?? -1),
    };
  }

  /** PUT a manifest's exact bytes under a tag or its digest; returns whether the registry took a subject. */
  async putManifest(
    repository: string,
    reference: string,
    manifest: { bytes: Uint8Array; mediaType: string },
    options: CallOptions = {},
  ): Promise<{ subjectAccepted: boolean }> {
    const response = await this.request("PUT", `/v2/${repository}/manifests/${reference}`, {
      scopes: [pushScope(repository)],
      headers: { "Content-Type": manifest.mediaType },
      body: { length: manifest.bytes.byteLength, open: manifest.bytes },
      ...(options.signal && { signal: options.signal }),
    });
    if (response.status !== 201 && response.status !== 200 && response.status !== 202) {
      throw await this.fail(response, `${this.registry}/${repository}: manifest ${reference}`);
    }
    await response.body?.cancel();
    return { subjectAccepted: response.headers.has("OCI-Subject") };
  }

  /**
   * Whether the repository exists, as its first tags page says (asked with push scope, for a
   * caller about to push): false on a 404 `NAME_UNKNOWN`, true on a 200, undefined otherwise.
   */
  async hasRepository(repository: string, options: CallOptions = {}): Promise<boolean | undefined> {
    try {
      const response = await this.request("GET", `/v2/${repository}/tags/list?n=1`, {
        scopes: [pushScope(repository)],
        ...(options.signal && { signal: options.signal }),
      });
      if (response.status === 200) {
        await response.body?.cancel();
        return true;
      }
      if (response.status !== 404) {
        await response.body?.cancel();
        return undefined;
      }
      const body = await response.json().catch(() => undefined) as
        | { errors?: { code?: unknown }[] }
        | undefined;
      return body?.errors?.some((e) => e.code === "NAME_UNKNOWN") ? false : undefined;
    } catch (error) {
      if (options.signal?.aborted) throw error;
      return undefined;
    }
  }

  /** Whether the repository has a blob (HEAD). */
  async hasBlob(
    repository: string,
    digest: string,
    options: CallOptions & { push?: boolean } = {},
  ): Promise<boolean> {
    return (await this.statBlob(repository, digest, options)) !== undefined;
  }

  /** A blob's size and media type (HEAD), or undefined when the repository lacks it. */
  async statBlob(
    repository: string,
    digest: string,
    options: CallOptions & { push?: boolean } = {},
  ): Promise<{ size: number; mediaType: string } | undefined> {
    const response = await this.request("HEAD", `/v2/${repository}/blobs/${digest}`, {
      scopes: [options.push ? pushScope(repository) : pullScope(repository)],
      ...(options.signal && { signal: options.signal }),
    });
    await response.body?.cancel();
    if (response.status === 404) return undefined;
    if (!response.ok) throw await this.fail(response, `${this.registry}/${repository}@${digest}`);
    const length = response.headers.get("Content-Length");
    return {
      size: length === null ? -1 : Number(length),
      mediaType: response.headers.get("Content-Type") ?? "application/octet-stream",
    };
  }

  /**
   * A blob as a stream, verified against `descriptor` (unless `verify` is false) and resumed
   * with `Range` when the connection drops. The stream errors, naming the digest, on a mismatch.
   */
  async getBlob(
    repository: string,
    descriptor: { digest: string; size: number },
    options: CallOptions & { verify?: boolean; resumes?: number } = {},
  ): Promise<ReadableStream<Uint8Array>> {
    const what = `${this.registry}/${repository}@${descriptor.digest}`;
    const signal = options.signal;
    const open = async (
      offset: number,
    ): Promise<{ body: ReadableStream<Uint8Array>; skip: number }> => {
      const response = await this.request("GET", `/v2/${repository}/blobs/${descriptor.digest}`, {
        scopes: [pullScope(repository)],
        headers: offset > 0 ? { Range: `bytes=${offset}-` } : {},
        ...(signal && { signal }),
      });
      if (offset > 0 && response.status === 206) {
        const start = /bytes (\d+)-/.exec(response.headers.get("Content-Range") ?? "");
        if (start && Number(start[1]) === offset && response.body) {
          return { body: response.body, skip: 0 };
        }
        await response.body?.cancel();
        throw new ClientError("protocol", `${what}: bad Content-Range on resume`);
      }
      if (response.status !== 200 || !response.body) throw await this.fail(response, what);
      return { body: response.body, skip: offset };
    };
    let current = await open(0);
    let reader = viewReader(current.body);
    let skip = current.skip;
    let received = 0;
    let resumes = 0;
    const maxResumes = options.resumes ?? 5;
    // A byte stream: each read fills the reader's own buffer (no allocation per chunk).
    const stream = viewSourceStream({
      async read(given) {
        const offset = given.byteOffset;
        const length = given.byteLength;
        const bufferLength = given.buffer.byteLength;
        let view = given;
        while (true) {
          let result: { done: boolean; value: Uint8Array<ArrayBuffer> };
          try {
            result = await reader.read(view);
          } catch (error) {
            if (signal?.aborted || error instanceof ClientError || resumes >= maxResumes) {
              throw error instanceof ClientError ? error : new ClientError(
                "unreachable",
                `${what}: download failed after ${received} bytes: ${errorMessage(error)}`,
              );
            }
            resumes++;
            // A failed read into a byte stream keeps the buffer: go on in a fresh one.
            if (view.buffer.byteLength === 0) {
              view = new Uint8Array(new ArrayBuffer(bufferLength), offset, length);
            }
            reader.releaseLock();
            current = await open(received);
            reader = viewReader(current.body);
            skip = current.skip;
            continue;
          }
          // A read again (a resume's, or past skipped bytes) fills the same memory.
          const again = () => new Uint8Array(result.value.buffer, offset, length);
          if (result.done) {
            if (descriptor.size >= 0 && received < descriptor.size) {
              // Resumed by the next read's error.
              reader.releaseLock();
              reader = failingReader(`connection closed after ${received} bytes`);
              view = again();
              continue;
            }
            return result;
          }
          let n = result.value.byteLength;
          if (skip > 0) {
            const drop = Math.min(skip, n);
            skip -= drop;
            result.value.copyWithin(0, drop);
            n -= drop;
            if (n === 0) {
              view = again();
              continue;
            }
          }
          received += n;
          return { done: false, value: result.value.subarray(0, n) };
        }
      },
      async cancel(reason) {
        await reader.cancel(reason).catch(() => {});
      },
    });
    if (options.verify === false) return stream;
    return verifying(stream, descriptor.digest, descriptor.size);
  }

  /**
   * A blob's bytes from `offset` as the response's own byte stream (BYOB reads fill large
   * buffers), unverified and not resumed: for callers that hash and resume themselves.
   */
  async openBlob(
    repository: string,
    digest: string,
    offset = 0,
    options: CallOptions = {},
  ): Promise<ReadableStream<Uint8Array>> {
    const what = `${this.registry}/${repository}@${digest}`;
    const response = await this.request("GET", `/v2/${repository}/blobs/${digest}`, {
      scopes: [pullScope(repository)],
      headers: offset > 0 ? { Range: `bytes=${offset}-` } : {},
      ...(options.signal && { signal: options.signal }),
    });
    const expected = offset > 0 ? 206 : 200;
    if (response.status === expected && response.body) {
      const start = /bytes (\d+)-/.exec(response.headers.get("Content-Range") ?? "");
      if (offset === 0 || (start && Number(start[1]) === offset)) return response.body;
      await response.body.cancel();
      throw new ClientError("protocol", `${what}: bad Content-Range on resume`);
    }
    throw await this.fail(response, what);
  }

  /** Mount a blob from another repository of this registry; true when it was mounted. */
  async mountBlob(
    repository: string,
    digest: string,
    from: string,
    options: CallOptions = {},
  ): Promise<{ mounted: boolean; location?: string }> {
    const query = new URLSearchParams({ mount: digest, from });
    const response = await this.request("POST", `/v2/${repository}/blobs/uploads/?${query}`, {
      scopes: from === repository
        ? [pushScope(repository)]
        : [pushScope(repository), pullScope(from)],
      body: { length: 0, open: new Uint8Array(0) },
      ...(options.signal && { signal: options.signal }),
    });
    await response.body?.cancel();
    if (response.status === 201) return { mounted: true };
    if (response.status === 202) {
      const location = response.headers.get("Location");
      return { mounted: false, ...(location && { location }) };
    }
    throw await this.fail(response, `${this.registry}/${repository}: mount ${digest}`);
  }

  /**
   * Push a blob: nothing when it exists (unless `checked`), a mount when `mountFrom` names a
   * repository of this registry that has it, else an upload: one PUT up to `monolithicLimit`
   * bytes, a streamed PATCH with `Content-Length` above. `open` gives the bytes (called again
   * when an upload is retried); the registry verifies the digest before the blob is visible.
   * Unless `checked`, a repository known to mount from itself ({@link selfMounts}) is asked with
   * that `POST` instead of a `HEAD`; the first upload to a repository learns that (one `POST`),
   * unless `learn` is false (a caller that checks nothing there, as into a new repository).
   */
  async pushBlob(
    repository: string,
    descriptor: { digest: string; size: number },
    open: () => Promise<ReadableStream<Uint8Array>>,
    options: CallOptions & {
      mountFrom?: string;
      checked?: boolean;
      learn?: boolean;
      retries?: number;
    } = {},
  ): Promise<PushOutcome> {
    const signal = options.signal;
    const sig = signal ? { signal } : {};
    const mounting = options.mountFrom !== undefined && options.mountFrom !== repository;
    // The existence check and the upload's start in one request (a 202 is a session to upload to).
    const selfCheck = !options.checked && !mounting && this.selfMounts(repository) === true;
    if (
      !options.checked && !selfCheck &&
      await this.hasBlob(repository, descriptor.digest, { ...sig, push: true })
    ) {
      return "exists";
    }
    const what = `${this.registry}/${repository}@${descriptor.digest}`;
    const retries = options.retries ?? 3;
    for (let attempt = 0;; attempt++) {
      // Without a mount to try, the bytes are opened while the upload session starts (a source's
      // first byte and the registry's Location arrive in the same round trip).
      let early = mounting || selfCheck ? undefined : open();
      early?.catch(() => {});
      const bytes = () => {
        const opened = early ?? open();
        early = undefined;
        return opened;
      };
      try {
        let location: string | undefined;
        if (mounting || selfCheck) {
          const from = mounting ? options.mountFrom! : repository;
          const mount = await this.mountBlob(repository, descriptor.digest, from, sig);
          if (mount.mounted) return mounting ? "mounted" : "exists";
          location = mount.location;
        }
        location ??= await this.#startUpload(repository, what, signal);
        await this.#upload(repository, location, descriptor, bytes, what, signal);
        if (options.learn !== false) {
          await this.#learnSelfMount(repository, descriptor.digest, signal);
        }
        return "uploaded";
      } catch (error) {
        early?.then((stream) => stream.cancel(), () => {});
        early = undefined;
        const retryable = error instanceof ClientError
          ? error.kind === "unreachable" || (error.status !== undefined && error.status >= 500)
          : !(signal?.aborted);
        if (!retryable || attempt >= retries || signal?.aborted) throw error;
      }
    }
  }

  /**
   * Learn (once per repository) whether it mounts from itself: `digest` was just uploaded there,
   * so a 201 says yes; a 202 says no, and its session is cancelled. Only the first caller waits
   * for the answer (one round trip); the others go on with `HEAD`s meanwhile.
   */
  async #learnSelfMount(repository: string, digest: string, signal?: AbortSignal): Promise<void> {
    if (this.#selfMount.has(repository)) return;
    const learning = this.mountBlob(repository, digest, repository, signal ? { signal } : {})
      .then(async ({ mounted, location }) => {
        if (!mounted && location) await this.#cancelUpload(location, repository, signal);
        return mounted;
      })
      .catch(() => false);
    this.#selfMount.set(repository, learning);
    this.#selfMount.set(repository, await learning);
  }

  /** Cancel an upload session (best effort: a registry purges forgotten ones itself). */
  async #cancelUpload(location: string, repository: string, signal?: AbortSignal) {
    try {
      const base = await this.ping();
      const response = await this.request("DELETE", new URL(location, `${base}/`).href, {
        scopes: [pushScope(repository)],
        retries: 0,
        ...(signal && { signal }),
      });
      await response.body?.cancel();
    } catch { /* left to the registry's purge */ }
  }

  async #startUpload(repository: string, what: string, signal?: AbortSignal): Promise<string> {
    const response = await this.request("POST", `/v2/${repository}/blobs/uploads/`, {
      scopes: [pushScope(repository)],
      body: { length: 0, open: new Uint8Array(0) },
      ...(signal && { signal }),
    });
    await response.body?.cancel().catch(() => {});
    const location = response.headers.get("Location");
    if (response.status !== 202 || !location) throw await this.fail(response, `${what}: upload`);
    return location;
  }

  async #upload(
    repository: string,
    location: string,
    descriptor: { digest: string; size: number },
    open: () => Promise<ReadableStream<Uint8Array>>,
    what: string,
    signal?: AbortSignal,
  ): Promise<void> {
    const base = await this.ping();
    const scopes = [pushScope(repository)];
    const sig = signal ? { signal } : {};
    const limit = this.#options.monolithicLimit ?? 16 * 1024 * 1024;
    const body: RequestBody = { length: descriptor.size, open };
    let url = new URL(location, `${base}/`);
    if (descriptor.size > limit) {
      const patch = await this.request("PATCH", url.href, {
        scopes,
        headers: { "Content-Type": "application/octet-stream" },
        body,
        retries: 0,
        ...sig,
      });
      await patch.body?.cancel().catch(() => {});
      const next = patch.headers.get("Location");
      if (patch.status !== 202 || !next) throw await this.fail(patch, `${what}: upload`);
      url = new URL(next, `${base}/`);
    }
    url.searchParams.set("digest", descriptor.digest);
    const monolithic = descriptor.size <= limit;
    const put = await this.request("PUT", url.href, {
      scopes,
      headers: { "Content-Type": "application/octet-stream" },
      body: monolithic ? body : { length: 0, open: new Uint8Array(0) },
      retries: 0,
      ...sig,
    });
    await put.body?.cancel().catch(() => {});
    if (put.status !== 201) {
      if (put.status === 400) {
        throw new ClientError("digest-mismatch", `${what}: the registry refused the digest`, {
          status: 400,
        });
      }
      throw await this.fail(put, `${what}: upload`);
    }
  }

  /** Every tag of a repository (following `Link` pages). */
  async listTags(repository: string, options: CallOptions = {}): Promise<string[]> {
    const tags: string[] = [];
    await this.#paged(
      `/v2/${repository}/tags/list?n=1000`,
      [pullScope(repository)],
      options,
      (body) => {
        tags.push(...((body as { tags?: string[] | null }).tags ?? []));
      },
      `${this.registry}/${repository}`,
    );
    return tags;
  }

  /** Every repository of the registry (the catalog, following `Link` pages). */
  async catalog(options: CallOptions = {}): Promise<string[]> {
    const names: string[] = [];
    await this.#paged("/v2/_catalog?n=1000", ["registry:catalog:*"], options, (body) => {
      names.push(...((body as { repositories?: string[] | null }).repositories ?? []));
    }, `${this.registry} catalog`);
    return names;
  }

  async #paged(
    first: string,
    scopes: string[],
    options: CallOptions,
    take: (body: unknown) => void,
    what: string,
  ): Promise<void> {
    let path: string | undefined = first;
    for (let page = 0; path && page < 10_000; page++) {
      const response: HttpResponse = await this.request("GET", path, {
        scopes,
        ...(options.signal && { signal: options.signal }),
      });
      if (!response.ok) throw await this.fail(response, what);
      take(await response.json());
      const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(response.headers.get("Link") ?? "");
      path = link ? link[1] : undefined;
    }
  }

  /**
   * The referrers of a manifest: the OCI 1.1 referrers API, else the `sha256-<hex>` tag schema.
   */
  async referrers(
    repository: string,
    digest: string,
    options: CallOptions = {},
  ): Promise<Descriptor[]> {
    const response = await this.request("GET", `/v2/${repository}/referrers/${digest}`, {
      scopes: [pullScope(repository)],
      headers: { Accept: OCI_INDEX },
      ...(options.signal && { signal: options.signal }),
    });
    if (response.ok && essence(response.headers.get("Content-Type")) === OCI_INDEX) {
      const index = await response.json() as { manifests?: Descriptor[] };
      return index.manifests ?? [];
    }
    await response.body?.cancel();
    if (
      response.ok || response.status === 404 || response.status === 400 || response.status === 405
    ) {
      return (await this.fallbackReferrers(repository, digest, options))?.descriptors ?? [];
    }
    throw await this.fail(response, `${this.registry}/${repository}: referrers of ${digest}`);
  }

  /** The referrers index under the fallback tag `sha256-<hex>`, when there is one. */
  async fallbackReferrers(
    repository: string,
    digest: string,
    options: CallOptions = {},
  ): Promise<{ descriptors: Descriptor[]; index: Record<string, unknown> } | undefined> {
    const tag = fallbackTag(digest);
    try {
      const found = await this.getManifest(repository, tag, { ...options, accept: OCI_INDEX });
      const index = JSON.parse(new TextDecoder().decode(found.bytes)) as Record<string, unknown>;
      const manifests = Array.isArray(index.manifests) ? index.manifests as Descriptor[] : [];
      return { descriptors: manifests, index };
    } catch (error) {
      if (error instanceof ClientError && error.kind === "not-found") return undefined;
      throw error;
    }
  }
}

/** A reader whose next read fails (a body that ended early, to resume like a dropped one). */
function failingReader(message: string): ViewReader {
  return {
    read: () => Promise.reject(new Error(message)),
    cancel: () => Promise.resolve(),
    releaseLock: () => {},
  };
}

/** The referrers fallback tag of a digest: `sha256:abc` → `sha256-abc`. */
export function fallbackTag(digest: string): string {
  return digest.replace(":", "-");
}

/** `repository:NAME:pull`. */
export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

/** `repository:NAME:pull,push`. */
export function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}

/** A manifest's media type: the `Content-Type`, else its `mediaType` field, else OCI by shape. */
export function manifestMediaType(contentType: string | null, bytes: Uint8Array): string {
  const declared = essence(contentType);
  if (declared && declared !== "application/json" && declared !== "text/plain") return declared;
  try {
    const doc = JSON.parse(new TextDecoder().decode(bytes)) as {
      mediaType?: string;
      manifests?: unknown;
      schemaVersion?: number;
    };
    if (doc.schemaVersion === 1) return DOCKER_SCHEMA1[0]!;
    if (typeof doc.mediaType === "string") return doc.mediaType;
    return doc.manifests ? OCI_INDEX : OCI_MANIFEST;
  } catch {
    return declared;
  }
}

/** Read a whole body up to `limit` bytes. */
export async function readLimited(
  response: HttpResponse,
  limit: number,
  what: string,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (!response.body) return new Uint8Array(0);
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    if (size > limit) {
      throw new ClientError("protocol", `${what}: manifest larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
