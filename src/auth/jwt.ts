/**
 * JSON Web Tokens as docker's token spec uses them: signing (ES256, Web Crypto) for berth's own
 * token endpoint, and verification (ES256/384, RS256/384/512) against berth's key and the keys of
 * trusted external issuers (an X.509 root certificate bundle or a JWKS).
 *
 * @module
 */
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";

/** One entry of a token's `access` claim. */
export interface AccessEntry {
  /** Resource type, e.g. `repository`. */
  type: string;
  /** Resource name, e.g. `library/alpine`. */
  name: string;
  /** Granted actions, e.g. `["pull", "push"]`. */
  actions: string[];
}

/** The claims berth reads from a token. */
export interface TokenClaims {
  /** Issuer. */
  iss: string;
  /** Subject (user name; empty for anonymous). */
  sub: string;
  /** Audience (the service). */
  aud: string | string[];
  /** Expiry (seconds since the epoch). */
  exp: number;
  /** Not before. */
  nbf?: number;
  /** Issued at. */
  iat?: number;
  /** Token id. */
  jti?: string;
  /** Granted access. */
  access?: AccessEntry[];
}

/** Whose key verified a token: berth's own signing key, or a trusted external issuer's. */
export type KeyOrigin = "berth" | "external";

/** A token whose signature and claims were checked, with the origin of the key that verified it. */
export interface VerifiedToken {
  /** The token's claims. */
  claims: TokenClaims;
  /** Whose key verified the signature (never taken from a claim). */
  origin: KeyOrigin;
}

/** What a token is checked against. */
export interface VerifyOptions {
  /** Expected issuer. */
  issuer: string;
  /** Expected audience (the service). */
  audience: string;
  /** Current time in seconds (tests). */
  now?: number;
}

/** Why a token was refused (the message is safe to show; it never contains the token). */
export class TokenInvalid extends Error {
  /** A refusal with a reason. */
  constructor(reason: string) {
    super(reason);
    this.name = "TokenInvalid";
  }
}

const ALGORITHMS = {
  ES256: { kty: "EC", crv: "P-256", hash: "SHA-256" },
  ES384: { kty: "EC", crv: "P-384", hash: "SHA-384" },
  RS256: { kty: "RSA", crv: undefined, hash: "SHA-256" },
  RS384: { kty: "RSA", crv: undefined, hash: "SHA-384" },
  RS512: { kty: "RSA", crv: undefined, hash: "SHA-512" },
} as const;
type Algorithm = keyof typeof ALGORITHMS;
/** Largest token accepted, in characters. */
const MAX_TOKEN_LENGTH = 16 * 1024;
/** Clock skew tolerated on `exp` and `nbf`, in seconds. */
const LEEWAY_SECONDS = 60;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Base64url without padding. */
export function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array<ArrayBuffer> {
  // Base64 of length 4n+1 cannot be decoded (atob throws): refused like any malformed part.
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new TokenInvalid("malformed token");
  }
  let binary: string;
  try {
    binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  } catch {
    throw new TokenInvalid("malformed token");
  }
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** The key id libtrust (and so distribution) gives a public key: base32 of its SPKI's SHA-256. */
export function libtrustKeyId(spki: Uint8Array): string {
  const hash = createHash("sha256").update(spki).digest().subarray(0, 30);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of hash) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)!.join(":");
}

/** A public key that may sign tokens. */
interface TrustedKey {
  kid: string | undefined;
  jwk: JsonWebKey;
  origin: KeyOrigin;
}

/** A key imported for verification, with its origin. */
interface CandidateKey {
  key: CryptoKey;
  origin: KeyOrigin;
}

/** The keys tokens are verified with, and the root certificates `x5c` chains must lead to. */
export class TrustedKeys {
  readonly #keys: TrustedKey[] = [];
  readonly #roots: X509Certificate[] = [];
  readonly #imported = new Map<string, Promise<CryptoKey>>();

  /** Trust a public key (JWK) of an external issuer under an optional key id. */
  addJwk(jwk: JsonWebKey & { kid?: string }, kid = jwk.kid): void {
    this.#keys.push({ kid, jwk, origin: "external" });
  }

  /** Trust berth's own signing key: tokens it verifies are berth's. */
  addOwnKey(jwk: JsonWebKey & { kid?: string }): void {
    this.#keys.push({ kid: jwk.kid, jwk, origin: "berth" });
  }

  /** Trust the keys of every certificate in a PEM bundle. */
  addCertificateBundle(pem: string): void {
    const blocks = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) throw new Error("no certificate in the root certificate bundle");
    for (const block of blocks) {
      const cert = new X509Certificate(block);
      this.#roots.push(cert);
      const spki = cert.publicKey.export({ type: "spki", format: "der" });
      this.addJwk(cert.publicKey.export({ format: "jwk" }) as JsonWebKey, libtrustKeyId(spki));
    }
  }

  /** Trust every key of a JWKS document. */
  addJwks(text: string): void {
    const doc = JSON.parse(text) as { keys?: unknown };
    if (!Array.isArray(doc.keys)) throw new Error("JWKS without a keys list");
    for (const key of doc.keys as (JsonWebKey & { kid?: string })[]) this.addJwk(key);
  }

  /** Candidate keys for a token header, imported for `alg`. */
  async candidates(header: Record<string, unknown>, alg: Algorithm): Promise<CandidateKey[]> {
    const x5c = header.x5c;
    if (Array.isArray(x5c) && x5c.length > 0) {
      return [{ key: await this.#chainKey(x5c, alg), origin: "external" }];
    }
    const { kty, crv } = ALGORITHMS[alg];
    const usable = this.#keys.filter((k) => k.jwk.kty === kty && (!crv || k.jwk.crv === crv));
    const byKid = usable.filter((k) => k.kid !== undefined && k.kid === header.kid);
    // berth's own key first: when it is also in a trusted bundle, its tokens stay berth's.
    const chosen = (byKid.length > 0 ? byKid : usable).toSorted((a, b) =>
      Number(a.origin !== "berth") - Number(b.origin !== "berth")
    );
    return await Promise.all(
      chosen.map(async (k) => ({ key: await this.#import(k.jwk, alg), origin: k.origin })),
    );
  }

  async #chainKey(x5c: unknown[], alg: Algorithm): Promise<CryptoKey> {
    if (this.#roots.length === 0) throw new TokenInvalid("x5c given but no root certificates");
    let chain: X509Certificate[];
    try {
      chain = x5c.map((c) => {
        if (typeof c !== "string") throw new TokenInvalid("malformed x5c");
        return new X509Certificate(Uint8Array.from(atob(c), (ch) => ch.charCodeAt(0)));
      });
    } catch {
      throw new TokenInvalid("malformed x5c");
    }
    const now = Date.now();
    for (const cert of chain) {
      if (Date.parse(cert.validFrom) > now || Date.parse(cert.validTo) < now) {
        throw new TokenInvalid("certificate in x5c not valid now");
      }
    }
    for (let i = 0; i + 1 < chain.length; i++) {
      if (!chain[i]!.checkIssued(chain[i + 1]!) || !chain[i]!.verify(chain[i + 1]!.publicKey)) {
        throw new TokenInvalid("broken x5c chain");
      }
    }
    const top = chain[chain.length - 1]!;
    const anchored = this.#roots.some((root) =>
      root.fingerprint256 === top.fingerprint256 ||
      (top.checkIssued(root) && top.verify(root.publicKey))
    );
    if (!anchored) throw new TokenInvalid("x5c chain does not lead to a trusted root");
    return await this.#import(chain[0]!.publicKey.export({ format: "jwk" }) as JsonWebKey, alg);
  }

  #import(jwk: JsonWebKey, alg: Algorithm): Promise<CryptoKey> {
    const id = `${alg}:${jwk.kty}:${jwk.crv}:${jwk.x}:${jwk.y}:${jwk.n}:${jwk.e}`;
    let key = this.#imported.get(id);
    if (!key) {
      const { kty, crv, hash } = ALGORITHMS[alg];
      const params = kty === "EC"
        ? { name: "ECDSA", namedCurve: crv as string }
        : { name: "RSASSA-PKCS1-v1_5", hash };
      const publicOnly = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, n: jwk.n, e: jwk.e };
      key = crypto.subtle.importKey("jwk", stripUndefined(publicOnly), params, false, ["verify"]);
      key.catch(() => this.#imported.delete(id));
      this.#imported.set(id, key);
    }
    return key;
  }
}

function stripUndefined(o: Record<string, unknown>): JsonWebKey {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as JsonWebKey;
}

/**
 * Verify a token's signature and claims; throws {@link TokenInvalid} (and nothing else: any
 * input that cannot be decoded or checked is a malformed token).
 */
export async function verifyToken(
  token: string,
  keys: TrustedKeys,
  options: VerifyOptions,
): Promise<VerifiedToken> {
  try {
    return await verify(token, keys, options);
  } catch (error) {
    if (error instanceof TokenInvalid) throw error;
    throw new TokenInvalid("malformed token");
  }
}

async function verify(
  token: string,
  keys: TrustedKeys,
  options: VerifyOptions,
): Promise<VerifiedToken> {
  if (token.length > MAX_TOKEN_LENGTH) throw new TokenInvalid("token too long");
  const parts = token.split(".");
  if (parts.length !== 3) throw new TokenInvalid("malformed token");
  const [h, p, s] = parts as [string, string, string];
  let header: Record<string, unknown>;
  let claims: Record<string, unknown>;
  try {
    header = JSON.parse(decoder.decode(fromBase64url(h)));
    claims = JSON.parse(decoder.decode(fromBase64url(p)));
  } catch {
    throw new TokenInvalid("malformed token");
  }
  if (typeof header !== "object" || header === null || typeof claims !== "object" || !claims) {
    throw new TokenInvalid("malformed token");
  }
  const alg = header.alg;
  if (typeof alg !== "string" || !Object.hasOwn(ALGORITHMS, alg)) {
    throw new TokenInvalid("unsupported token algorithm");
  }
  const algorithm = alg as Algorithm;
  const signature = fromBase64url(s);
  const data = encoder.encode(`${h}.${p}`);
  const { kty, hash } = ALGORITHMS[algorithm];
  const params = kty === "EC" ? { name: "ECDSA", hash } : { name: "RSASSA-PKCS1-v1_5" };
  let origin: KeyOrigin | undefined;
  for (
    const candidate of await keys.candidates(header, algorithm).catch((error) => {
      if (error instanceof TokenInvalid) throw error;
      return [];
    })
  ) {
    if (await crypto.subtle.verify(params, candidate.key, signature, data).catch(() => false)) {
      origin = candidate.origin;
      break;
    }
  }
  if (origin === undefined) throw new TokenInvalid("bad token signature");
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const c = claims as Partial<TokenClaims>;
  if (c.iss !== options.issuer) throw new TokenInvalid("wrong token issuer");
  const audiences = Array.isArray(c.aud) ? c.aud : [c.aud];
  if (!audiences.includes(options.audience)) throw new TokenInvalid("wrong token audience");
  if (typeof c.exp !== "number" || c.exp + LEEWAY_SECONDS < now) {
    throw new TokenInvalid("token expired");
  }
  if (typeof c.nbf === "number" && c.nbf - LEEWAY_SECONDS > now) {
    throw new TokenInvalid("token not yet valid");
  }
  if (c.access !== undefined && !isAccessList(c.access)) {
    throw new TokenInvalid("malformed access claim");
  }
  return { claims: { ...c, sub: typeof c.sub === "string" ? c.sub : "" } as TokenClaims, origin };
}

function isAccessList(value: unknown): value is AccessEntry[] {
  return Array.isArray(value) &&
    value.every((e) =>
      typeof e === "object" && e !== null && typeof e.type === "string" &&
      typeof e.name === "string" && Array.isArray(e.actions) &&
      e.actions.every((a: unknown) => typeof a === "string")
    );
}

/**
 * Berth's own token signer (ES256): a key made at start (tokens are short-lived), or a P-256 key
 * from a PEM file, so several instances, or a registry trusting its certificate, verify the same
 * tokens. The `kid` is the key's libtrust id, which distribution matches against its root bundle.
 */
export class TokenSigner {
  readonly #pair: Promise<{ privateKey: CryptoKey; kid: string; jwk: JsonWebKey }>;

  /** A signer with a fresh key pair, or with the P-256 private key of `pem` (throws if unusable). */
  constructor(pem?: string) {
    if (pem !== undefined) {
      const key = createPrivateKey(pem);
      if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
        throw new Error("the token signing key must be an EC P-256 private key (PEM)");
      }
      const spki = createPublicKey(key).export({ type: "spki", format: "der" });
      const jwk = key.export({ format: "jwk" }) as JsonWebKey;
      const imported = crypto.subtle.importKey(
        "jwk",
        { kty: "EC", crv: "P-256", x: jwk.x!, y: jwk.y!, d: jwk.d! },
        { name: "ECDSA", namedCurve: "P-256" },
        false,
        ["sign"],
      );
      this.#pair = imported.then((privateKey) => ({
        privateKey,
        kid: libtrustKeyId(spki),
        jwk: { kty: "EC", crv: "P-256", x: jwk.x!, y: jwk.y! },
      }));
      return;
    }
    this.#pair = (async () => {
      const pair = await crypto.subtle.generateKey(
        { name: "ECDSA", namedCurve: "P-256" },
        true,
        ["sign", "verify"],
      ) as CryptoKeyPair;
      const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
      const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
      return { privateKey: pair.privateKey, kid: libtrustKeyId(spki), jwk };
    })();
  }

  /** The public key (JWK with its `kid`), to trust or publish. */
  async publicJwk(): Promise<JsonWebKey & { kid: string }> {
    const { jwk, kid } = await this.#pair;
    return { kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, y: jwk.y!, kid, alg: "ES256", use: "sig" };
  }

  /** Sign claims into a compact JWS. */
  async sign(claims: TokenClaims): Promise<string> {
    const { privateKey, kid } = await this.#pair;
    const header = base64url(encoder.encode(JSON.stringify({ typ: "JWT", alg: "ES256", kid })));
    const payload = base64url(encoder.encode(JSON.stringify(claims)));
    const signature = await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" },
      privateKey,
      encoder.encode(`${header}.${payload}`),
    );
    return `${header}.${payload}.${base64url(new Uint8Array(signature))}`;
  }
}
