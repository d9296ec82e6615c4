/**
 * {@link ClientPool}: one {@link RegistryClient} per registry for one side of a copy (source or
 * destination), built from that side's flags: credentials (`--src-creds`, auth files), TLS
 * verification and a certificate directory (`*.crt` CAs, `*.cert`/`*.key` client pair).
 *
 * @module
 */
import { type Credentials, findCredentials } from "../client/credentials.ts";
import { ClientError } from "../client/errors.ts";
import type { TlsOptions } from "../client/http.ts";
import { RegistryClient } from "../client/registry_client.ts";

/** Flags of one side. */
export interface SideOptions {
  /** `USER:PASS` given explicitly. */
  credentials?: Credentials;
  /** `--authfile`. */
  authfile?: string;
  /** `--*-tls-verify` (default true; false also allows plain HTTP). */
  tlsVerify?: boolean;
  /** `--*-cert-dir`. */
  certDir?: string;
  /** Parallel blob transfers (used by the engine only). */
  userAgent?: string;
}

/** Registry clients of one side, by registry; close when done. */
export class ClientPool {
  /** The side's flags. */
  readonly options: SideOptions;
  #clients = new Map<string, Promise<RegistryClient>>();

  /** A pool for one side. */
  constructor(options: SideOptions = {}) {
    this.options = options;
  }

  /** The client for `registry` (credentials looked up for `repository` on first use). */
  client(registry: string, repository: string): Promise<RegistryClient> {
    let client = this.#clients.get(registry);
    if (!client) {
      client = this.#make(registry, repository);
      this.#clients.set(registry, client);
      client.catch(() => this.#clients.delete(registry));
    }
    return client;
  }

  async #make(registry: string, repository: string): Promise<RegistryClient> {
    const credentials = this.options.credentials ??
      await findCredentials(registry, repository, {
        ...(this.options.authfile !== undefined && { authfile: this.options.authfile }),
      });
    const tls: TlsOptions = {
      ...(this.options.tlsVerify === false && { verify: false }),
      ...(this.options.certDir !== undefined && await readCertDir(this.options.certDir)),
    };
    return new RegistryClient({
      registry,
      tls,
      ...(credentials && { credentials }),
      userAgent: this.options.userAgent ?? "berth",
    });
  }

  /** Close every client. */
  async close(): Promise<void> {
    for (const client of this.#clients.values()) {
      try {
        (await client).close();
      } catch { /* never made */ }
    }
    this.#clients.clear();
  }
}

/** Read a certificate directory as skopeo does: `*.crt` CAs, a `*.cert` with its `*.key`. */
export async function readCertDir(
  dir: string,
): Promise<Pick<TlsOptions, "caCerts" | "cert" | "key">> {
  const caCerts: string[] = [];
  let cert: string | undefined;
  let key: string | undefined;
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile) continue;
      const path = `${dir}/${entry.name}`;
      if (entry.name.endsWith(".crt")) caCerts.push(await Deno.readTextFile(path));
      else if (entry.name.endsWith(".cert")) {
        cert = await Deno.readTextFile(path);
        key = await Deno.readTextFile(path.replace(/\.cert$/, ".key"));
      }
    }
  } catch (error) {
    throw new ClientError(
      "invalid",
      `cannot read certificate directory ${dir}: ${(error as Error).message}`,
    );
  }
  return { caCerts, ...(cert !== undefined && key !== undefined && { cert, key }) };
}
