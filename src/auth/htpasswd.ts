/**
 * Users from an htpasswd file of bcrypt entries (what `htpasswd -B` writes), verified without
 * telling apart unknown users from wrong passwords by timing.
 *
 * @module
 */
// @ts-types="./bcryptjs.d.ts"
import * as bcrypt from "bcryptjs";
import { createHmac, randomBytes } from "node:crypto";

/** A bcrypt hash of a random password: unknown users are checked against it to spend equal time. */
const DUMMY_HASH = "$2y$05$NkhVMzDUFp5l8IJnJe74kujdsocbM3cxZ6TIyslyVJBo3N/jLUELi";
/** How long a verified user:password pair is remembered (bcrypt is slow on purpose). */
const CACHE_MS = 60_000;
/** How often the file's modification time is checked for a reload. */
const RELOAD_CHECK_MS = 2_000;

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
      throw new Error(`htpasswd line ${index + 1}: expected user:bcrypt-hash (htpasswd -B)`);
    }
    users.set(user, hash);
  }
  return users;
}

/** Users of an htpasswd file, re-read when the file changes. */
export class Htpasswd {
  readonly #path: string;
  #users = new Map<string, string>();
  #mtime = -1;
  #checkedAt = -Infinity;
  /** Key of the verification cache (never leaves the process). */
  readonly #cacheKey = randomBytes(32);
  readonly #verified = new Map<string, number>();

  /** Users from the file at `path` (read on first use). */
  constructor(path: string) {
    this.#path = path;
  }

  /** Read the file now, synchronously (at start); throws when it is missing or malformed. */
  loadSync(): void {
    const stat = Deno.statSync(this.#path);
    this.#users = parseHtpasswd(Deno.readTextFileSync(this.#path));
    this.#mtime = stat.mtime?.getTime() ?? 0;
    this.#checkedAt = Date.now();
  }

  /** Re-read the file when it changed; throws when it is missing or malformed. */
  async load(): Promise<void> {
    const stat = await Deno.stat(this.#path);
    const mtime = stat.mtime?.getTime() ?? 0;
    this.#checkedAt = Date.now();
    if (mtime === this.#mtime && this.#users.size > 0) return;
    this.#users = parseHtpasswd(await Deno.readTextFile(this.#path));
    this.#mtime = mtime;
    this.#verified.clear();
  }

  /** Whether `user` exists and `password` is theirs. */
  async verify(user: string, password: string): Promise<boolean> {
    // A file being rewritten (or gone for a moment) keeps the users last read.
    if (Date.now() - this.#checkedAt > RELOAD_CHECK_MS) await this.load().catch(() => {});
    const hash = this.#users.get(user);
    const mac = createHmac("sha256", this.#cacheKey).update(`${user}\0${password}`).digest();
    const cacheKey = mac.toString("base64");
    const until = this.#verified.get(cacheKey);
    if (until !== undefined && until > Date.now() && hash !== undefined) return true;
    // An unknown user costs as much as a known one: compare against some real hash anyway.
    const ok = await bcrypt.compare(
      password,
      hash ?? this.#users.values().next().value ?? DUMMY_HASH,
    );
    if (!ok || hash === undefined) return false;
    if (this.#verified.size > 10_000) this.#verified.clear();
    this.#verified.set(cacheKey, Date.now() + CACHE_MS);
    return true;
  }
}
