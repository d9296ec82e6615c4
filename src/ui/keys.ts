/**
 * The UI's signing keys: derived from the configured `http.secret` (one key per purpose, so a
 * session cookie can never pass as a form token), or random per process when none is set.
 *
 * With a secret, replicas behind one load balancer accept each other's cookies and forms, and a
 * restart signs nobody out; without one, each process has its own keys (a restart or another
 * replica signs users out).
 *
 * @module
 */

/** What a key signs. */
export type KeyPurpose = "session" | "csrf";

const encoder = new TextEncoder();

/** The HMAC-SHA-256 key for `purpose`: from `secret` when given, else a fresh random one. */
export async function uiKey(secret: string | undefined, purpose: KeyPurpose): Promise<CryptoKey> {
  const usages: KeyUsage[] = ["sign", "verify"];
  const algorithm = { name: "HMAC", hash: "SHA-256" };
  if (secret === undefined) {
    return await crypto.subtle.generateKey(algorithm, false, usages) as CryptoKey;
  }
  // HMAC(secret, label): a key of its own for each purpose (and apart from other users of it).
  const master = await crypto.subtle.importKey("raw", encoder.encode(secret), algorithm, false, [
    "sign",
  ]);
  const derived = await crypto.subtle.sign("HMAC", master, encoder.encode(`berth-ui-${purpose}`));
  return await crypto.subtle.importKey("raw", derived, algorithm, false, usages);
}
