/**
 * Credential helpers of `~/.docker/config.json` (`credHelpers`, `credsStore`), run as real
 * programs: each test writes a `docker-credential-NAME` script into a temporary folder put first
 * on PATH; and identity tokens (user `<token>`) exchanged at the token server as OAuth2 refresh
 * tokens.
 *
 * @module
 */
import assert from "node:assert/strict";
import { findCredentials } from "../../src/client/credentials.ts";
import { ClientError } from "../../src/client/errors.ts";
import { RegistryClient } from "../../src/client/registry_client.ts";
import { startFake } from "./fake_server.ts";

/** A temporary HOME with `.docker/config.json`, and helper scripts on PATH while `body` runs. */
async function withHelpers(
  config: unknown,
  helpers: Record<string, string>,
  body: (env: (key: string) => string | undefined, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "berth-credhelper-" });
  const path = Deno.env.get("PATH") ?? "";
  try {
    await Deno.mkdir(`${dir}/home/.docker`, { recursive: true });
    await Deno.mkdir(`${dir}/bin`);
    await Deno.writeTextFile(`${dir}/home/.docker/config.json`, JSON.stringify(config));
    for (const [name, script] of Object.entries(helpers)) {
      await Deno.writeTextFile(`${dir}/bin/docker-credential-${name}`, script, { mode: 0o755 });
    }
    Deno.env.set("PATH", `${dir}/bin:${path}`);
    const env = (key: string) => key === "HOME" ? `${dir}/home` : undefined;
    await body(env, dir);
  } finally {
    Deno.env.set("PATH", path);
    await Deno.remove(dir, { recursive: true });
  }
}

/** A helper that logs what it was asked and answers per server URL (else "not found"). */
function helperScript(log: string, answers: Record<string, { Username: string; Secret: string }>) {
  const cases = Object.entries(answers).map(([server, answer]) =>
    `  '${server}') echo '${JSON.stringify({ ServerURL: server, ...answer })}' ;;`
  ).join("\n");
  return `#!/bin/sh
[ "$1" = get ] || { echo "unexpected action $1" >&2; exit 3; }
read -r server
echo "$server" >> '${log}'
case "$server" in
${cases}
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`;
}

Deno.test("credentials: credHelpers names the helper per registry; it gets the server on stdin", async () => {
  await withHelpers(
    {
      auths: { "r.example": { auth: btoa("file:entry") } },
      credHelpers: { "r.example": "fake", "https://index.docker.io/v1/": "fake" },
    },
    {},
    async (env, dir) => {
      await Deno.writeTextFile(
        `${dir}/bin/docker-credential-fake`,
        helperScript(`${dir}/log`, {
          "r.example": { Username: "alice", Secret: "s3cret" },
          "https://index.docker.io/v1/": { Username: "hubuser", Secret: "hubpass" },
        }),
        { mode: 0o755 },
      );
      assert.deepEqual(await findCredentials("r.example", "team/app", { env }), {
        username: "alice",
        password: "s3cret",
      });
      assert.deepEqual(await findCredentials("docker.io", "library/alpine", { env }), {
        username: "hubuser",
        password: "hubpass",
      });
      // A registry without a helper entry and no credsStore: nothing, the helper is not asked.
      assert.equal(await findCredentials("other.example", "x", { env }), undefined);
      const asked = (await Deno.readTextFile(`${dir}/log`)).trim().split("\n");
      assert.deepEqual(asked, ["r.example", "https://index.docker.io/v1/"]);
    },
  );
});

Deno.test("credentials: credsStore serves every registry; 'not found' falls back to auths", async () => {
  await withHelpers(
    { credsStore: "store", auths: { "b.example": { auth: btoa("bob:pw") } } },
    {},
    async (env, dir) => {
      await Deno.writeTextFile(
        `${dir}/bin/docker-credential-store`,
        helperScript(`${dir}/log`, {
          "a.example:5000": { Username: "<token>", Secret: "identity-token" },
        }),
        { mode: 0o755 },
      );
      assert.deepEqual(await findCredentials("a.example:5000", "x", { env }), {
        username: "<token>",
        password: "identity-token",
      });
      assert.deepEqual(await findCredentials("b.example", "x", { env }), {
        username: "bob",
        password: "pw",
      });
      assert.equal(await findCredentials("c.example", "x", { env }), undefined);
    },
  );
});

Deno.test("credentials: a helper that fails or is missing is an auth error naming it", async () => {
  await withHelpers(
    { credHelpers: { "a.example": "broken", "b.example": "absent" } },
    { broken: "#!/bin/sh\necho 'keychain locked' >&2\nexit 1\n" },
    async (env) => {
      await assert.rejects(
        () => findCredentials("a.example", "x", { env }),
        (error: unknown) =>
          error instanceof ClientError && error.kind === "auth" &&
          /docker-credential-broken.*keychain locked/.test(error.message),
      );
      await assert.rejects(
        () => findCredentials("b.example", "x", { env }),
        (error: unknown) =>
          error instanceof ClientError && error.kind === "auth" &&
          error.message.includes("docker-credential-absent"),
      );
    },
  );
});

Deno.test("credentials: an identity token is exchanged as an OAuth2 refresh token", async () => {
  const forms: URLSearchParams[] = [];
  const server = await startFake(async (request, url) => {
    if (url.pathname === "/token") {
      if (request.method !== "POST") return new Response("GET not allowed", { status: 405 });
      const form = new URLSearchParams(await request.text());
      forms.push(form);
      if (form.get("refresh_token") !== "identity-token") {
        return new Response("{}", { status: 401 });
      }
      return Response.json({ access_token: "access-1", expires_in: 300 });
    }
    if (request.headers.get("Authorization") !== "Bearer access-1") {
      return new Response("{}", {
        status: 401,
        headers: {
          "WWW-Authenticate": `Bearer realm="${server.url}/token",service="fake"`,
        },
      });
    }
    return Response.json({ name: "app", tags: ["v1"] });
  });
  try {
    const client = new RegistryClient({
      registry: server.url,
      credentials: { username: "<token>", password: "identity-token" },
    });
    assert.deepEqual(await client.listTags("app"), ["v1"]);
    client.close();
    assert.equal(forms.length, 1);
    assert.equal(forms[0]!.get("grant_type"), "refresh_token");
    assert.equal(forms[0]!.get("service"), "fake");
    assert.equal(forms[0]!.get("scope"), "repository:app:pull");

    const refused = new RegistryClient({
      registry: server.url,
      credentials: { username: "<token>", password: "stale" },
    });
    await assert.rejects(
      () => refused.listTags("app"),
      (error: unknown) =>
        error instanceof ClientError && /identity token refused/.test(error.message),
    );
    refused.close();
  } finally {
    await server.close();
  }
});
