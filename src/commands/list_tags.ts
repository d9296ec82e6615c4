/**
 * `berth list-tags REF`: the tags of a registry repository (or of an OCI layout or archive), as
 * skopeo list-tags prints them: `{"Repository": ..., "Tags": [...]}`.
 *
 * @module
 */
import { ClientError } from "../client/errors.ts";
import { parseImageReference } from "../client/reference.ts";
import { ClientPool } from "../transports/client_pool.ts";
import { openSource } from "../transports/mod.ts";
import type { ImageSource } from "../transports/types.ts";
import {
  parseFlags,
  reportFailure,
  SIDE_FLAGS,
  sideOptions,
  withInterrupt,
} from "./client_flags.ts";
import { UsageError } from "./usage_error.ts";

/** Help text of `list-tags`. */
export const LIST_TAGS_USAGE = `Usage: berth list-tags [flags] REF

Print the tags of a repository (docker://HOST/REPO) or of a layout or archive (oci:DIR,
oci-archive:FILE, docker-archive:FILE) as JSON: {"Repository": ..., "Tags": [...]}.

Flags:
  --creds USER:PASS, --authfile FILE, --tls-verify=false, --cert-dir DIR

Exit codes: 0 done, 1 failure, 2 usage error.`;

/** Run `list-tags`. */
export async function listTagsCommand(args: string[]): Promise<number> {
  const flags = parseFlags(args, { flags: SIDE_FLAGS });
  if (flags.positionals.length !== 1) throw new UsageError("list-tags needs one REF");
  const reference = flags.positionals[0]!;
  const pool = new ClientPool(sideOptions(flags, "src"));
  let source: ImageSource | undefined;
  try {
    if (reference.startsWith("docker://")) {
      const ref = parseImageReference(reference.slice("docker://".length));
      if (ref.tag !== undefined || ref.digest !== undefined) {
        throw new UsageError("list-tags takes a repository without a tag or digest");
      }
    }
    source = await openSource(reference, pool);
    const opened = source;
    if (!opened.listTags) throw new ClientError("unsupported", `${reference}: cannot list tags`);
    const tags = await withInterrupt((signal) => opened.listTags!({ signal }));
    const location = opened.location;
    const repository = location ? `${location.registry}/${location.repository}` : reference;
    console.log(JSON.stringify({ Repository: repository, Tags: tags }, null, 4));
    return 0;
  } catch (error) {
    return reportFailure("list-tags", error, reference);
  } finally {
    await source?.close().catch(() => {});
    await pool.close();
  }
}
