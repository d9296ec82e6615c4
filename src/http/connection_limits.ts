/**
 * Defaults of the connection limits the HTTP server enforces (src/http/server.ts).
 *
 * @module
 */

/** Connection limits. */
export interface ConnectionLimits {
  /** A connection whose request headers are not complete this long after they start (or after
   * it opened) is closed, in milliseconds. */
  headerTimeoutMs: number;
  /** A keep-alive connection with no request for this long is closed, in milliseconds. */
  idleTimeoutMs: number;
  /** A connection whose one write of a response has not completed for this long (the client
   * stopped reading) is closed, in milliseconds. */
  writeTimeoutMs: number;
  /** Most connections open at once; more are closed as they arrive. */
  maxConnections: number;
}

/** Default connection limits. */
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  headerTimeoutMs: 20_000,
  idleTimeoutMs: 60_000,
  writeTimeoutMs: 60_000,
  maxConnections: 1024,
};
