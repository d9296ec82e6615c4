/**
 * Users from an htpasswd file of bcrypt entries (what `htpasswd -B` writes), verified without
 * telling apart unknown users from wrong passwords by timing, and re-read when the file changes.
 *
 * Reloads: a changed file is read again within {@link RELOAD_CHECK_MS} of the next login; a file
 * that cannot be parsed keeps the users last read and logs an error; a deleted file keeps them
 * for {@link MISSING_GRACE_MS} (a file being replaced), then nobody can log in until it is back.
 *
 * @module
 */
import { createHmac, randomBytes } from "node:crypto";
import type { Logger } from "../ops/log.ts";

/** How long a verified user:password pair is remembered (bcrypt is slow on purpose). */
const CACHE_MS = 60_000;
/** Most remembered pairs (the memory is cleared beyond). */
const MAX_CACHED = 10_000;
/** How often the file's modification time is checked for a reload. */
export const RELOAD_CHECK_MS = 2_000;
/** How long the users of a deleted file stay valid. */
export const MISSING_GRACE_MS = 30_000;
/** The cost of the dummy hash when the file has no entries. */
const DEFAULT_COST = "10";
const BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** Compares a password with a bcrypt hash (a worker pool's `compare`). */
export type PasswordCompare = (password: string, hash: string) => Promise<boolean>;

/** Parse htpasswd text into user → bcrypt hash; other hash kinds are refused. */
export function parseHtpasswd(text: string): Map<string, string> {
  const users = new Map<string, string>();
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (colon <= 0 || !/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) {
      throw new Error(`line ${index + 1}: expected user:bcrypt-hash (htpasswd -B)`);
    }
    users.set(user, hash);
  }
  return users;
}

/**
 * Read and parse an htpasswd file now (at start, or to check a config); throws one line naming
 * `auth.htpasswd.path` and what is wrong (missing, a directory, unreadable, a bad line).
 */
export function readHtpasswdSync(path: string): Map<string, string> {
  const where = `auth.htpasswd.path: ${path}`;
  let text: string;
  try {
    if (!Deno.statSync(path).isFile) {
      throw new Error(`${where} is not a file (expected an htpasswd file of bcrypt entries)`);
    }
    text = Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new Error(`${where} does not exist`);
    if (error instanceof Error && error.message.startsWith(where)) throw error;
    throw new Error(`${where} cannot be read: ${error instanceof Error ? error.message : error}`);
  }
  try {
    return parseHtpasswd(text);
  } catch (error) {
    throw new Error(`${where}: ${(error as Error).message}`);
  }
}

/**
 * A bcrypt hash that matches no password, of the cost most entries use: unknown users are
 * compared against it, so they cost what a known user costs.
 */
export function dummyHash(users: ReadonlyMap<string, string>): string {
  const counts = new Map<string, number>();
  for (const hash of users.values()) {
    const cost = hash.slice(4, 6);
    counts.set(cost, (counts.get(cost) ?? 0) + 1);
  }
  let cost = DEFAULT_COST;
  let best = 0;
  for (const [c, n] of counts) {
    if (n > best || (n === best && c > cost)) [cost, best] = [c, n];
  }
  const random = crypto.getRandomValues(new Uint8Array(53));
  const salted = Array.from(random, (b) => BCRYPT_ALPHABET[b & 63]).join("");
  return `$2y$${cost}$${salted}`;
}

/** Options of an {@link Htpasswd}. */
export interface HtpasswdOptions {
  /** Compares passwords with hashes (off the main thread). */
  compare: PasswordCompare;
  /** Where reloads and reload failures are reported. */
  log?: Logger["log"];
  /** The users already read (by {@link readHtpasswdSync}); default: read the file now. */
  users?: Map<string, string>;
  /** The clock (tests). */
  now?: () => number;
}

/** Options of {@link Htpasswd.verify}. */
export interface VerifyOptions {
  /** Called before a password is compared (not for a remembered one); may throw to refuse. */
  admit?: () => void;
}

/** Users of an htpasswd file, re-read when the file changes. */
export class Htpasswd {
  readonly #path: string;
  readonly #compare: PasswordCompare;
  readonly #log: Logger["log"];
  readonly #now: () => number;
  #users: Map<string, string>;
  #dummy: string;
  /** Modification time and size of the version read (or found broken). */
  #version = "";
  #checkedAt: number;
  #missingSince: number | undefined;
  /** Key of the verification cache (never leaves the process). */
  readonly #cacheKey = randomBytes(32);
  readonly #verified = new Map<string, number>();

  /** Users of the file at `path`. */
  constructor(path: string, options: HtpasswdOptions) {
    this.#path = path;
    this.#compare = options.compare;
    this.#log = options.log ?? (() => {});
    this.#now = options.now ?? Date.now;
    this.#users = options.users ?? readHtpasswdSync(path);
    this.#dummy = dummyHash(this.#users);
    try {
      this.#version = versionOf(Deno.statSync(path));
    } catch {
      this.#version = ""; // gone since it was read: the next check sees it missing
    }
    this.#checkedAt = this.#now();
  }

  /** How many users can log in now. */
  get size(): number {
    return this.#users.size;
  }

  /** Whether `user` exists and `password` is theirs. */
  async verify(user: string, password: string, options: VerifyOptions = {}): Promise<boolean> {
    await this.#refresh();
    const hash = this.#users.get(user);
    const mac = createHmac("sha256", this.#cacheKey).update(`${user}\0${password}`).digest();
    const cacheKey = mac.toString("base64");
    const until = this.#verified.get(cacheKey);
    if (until !== undefined && until > this.#now() && hash !== undefined) return true;
    options.admit?.();
    // An unknown user costs as much as a known one: compare against a hash of the same cost.
    const ok = await this.#compare(password, hash ?? this.#dummy);
    if (!ok || hash === undefined || this.#users.get(user) !== hash) return false;
    if (this.#verified.size >= MAX_CACHED) this.#verified.clear();
    this.#verified.set(cacheKey, this.#now() + CACHE_MS);
    return true;
  }

  /** Re-read the file when it changed (checked at most every {@link RELOAD_CHECK_MS}). */
  async #refresh(): Promise<void> {
    const now = this.#now();
    if (now - this.#checkedAt < RELOAD_CHECK_MS) return;
    this.#checkedAt = now;
    let stat: Deno.FileInfo;
    try {
      stat = await Deno.stat(this.#path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return this.#missing(now);
      return this.#failed("", `cannot be read: ${(error as Error).message}`);
    }
    this.#missingSince = undefined;
    const version = versionOf(stat);
    if (version === this.#version) return;
    if (!stat.isFile) return this.#failed(version, "is not a file");
    let users: Map<string, string>;
    try {
      users = parseHtpasswd(await Deno.readTextFile(this.#path));
    } catch (error) {
      return this.#failed(version, (error as Error).message);
    }
    this.#apply(users, version);
    this.#log("info", "htpasswd reloaded", { path: this.#path, users: users.size });
  }

  #apply(users: Map<string, string>, version: string): void {
    this.#users = users;
    this.#dummy = dummyHash(users);
    this.#version = version;
    this.#verified.clear();
  }

  /** A version of the file that cannot be used: keep the users, and say so once per version. */
  #failed(version: string, reason: string): void {
    if (version !== "" && version === this.#version) return;
    this.#version = version;
    this.#log("error", "htpasswd reload failed: keeping the users read before", {
      path: this.#path,
      reason,
      users: this.#users.size,
    });
  }

  /** The file is gone: after the grace period, nobody can log in until it is back. */
  #missing(now: number): void {
    this.#version = "";
    if (this.#missingSince === undefined) {
      this.#missingSince = now;
      this.#log("error", "htpasswd file missing: its users are refused if it is not back soon", {
        path: this.#path,
        graceSeconds: MISSING_GRACE_MS / 1000,
      });
      return;
    }
    if (now - this.#missingSince < MISSING_GRACE_MS || this.#users.size === 0) return;
    this.#apply(new Map(), "");
    this.#log("error", "htpasswd file missing: no user can log in until it is back", {
      path: this.#path,
    });
  }
}

function versionOf(stat: Deno.FileInfo): string {
  return `${stat.mtime?.getTime() ?? 0}:${stat.size}:${stat.isFile}`;
}
