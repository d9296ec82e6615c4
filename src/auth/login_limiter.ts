/**
 * Failed-login limits: after too many wrong passwords for one user name, or from one client
 * address, within a window, further password checks for it are refused (429) until the window
 * ends, without spending a bcrypt comparison on them.
 *
 * @module
 */

/** The numbers of the limiter (defaults in {@link DEFAULT_LOGIN_LIMITS}). */
export interface LoginLimits {
  /** Failed logins one user name may take per window. */
  perUser: number;
  /** Failed logins one client address may make per window. */
  perAddress: number;
  /** The window, in milliseconds, counted from its first failure. */
  windowMs: number;
}

/** 10 failures per user, 30 per address, per minute. */
export const DEFAULT_LOGIN_LIMITS: LoginLimits = { perUser: 10, perAddress: 30, windowMs: 60_000 };

/** Most user names and addresses tracked at once (the oldest windows are dropped beyond). */
const MAX_TRACKED = 10_000;
/** Longest part of a user name kept as a key (names up to the header limit would cost memory). */
const MAX_KEY = 256;

/** A refusal: who is limited and for how long. */
export interface LoginRefusal {
  /** What hit its limit: `user` or `address`. */
  reason: "user" | "address";
  /** Seconds until the window ends. */
  retryAfterSeconds: number;
}

interface Window {
  failures: number;
  startedAt: number;
}

/** Counts failed logins per user name and per client address. */
export class LoginLimiter {
  readonly #limits: LoginLimits;
  readonly #now: () => number;
  readonly #windows = new Map<string, Window>();

  /** A limiter with `limits` (and a clock, for tests). */
  constructor(limits: LoginLimits = DEFAULT_LOGIN_LIMITS, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
  }

  /** Why a password check for `user` from `address` is refused now, or `undefined`. */
  refusal(user: string, address: string): LoginRefusal | undefined {
    const byUser = this.#blocked(userKey(user), this.#limits.perUser);
    if (byUser !== undefined) return { reason: "user", retryAfterSeconds: byUser };
    const byAddress = this.#blocked(`a:${address.slice(0, MAX_KEY)}`, this.#limits.perAddress);
    if (byAddress !== undefined) return { reason: "address", retryAfterSeconds: byAddress };
    return undefined;
  }

  /**
   * Count a wrong password (or unknown user) for `user` from `address`; returns what this failure
   * brought to its limit (`user`, `address`), or `undefined`.
   */
  failed(user: string, address: string): LoginRefusal["reason"] | undefined {
    const byUser = this.#count(userKey(user)) === this.#limits.perUser;
    const byAddress = this.#count(`a:${address.slice(0, MAX_KEY)}`) === this.#limits.perAddress;
    return byUser ? "user" : byAddress ? "address" : undefined;
  }

  /** A correct password: the user's failures are forgotten (the address's are not). */
  succeeded(user: string): void {
    this.#windows.delete(userKey(user));
  }

  /** Seconds left when `key` is at its limit, else `undefined`. */
  #blocked(key: string, limit: number): number | undefined {
    const window = this.#current(key);
    if (!window || window.failures < limit) return undefined;
    const left = window.startedAt + this.#limits.windowMs - this.#now();
    return Math.max(1, Math.ceil(left / 1000));
  }

  /** The window of `key` still running, if any (an ended one is dropped). */
  #current(key: string): Window | undefined {
    const window = this.#windows.get(key);
    if (window && this.#now() - window.startedAt >= this.#limits.windowMs) {
      this.#windows.delete(key);
      return undefined;
    }
    return window;
  }

  /** Count one failure for `key`; returns the failures of its window. */
  #count(key: string): number {
    const window = this.#current(key);
    if (window) return ++window.failures;
    if (this.#windows.size >= MAX_TRACKED) this.#evict();
    this.#windows.set(key, { failures: 1, startedAt: this.#now() });
    return 1;
  }

  /** Drop ended windows; when none ended, the oldest tenth. */
  #evict(): void {
    const now = this.#now();
    for (const [key, window] of this.#windows) {
      if (now - window.startedAt >= this.#limits.windowMs) this.#windows.delete(key);
    }
    if (this.#windows.size < MAX_TRACKED) return;
    let drop = Math.ceil(MAX_TRACKED / 10);
    for (const key of this.#windows.keys()) {
      if (drop-- <= 0) break;
      this.#windows.delete(key);
    }
  }
}

function userKey(user: string): string {
  return `u:${user.slice(0, MAX_KEY)}`;
}
