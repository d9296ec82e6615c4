/**
 * Bearer token auth: the challenge, berth's token endpoint (credentials, scopes granted by the
 * policy), and verification of berth's and external issuers' tokens (signature, expiry,
 * audience, issuer, scope; keys from an X.509 bundle, a JWKS, or an `x5c` chain).
 *
 * @module
 */
import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, sign } from "node:crypto";
import type { Config } from "../../src/config.ts";
import {
  base64url,
  TokenInvalid,
  TokenSigner,
  TrustedKeys,
  verifyToken,
} from "../../src/auth/jwt.ts";
import { digestBytes } from "../../src/oci/digest.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { run } from "../helpers/tools.ts";
import {
  basic,
  POLICY,
  USERS,
  writeHtpasswd,
  writeSelfSignedCert,
  writeSignedCert,
} from "./fixtures.ts";

const SERVICE = "berth-test";
const ISSUER = "berth-issuer";

async function withServer(
  auth: (dir: string) => Promise<Config["auth"]>,
  body: (server: TestServer, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "berth-token-" });
  const server = await startServer({ config: { auth: (await auth(dir))! } });
  try {
    await body(server, dir);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const builtIn = async (dir: string): Promise<Config["auth"]> => ({
  htpasswd: { realm: "berth-test", path: await writeHtpasswd(dir) },
  token: { service: SERVICE, issuer: ISSUER },
  policy: structuredClone(POLICY),
});

async function getToken(server: TestServer, query: string, auth?: string) {
  const response = await fetch(`${server.url}/auth/token?${query}`, {
    headers: auth ? { Authorization: auth } : {},
  });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

function claimsOf(token: string): Record<string, unknown> {
  const payload = token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(payload));
}

async function call(server: TestServer, method: string, path: string, token?: string) {
  const bytes = method === "POST" ? new TextEncoder().encode(path) : undefined;
  const url = method === "POST"
    ? `${server.url}${path}?digest=${digestBytes(bytes!).value}`
    : `${server.url}${path}`;
  const response = await fetch(url, {
    method,
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    ...(bytes && { body: bytes }),
  });
  const text = await response.text();
  return {
    status: response.status,
    challenge: response.headers.get("WWW-Authenticate") ?? "",
    code: text ? JSON.parse(text).errors?.[0]?.code : undefined,
  };
}

Deno.test("token auth: 401 carries a Bearer challenge with realm, service and scope", async () => {
  await withServer(builtIn, async (server) => {
    const base = await call(server, "GET", "/v2/");
    assert.equal(base.status, 401);
    assert.equal(
      base.challenge,
      `Bearer realm="${server.url}/auth/token",service="${SERVICE}"`,
    );
    const push = await call(server, "POST", "/v2/team/app/blobs/uploads/");
    assert.equal(push.status, 401);
    assert.equal(push.code, "UNAUTHORIZED");
    assert.match(push.challenge, /,scope="repository:team\/app:pull,push"$/);
  });
});

Deno.test("token auth: the endpoint checks htpasswd and grants only what the policy allows", async () => {
  await withServer(builtIn, async (server) => {
    const bad = await getToken(server, `service=${SERVICE}`, basic("bob", "wrong"));
    assert.equal(bad.status, 401);
    assert.equal(bad.body.errors[0].code, "UNAUTHORIZED");
    const wrongService = await getToken(server, "service=other", basic("bob", USERS.bob));
    assert.equal(wrongService.status, 400);
    const ok = await getToken(
      server,
      `service=${SERVICE}&scope=repository:team/app:pull,push,delete&scope=repository:secret/x:pull`,
      basic("bob", USERS.bob),
    );
    assert.equal(ok.status, 200);
    assert.equal(ok.body.token, ok.body.access_token);
    assert.equal(typeof ok.body.expires_in, "number");
    assert.ok(!Number.isNaN(Date.parse(ok.body.issued_at)));
    const claims = claimsOf(ok.body.token);
    assert.equal(claims.iss, ISSUER);
    assert.equal(claims.aud, SERVICE);
    assert.equal(claims.sub, "bob");
    assert.deepEqual(claims.access, [
      { type: "repository", name: "team/app", actions: ["pull", "push"] },
      { type: "repository", name: "secret/x", actions: [] },
    ]);
    const anonymous = await getToken(server, "scope=repository:public/a:pull,push");
    assert.deepEqual(claimsOf(anonymous.body.token).access, [
      { type: "repository", name: "public/a", actions: ["pull"] },
    ]);
  });
});

Deno.test("token auth: tokens allow their scope; 403 for what the policy refuses, 401 insufficient_scope otherwise", async () => {
  await withServer(builtIn, async (server) => {
    const { body } = await getToken(
      server,
      "scope=repository:team/app:pull,push,delete",
      basic("bob", USERS.bob),
    );
    const token = body.token as string;
    assert.equal((await call(server, "GET", "/v2/", token)).status, 200);
    assert.equal((await call(server, "POST", "/v2/team/app/blobs/uploads/", token)).status, 201);
    const del = await call(server, "DELETE", `/v2/team/app/manifests/latest`, token);
    assert.equal(del.status, 403);
    assert.equal(del.code, "DENIED");
    const other = await call(server, "GET", "/v2/team/other/manifests/latest", token);
    assert.equal(other.status, 401);
    assert.match(other.challenge, /scope="repository:team\/other:pull",error="insufficient_scope"/);
    const secret = await call(server, "GET", "/v2/secret/x/manifests/latest", token);
    assert.equal(secret.status, 403);
  });
});

Deno.test("token auth: tampered, foreign and garbage tokens answer 401 invalid_token", async () => {
  await withServer(builtIn, async (server) => {
    const { body } = await getToken(
      server,
      "scope=repository:team/app:pull",
      basic("bob", USERS.bob),
    );
    const [h, p, s] = (body.token as string).split(".");
    const claims = claimsOf(body.token);
    const forged = base64url(
      new TextEncoder().encode(JSON.stringify({ ...claims, sub: "alice", access: [] })),
    );
    const noneAlg = base64url(new TextEncoder().encode('{"alg":"none"}'));
    for (
      const bad of [`${h}.${forged}.${s}`, `${noneAlg}.${p}.`, "x.y.z", "garbage", `${h}.${p}`]
    ) {
      const r = await call(server, "GET", "/v2/team/app/manifests/latest", bad);
      assert.equal(r.status, 401, bad);
      assert.equal(r.code, "UNAUTHORIZED");
      assert.match(r.challenge, /error="invalid_token"/);
    }
  });
});

/** Sign claims with a PEM private key (ES256 or RS256) as an external issuer would. */
function signJwt(
  keyPem: string,
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
): string {
  const key = createPrivateKey(keyPem);
  const ec = key.asymmetricKeyType === "ec";
  const h = base64url(
    new TextEncoder().encode(
      JSON.stringify({ typ: "JWT", alg: ec ? "ES256" : "RS256", ...header }),
    ),
  );
  const p = base64url(new TextEncoder().encode(JSON.stringify(claims)));
  const signature = sign("sha256", new TextEncoder().encode(`${h}.${p}`), {
    key,
    ...(ec && { dsaEncoding: "ieee-p1363" as const }),
  });
  return `${h}.${p}.${base64url(signature)}`;
}

function externalClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: "external-issuer",
    sub: "ext-user",
    aud: SERVICE,
    exp: now + 300,
    nbf: now - 10,
    iat: now,
    access: [{ type: "repository", name: "ext/app", actions: ["pull"] }],
    ...overrides,
  };
}

Deno.test("token auth: an external issuer's tokens are checked against its certificate bundle", async () => {
  let keyPem = "";
  await withServer(async (dir) => {
    const { cert, key } = await writeSelfSignedCert(dir, { ec: true, cn: "issuer" });
    keyPem = await Deno.readTextFile(key);
    return {
      token: {
        realm: "https://auth.example.test/token",
        service: SERVICE,
        issuer: "external-issuer",
        rootcertbundle: cert,
      },
    };
  }, async (server, dir) => {
    const good = signJwt(keyPem, externalClaims());
    assert.equal((await call(server, "GET", "/v2/ext/app/manifests/latest", good)).status, 404);
    const push = await call(server, "POST", "/v2/ext/app/blobs/uploads/", good);
    assert.equal(push.status, 401);
    assert.match(push.challenge, /^Bearer realm="https:\/\/auth.example.test\/token"/);
    assert.match(push.challenge, /error="insufficient_scope"/);
    const now = Math.floor(Date.now() / 1000);
    const bad = {
      expired: signJwt(keyPem, externalClaims({ exp: now - 3600 })),
      notYet: signJwt(keyPem, externalClaims({ nbf: now + 3600 })),
      audience: signJwt(keyPem, externalClaims({ aud: "someone-else" })),
      issuer: signJwt(keyPem, externalClaims({ iss: "mallory" })),
    };
    await run("openssl", [
      "ecparam",
      "-name",
      "prime256v1",
      "-genkey",
      "-noout",
      "-out",
      `${dir}/other.pem`,
    ]);
    const otherKey = await Deno.readTextFile(`${dir}/other.pem`);
    const foreign = signJwt(otherKey, externalClaims());
    for (const [why, token] of Object.entries({ ...bad, foreign })) {
      const r = await call(server, "GET", "/v2/ext/app/manifests/latest", token);
      assert.equal(r.status, 401, why);
      assert.equal(r.code, "UNAUTHORIZED", why);
    }
  });
});

Deno.test("token auth: a JWKS of RSA keys is trusted", async () => {
  let keyPem = "";
  await withServer(async (dir) => {
    await run("openssl", ["genrsa", "-out", `${dir}/rsa.pem`, "2048"]);
    keyPem = await Deno.readTextFile(`${dir}/rsa.pem`);
    const jwk = createPublicKey(keyPem).export({ format: "jwk" });
    await Deno.writeTextFile(`${dir}/jwks.json`, JSON.stringify({ keys: [{ ...jwk, kid: "k1" }] }));
    return { token: { service: SERVICE, issuer: "external-issuer", jwks: `${dir}/jwks.json` } };
  }, async (server) => {
    const good = signJwt(keyPem, externalClaims(), { kid: "k1" });
    assert.equal((await call(server, "GET", "/v2/ext/app/manifests/latest", good)).status, 404);
    const noKid = signJwt(keyPem, externalClaims());
    assert.equal((await call(server, "GET", "/v2/ext/app/manifests/latest", noKid)).status, 404);
    const other = await call(server, "GET", "/v2/other/app/manifests/latest", good);
    assert.equal(other.status, 401);
  });
});

Deno.test("token auth: a token carrying an x5c chain to a trusted root is accepted", async () => {
  let leafKey = "";
  let leafDer = "";
  await withServer(async (dir) => {
    const ca = await writeSelfSignedCert(dir, { ec: true, cn: "berth test root" });
    const leaf = await writeSignedCert(dir, "leaf", ca, "/CN=token signer");
    leafKey = await Deno.readTextFile(leaf.key);
    leafDer = (await Deno.readTextFile(leaf.cert)).replace(/-----[^-]+-----|\s/g, "");
    return { token: { service: SERVICE, issuer: "external-issuer", rootcertbundle: ca.cert } };
  }, async (server, dir) => {
    const good = signJwt(leafKey, externalClaims(), { x5c: [leafDer] });
    assert.equal((await call(server, "GET", "/v2/ext/app/manifests/latest", good)).status, 404);
    const self = await writeSelfSignedCert(await Deno.makeTempDir({ dir }), { ec: true });
    const selfDer = (await Deno.readTextFile(self.cert)).replace(/-----[^-]+-----|\s/g, "");
    const rogue = signJwt(await Deno.readTextFile(self.key), externalClaims(), { x5c: [selfDer] });
    assert.equal((await call(server, "GET", "/v2/ext/app/manifests/latest", rogue)).status, 401);
  });
});

Deno.test("token auth: a configured signing key signs berth's tokens; a non-P-256 key is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "berth-token-key-" });
  try {
    await run("openssl", ["genrsa", "-out", `${dir}/rsa.pem`, "2048"]);
    assert.throws(() => new TokenSigner(Deno.readTextFileSync(`${dir}/rsa.pem`)), /P-256/);
    const { key } = await writeSelfSignedCert(dir, { ec: true });
    const signer = new TokenSigner(await Deno.readTextFile(key));
    const keys = new TrustedKeys();
    keys.addJwk(
      createPublicKey(await Deno.readTextFile(key)).export({ format: "jwk" }) as JsonWebKey,
    );
    const now = Math.floor(Date.now() / 1000);
    const token = await signer.sign({ iss: "i", sub: "s", aud: "a", exp: now + 60 });
    const verified = await verifyToken(token, keys, { issuer: "i", audience: "a" });
    assert.equal(verified.claims.sub, "s");
    assert.equal(verified.origin, "external");
    const fresh = await new TokenSigner().sign({ iss: "i", sub: "s", aud: "a", exp: now + 60 });
    await assert.rejects(verifyToken(fresh, keys, { issuer: "i", audience: "a" }), TokenInvalid);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("token auth: malformed signatures, headers and payloads answer 401 invalid_token, never 500", async () => {
  await withServer(builtIn, async (server) => {
    const { body } = await getToken(
      server,
      "scope=repository:team/app:pull",
      basic("bob", USERS.bob),
    );
    const [h, p, s] = (body.token as string).split(".") as [string, string, string];
    // Base64 of length 4n+1 cannot be decoded at all.
    const to4n1 = (text: string) => text + "A".repeat((5 - (text.length % 4)) % 4);
    const malformed = {
      "signature of length 4n+1": `${h}.${p}.${to4n1(s)}`,
      "signature of one character": `${h}.${p}.A`,
      "signature of five characters": `${h}.${p}.AAAAA`,
      "signature with padding": `${h}.${p}.${s}==`,
      "signature not base64url": `${h}.${p}.${s.slice(0, -1)}%`,
      "header of length 4n+1": `${to4n1(h)}.${p}.${s}`,
      "payload of length 4n+1": `${h}.${to4n1(p)}.${s}`,
      "payload not JSON": `${h}.${base64url(new TextEncoder().encode("[1,"))}.${s}`,
      "payload an array": `${h}.${base64url(new TextEncoder().encode("[1]"))}.${s}`,
      "x5c garbage": `${
        base64url(new TextEncoder().encode('{"alg":"ES256","x5c":["AAAAA"]}'))
      }.${p}.${s}`,
      "x5c of a number": `${
        base64url(new TextEncoder().encode('{"alg":"ES256","x5c":[1]}'))
      }.${p}.${s}`,
      "empty": "",
      "dots only": "..",
      "four parts": `${h}.${p}.${s}.${s}`,
    };
    for (const [why, token] of Object.entries(malformed)) {
      const response = await fetch(`${server.url}/v2/team/app/manifests/latest`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      const text = await response.text();
      assert.equal(response.status, 401, why);
      assert.equal(JSON.parse(text).errors[0].code, "UNAUTHORIZED", why);
      const challenge = response.headers.get("WWW-Authenticate") ?? "";
      assert.match(challenge, /^Bearer realm="[^"]+\/auth\/token",service="berth-test"/, why);
    }
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^berth_storage_errors_total 0$/m);
  });
});

Deno.test("token auth: an external token whose jti starts with berth- is not taken for berth's own", async () => {
  let keyPem = "";
  await withServer(async (dir) => {
    await run("openssl", ["genrsa", "-out", `${dir}/rsa.pem`, "2048"]);
    keyPem = await Deno.readTextFile(`${dir}/rsa.pem`);
    const jwk = createPublicKey(keyPem).export({ format: "jwk" });
    await Deno.writeTextFile(`${dir}/jwks.json`, JSON.stringify({ keys: [{ ...jwk, kid: "k1" }] }));
    return {
      htpasswd: { realm: "berth-test", path: await writeHtpasswd(dir) },
      token: { service: SERVICE, issuer: ISSUER, jwks: `${dir}/jwks.json` },
      policy: { ...structuredClone(POLICY), admins: ["alice"] },
    };
  }, async (server) => {
    // alice may do anything by the policy; the foreign token grants only ext/app.
    const { body } = await getToken(
      server,
      "scope=repository:secret/x:pull,push",
      basic("alice", USERS.alice),
    );
    const own = body.token as string;
    assert.equal((await call(server, "POST", "/v2/secret/x/blobs/uploads/", own)).status, 201);
    const foreign = signJwt(
      keyPem,
      externalClaims({ iss: ISSUER, sub: "alice", jti: `berth-${crypto.randomUUID()}` }),
      { kid: "k1" },
    );
    // Its catalog is what the token grants, not what the policy gives alice.
    const catalog = await fetch(`${server.url}/v2/_catalog`, {
      headers: { Authorization: `Bearer ${foreign}` },
    });
    assert.equal(catalog.status, 200);
    assert.deepEqual((await catalog.json()).repositories, []);
    const ownCatalog = await fetch(`${server.url}/v2/_catalog`, {
      headers: { Authorization: `Bearer ${own}` },
    });
    assert.deepEqual((await ownCatalog.json()).repositories, ["secret/x"]);
    // No admin rights: admin endpoints take Basic users or berth's own tokens only.
    const gc = await fetch(`${server.url}/admin/gc?dryRun=true`, {
      method: "POST",
      headers: { Authorization: `Bearer ${foreign}` },
    });
    await gc.body?.cancel();
    assert.equal(gc.status, 403);
    // And a repository the policy would give alice stays refused.
    const secret = await call(server, "GET", "/v2/secret/x/manifests/latest", foreign);
    assert.equal(secret.status, 401);
    assert.match(secret.challenge, /error="insufficient_scope"/);
  });
});

Deno.test("token auth: random garbage in Authorization never answers anything but 401", async () => {
  await withServer(builtIn, async (server) => {
    // A fixed seed: the same cases on every run.
    let seed = 12345;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.%";
    const part = () =>
      Array.from({ length: next(40) }, () => alphabet[next(alphabet.length)]).join("");
    const json = (value: unknown) => base64url(new TextEncoder().encode(JSON.stringify(value)));
    const headers = [
      { alg: "ES256" },
      { alg: "RS256", kid: 5 },
      { alg: "ES384", x5c: "nope" },
      { alg: "ES256", x5c: [] },
      { alg: "RS512", x5c: [part()] },
      { alg: "ES256", jwk: {} },
    ];
    for (let i = 0; i < 120; i++) {
      const token = i % 3 === 0
        ? `${part()}.${part()}.${part()}`
        : `${json(headers[next(headers.length)])}.${
          json({ iss: ISSUER, aud: SERVICE, exp: "x" })
        }.${part()}`;
      const scheme = ["Bearer", "bearer", "Basic", "BEARER"][next(4)];
      const response = await fetch(`${server.url}/v2/team/app/manifests/latest`, {
        headers: { Authorization: `${scheme} ${token}` },
      });
      const text = await response.text();
      assert.equal(response.status, 401, `${scheme} ${token}: ${text}`);
      assert.equal(JSON.parse(text).errors[0].code, "UNAUTHORIZED");
    }
  });
});

Deno.test("token auth: berth's own key also trusted as an external certificate still makes berth's tokens", async () => {
  const signer = new TokenSigner();
  const jwk = await signer.publicJwk();
  const keys = new TrustedKeys();
  keys.addJwk(jwk);
  keys.addOwnKey(jwk);
  const now = Math.floor(Date.now() / 1000);
  const token = await signer.sign({ iss: "i", sub: "s", aud: "a", exp: now + 60 });
  assert.equal((await verifyToken(token, keys, { issuer: "i", audience: "a" })).origin, "berth");
  const external = new TrustedKeys();
  external.addJwk(jwk);
  assert.equal(
    (await verifyToken(token, external, { issuer: "i", audience: "a" })).origin,
    "external",
  );
});

Deno.test("token auth: an external token's catalog is its grants, or everything with registry:catalog:*", async () => {
  let keyPem = "";
  await withServer(async (dir) => {
    await run("openssl", ["genrsa", "-out", `${dir}/rsa.pem`, "2048"]);
    keyPem = await Deno.readTextFile(`${dir}/rsa.pem`);
    const jwk = createPublicKey(keyPem).export({ format: "jwk" });
    await Deno.writeTextFile(`${dir}/jwks.json`, JSON.stringify({ keys: [{ ...jwk, kid: "k1" }] }));
    return { token: { service: SERVICE, issuer: "external-issuer", jwks: `${dir}/jwks.json` } };
  }, async (server) => {
    const token = (access: unknown[]) => signJwt(keyPem, externalClaims({ access }), { kid: "k1" });
    const writer = token(["ext/app", "other/app"].map((name) => ({
      type: "repository",
      name,
      actions: ["pull", "push"],
    })));
    for (const repo of ["ext/app", "other/app"]) {
      assert.equal((await call(server, "POST", `/v2/${repo}/blobs/uploads/`, writer)).status, 201);
    }
    const catalog = async (bearer: string) => {
      const response = await fetch(`${server.url}/v2/_catalog`, {
        headers: { Authorization: `Bearer ${bearer}` },
      });
      const body = await response.json();
      return { status: response.status, body, challenge: response.headers.get("WWW-Authenticate") };
    };
    const one = token([{ type: "repository", name: "ext/app", actions: ["pull"] }]);
    assert.deepEqual((await catalog(one)).body.repositories, ["ext/app"]);
    const all = token([{ type: "registry", name: "catalog", actions: ["*"] }]);
    assert.deepEqual((await catalog(all)).body.repositories, ["ext/app", "other/app"]);
    const none = await catalog(token([]));
    assert.equal(none.status, 401);
    assert.match(none.challenge ?? "", /scope="registry:catalog:\*",error="insufficient_scope"/);
  });
});
