/**
 * Repository policies (berth's `policies:`): immutable tags and retention. The first entry whose
 * `repositories` glob matches a repository applies to it; the others are not consulted.
 *
 * @module
 */
import { globToRegExp } from "../auth/policy.ts";
import type { RepositoryPolicy } from "../config_events.ts";
import { RegistryError } from "../errors.ts";
import type { Digest } from "../oci/digest.ts";
import type { Store } from "../storage/store.ts";
import { KeyedLock } from "./keyed_lock.ts";

/** What retention removes through: the manifest service's delete (tag or digest). */
export interface RetentionTarget {
  /** Delete a tag (by name) or a manifest (by digest) as a client's DELETE would. */
  delete(name: string, ref: string): Promise<void>;
  /** The manifests and index children a manifest names, when stored. */
  load(digest: Digest): Promise<{ parsed: { manifests: Digest[] } } | undefined>;
}

/** One deletion retention makes (or would make, in a dry run). */
export interface RetentionAction {
  /** The repository. */
  repository: string;
  /** `tag` (beyond `keeplast`) or `manifest` (untagged longer than `untaggedafter`). */
  kind: "tag" | "manifest";
  /** The tag or the manifest digest. */
  reference: string;
  /** Why, naming the rule. */
  reason: string;
}

/** Where retention failures are reported. */
export type PolicyLog = (
  level: "error" | "info",
  msg: string,
  fields: Record<string, unknown>,
) => void;

interface CompiledPolicy {
  index: number;
  policy: RepositoryPolicy;
  repositories: RegExp;
  tags: RegExp[];
}

/** The policies of one registry. */
export class PolicyService {
  readonly #store: Store;
  readonly #policies: CompiledPolicy[];
  readonly #now: () => number;
  readonly #log: PolicyLog;
  readonly #lock = new KeyedLock();

  /** Policies over `store`, in the order written. */
  constructor(
    store: Store,
    policies: RepositoryPolicy[],
    options: { log?: PolicyLog; now?: () => number } = {},
  ) {
    this.#store = store;
    this.#now = options.now ?? Date.now;
    this.#log = options.log ?? (() => {});
    this.#policies = policies.map((policy, index) => ({
      index,
      policy,
      repositories: globToRegExp(policy.repositories),
      tags: policy.immutableTags.map(globToRegExp),
    }));
  }

  /** Whether any policy is configured. */
  get active(): boolean {
    return this.#policies.length > 0;
  }

  /** The policy of a repository: the first entry whose glob matches. */
  #policyOf(name: string): CompiledPolicy | undefined {
    return this.#policies.find((p) => p.repositories.test(name));
  }

  /** The rule making `tag` of `name` immutable, described for messages, or `undefined`. */
  immutableRule(name: string, tag: string): string | undefined {
    const p = this.#policyOf(name);
    const i = p?.tags.findIndex((re) => re.test(tag)) ?? -1;
    if (!p || i < 0) return undefined;
    return `policies[${p.index}] (repositories "${p.policy.repositories}", immutabletags "${
      p.policy.immutableTags[i]
    }")`;
  }

  /**
   * Run `write` (which sets `tags` to `digest`) after {@link checkTagWrite}; when a tag is
   * immutable, pushes to the repository's immutable tags run one at a time in this process, so
   * two concurrent first pushes cannot both set the tag.
   */
  async writeTags(
    name: string,
    tags: string[],
    digest: Digest,
    write: () => Promise<void>,
  ): Promise<void> {
    if (!tags.some((tag) => this.immutableRule(name, tag))) return await write();
    await this.#lock.run(name, async () => {
      await this.checkTagWrite(name, tags, digest);
      await write();
    });
  }

  /** Refuse (DENIED) a push that would move an immutable tag to another manifest. */
  async checkTagWrite(name: string, tags: string[], digest: Digest): Promise<void> {
    for (const tag of tags) {
      const rule = this.immutableRule(name, tag);
      if (!rule) continue;
      const current = await this.#store.getTag(name, tag);
      if (current && current.value !== digest.value) {
        throw immutable(`tag "${tag}" is immutable by ${rule}: it cannot be moved`, name, tag);
      }
    }
  }

  /** Refuse (DENIED) deleting an immutable tag, or a manifest an immutable tag points at. */
  async checkDelete(name: string, ref: { tag: string } | { digest: Digest }): Promise<void> {
    if ("tag" in ref) {
      const rule = this.immutableRule(name, ref.tag);
      if (rule && await this.#store.getTag(name, ref.tag)) {
        throw immutable(
          `tag "${ref.tag}" is immutable by ${rule}: it cannot be deleted`,
          name,
          ref.tag,
        );
      }
      return;
    }
    if (!this.#policyOf(name)?.tags.length) return;
    for (const tag of (await this.#store.listTags(name)) ?? []) {
      const rule = this.immutableRule(name, tag);
      if (!rule) continue;
      if ((await this.#store.getTag(name, tag))?.value === ref.digest.value) {
        throw immutable(
          `manifest ${ref.digest.value} carries tag "${tag}", immutable by ${rule}: it cannot be deleted`,
          name,
          tag,
        );
      }
    }
  }

  /**
   * Apply the retention rule of `name`: delete tags beyond the `keeplast` most recently pushed
   * (never an immutable one), then manifests no tag reaches that were stored longer than
   * `untaggedafter` ago (index children and referrers of what a tag reaches are kept).
   */
  async retain(
    name: string,
    target: RetentionTarget,
    options: { dryRun?: boolean } = {},
  ): Promise<RetentionAction[]> {
    const p = this.#policyOf(name);
    const retention = p?.policy.retention;
    if (!p || !retention) return [];
    const rule = `policies[${p.index}] (repositories "${p.policy.repositories}")`;
    const actions: RetentionAction[] = [];
    const tags = (await this.#store.listTags(name)) ?? [];
    const dropped = new Set<string>();
    if (retention.keepLast !== undefined && tags.length > retention.keepLast) {
      const dated = await Promise.all(
        tags.map(async (tag) => ({
          tag,
          at: (await this.#store.tagModifiedAt(name, tag))?.getTime() ?? 0,
        })),
      );
      // Newest first; ties by name so the choice is stable.
      dated.sort((a, b) => b.at - a.at || (a.tag < b.tag ? -1 : 1));
      for (const { tag } of dated.slice(retention.keepLast)) {
        if (this.immutableRule(name, tag)) continue;
        actions.push({
          repository: name,
          kind: "tag",
          reference: tag,
          reason: `beyond keeplast ${retention.keepLast} of ${rule}`,
        });
        dropped.add(tag);
      }
    }
    if (retention.untaggedAfterMs !== undefined) {
      const reached = await this.#reached(
        name,
        tags.filter((t) => !dropped.has(t)),
        target,
      );
      const now = this.#now();
      for await (const digest of this.#store.listLinks(name, "manifest")) {
        if (reached.has(digest.value)) continue;
        const info = await this.#store.blobInfo(digest);
        if (!info || now - info.modifiedAt.getTime() < retention.untaggedAfterMs) continue;
        actions.push({
          repository: name,
          kind: "manifest",
          reference: digest.value,
          reason: `untagged longer than untaggedafter of ${rule}`,
        });
      }
    }
    if (options.dryRun) return actions;
    for (const action of actions) {
      await target.delete(name, action.reference).catch((error) => {
        if (!(error instanceof RegistryError && error.code === "MANIFEST_UNKNOWN")) throw error;
      });
    }
    return actions;
  }

  /** Retention after a push: a failure is logged (the push itself succeeded). */
  async afterPush(name: string, target: RetentionTarget): Promise<RetentionAction[]> {
    try {
      const actions = await this.retain(name, target);
      for (const action of actions) this.#log("info", "retention deleted", { ...action });
      return actions;
    } catch (error) {
      this.#log("error", "retention failed", { repository: name, error: String(error) });
      return [];
    }
  }

  /** Retention over every repository a policy with `retention` matches. */
  async retainAll(
    target: RetentionTarget,
    options: { dryRun?: boolean } = {},
  ): Promise<RetentionAction[]> {
    const out: RetentionAction[] = [];
    for (const name of await this.#store.listRepositories()) {
      out.push(...await this.retain(name, target, options));
    }
    return out;
  }

  /** Digests the tags reach: their manifests, index children, referrers of those (transitively). */
  async #reached(name: string, tags: string[], target: RetentionTarget): Promise<Set<string>> {
    const reached = new Set<string>();
    const queue: Digest[] = [];
    for (const tag of tags) {
      const digest = await this.#store.getTag(name, tag);
      if (digest) queue.push(digest);
    }
    while (queue.length > 0) {
      const digest = queue.pop()!;
      if (reached.has(digest.value)) continue;
      reached.add(digest.value);
      const manifest = await target.load(digest);
      queue.push(...(manifest?.parsed.manifests ?? []));
      for await (const referrer of this.#store.listReferrers(name, digest)) queue.push(referrer);
    }
    return reached;
  }
}

function immutable(message: string, name: string, tag: string): RegistryError {
  return new RegistryError("DENIED", { repository: name, tag }, { message });
}
