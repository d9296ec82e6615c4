/**
 * Fixtures of the auth tests: htpasswd files made with `htpasswd -B`, a policy, a small OCI image
 * layout for clients to copy, and a self-signed certificate made with `openssl`.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { PolicyConfig } from "../../src/config.ts";
import { run } from "../helpers/tools.ts";

/** Users of the auth tests and their passwords. */
export const USERS = { alice: "alice-secret", bob: "bob-secret", carol: "carol-secret" } as const;

/** The policy of the auth tests. */
export const POLICY: PolicyConfig = {
  groups: { admins: ["alice"], devs: ["bob"] },
  rules: [
    { repositories: ["public/**"], anonymous: true, actions: ["pull"] },
    { repositories: ["**"], groups: ["admins"], actions: ["*"] },
    { repositories: ["team/*"], groups: ["devs"], actions: ["pull", "push"] },
    { repositories: ["team/*", "public/**"], users: ["*"], actions: ["pull"] },
  ],
};

/** Write an htpasswd file with {@link USERS} (bcrypt, as `htpasswd -B` writes it). */
export async function writeHtpasswd(dir: string): Promise<string> {
  const path = `${dir}/htpasswd`;
  let first = true;
  for (const [user, password] of Object.entries(USERS)) {
    await run("htpasswd", [first ? "-cbB" : "-bB", path, user, password]);
    first = false;
  }
  return path;
}

/** Basic credentials header value. */
export function basic(user: string, password: string): string {
  return `Basic ${btoa(`${user}:${password}`)}`;
}

/** A one-layer OCI image layout at `dir` (tag `latest`); returns the manifest's digest. */
export async function writeOciLayout(dir: string, content = "hello from berth\n"): Promise<string> {
  await Deno.mkdir(`${dir}/blobs/sha256`, { recursive: true });
  const put = async (bytes: Uint8Array) => {
    const hex = createHash("sha256").update(bytes).digest("hex");
    await Deno.writeFile(`${dir}/blobs/sha256/${hex}`, bytes);
    return { digest: `sha256:${hex}`, size: bytes.byteLength };
  };
  const src = await Deno.makeTempDir({ prefix: "berth-layer-" });
  try {
    await Deno.writeTextFile(`${src}/hello.txt`, content);
    await run("tar", ["-C", src, "-cf", `${src}.tar`, "hello.txt"]);
    const layerBytes = await Deno.readFile(`${src}.tar`);
    await Deno.remove(`${src}.tar`);
    const layer = await put(layerBytes);
    const diffId = layer.digest;
    const config = await put(new TextEncoder().encode(JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [diffId] },
      config: {},
    })));
    const manifest = await put(new TextEncoder().encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
    })));
    await Deno.writeTextFile(`${dir}/oci-layout`, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    await Deno.writeTextFile(
      `${dir}/index.json`,
      JSON.stringify({
        schemaVersion: 2,
        manifests: [{
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          ...manifest,
          annotations: { "org.opencontainers.image.ref.name": "latest" },
        }],
      }),
    );
    return manifest.digest;
  } finally {
    await Deno.remove(src, { recursive: true });
  }
}

/** A self-signed certificate for 127.0.0.1 (`cert.pem`, `key.pem`) in `dir`. */
export async function writeSelfSignedCert(
  dir: string,
  options: { ec?: boolean; cn?: string } = {},
): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/cert.pem`;
  const key = `${dir}/key.pem`;
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    options.ec ? "ec" : "rsa:2048",
    ...(options.ec ? ["-pkeyopt", "ec_paramgen_curve:P-256"] : []),
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "2",
    "-subj",
    `/CN=${options.cn ?? "127.0.0.1"}`,
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
  ]);
  return { cert, key };
}

/**
 * An EC key (`<name>.key`) and a certificate for `subject` (`<name>.pem`) signed by a CA, with
 * `extensions` (an openssl extfile's lines) when given.
 */
export async function writeSignedCert(
  dir: string,
  name: string,
  ca: { cert: string; key: string },
  subject: string,
  extensions?: string,
): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/${name}.pem`;
  const key = `${dir}/${name}.key`;
  await run("openssl", [
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    key,
    "-out",
    `${dir}/${name}.csr`,
    "-subj",
    subject,
  ]);
  if (extensions !== undefined) await Deno.writeTextFile(`${dir}/${name}.ext`, extensions);
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    `${dir}/${name}.csr`,
    "-CA",
    ca.cert,
    "-CAkey",
    ca.key,
    "-CAcreateserial",
    "-out",
    cert,
    "-days",
    "2",
    ...(extensions !== undefined ? ["-extfile", `${dir}/${name}.ext`] : []),
  ]);
  return { cert, key };
}

/** A test CA (`ca.pem`) and a server certificate it signed for 127.0.0.1 (`server.pem`/`.key`). */
export async function writeServerCert(
  dir: string,
): Promise<{ ca: string; cert: string; key: string }> {
  const ca = await writeSelfSignedCert(dir, { ec: true, cn: "berth test CA" });
  const { cert, key } = await writeSignedCert(
    dir,
    "server",
    ca,
    "/CN=127.0.0.1",
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n" +
      "extendedKeyUsage=serverAuth\n",
  );
  return { ca: ca.cert, cert, key };
}
