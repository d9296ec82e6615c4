/**
 * The authorization policy: per-repository rules (glob patterns) for users, groups and anonymous
 * callers, granting `pull`, `push` and `delete`. Grants are the union of the matching rules.
 *
 * @module
 */
import type { PolicyConfig, PolicyRule, RepositoryAction } from "../config.ts";

/** Every repository action. */
export const ACTIONS: readonly RepositoryAction[] = ["pull", "push", "delete"];

/** A policy rule with its patterns compiled. */
interface CompiledRule {
  patterns: RegExp[];
  /** The literal start of each pattern (before its first wildcard). */
  prefixes: string[];
  users: Set<string>;
  groups: Set<string>;
  anonymous: boolean;
  actions: RepositoryAction[];
}

/** Compile a glob: `**` matches across `/`, `*` and `?` within one path component. */
export function globToRegExp(glob: string): RegExp {
  let source = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*" && glob[i + 1] === "*") {
      source += ".*";
      i++;
    } else if (c === "*") source += "[^/]*";
    else if (c === "?") source += "[^/]";
    else source += c.replace(/[\\^$.|+()[\]{}]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}

/** The literal start of a glob, before its first wildcard (`team/*` → `team/`). */
export function globPrefix(glob: string): string {
  const wildcard = glob.search(/[*?]/);
  return wildcard < 0 ? glob : glob.slice(0, wildcard);
}

/** Sorted prefixes with none starting with another (`["a/", "a/b", "c"]` → `["a/", "c"]`). */
export function outerPrefixes(prefixes: Iterable<string>): string[] {
  const out: string[] = [];
  for (const prefix of [...new Set(prefixes)].sort()) {
    const previous = out.at(-1);
    if (previous === undefined || !prefix.startsWith(previous)) out.push(prefix);
  }
  return out;
}

/** Decides what a user (or an anonymous caller) may do on a repository. */
export class Policy {
  readonly #rules: CompiledRule[] | undefined;
  readonly #groupsOf = new Map<string, Set<string>>();
  readonly #admins: Set<string> | undefined;

  /** A policy from its configuration; none: authenticated users may do everything. */
  constructor(config?: PolicyConfig) {
    if (!config) return;
    this.#admins = new Set(config.admins ?? []);
    for (const [group, members] of Object.entries(config.groups ?? {})) {
      for (const user of members) {
        const set = this.#groupsOf.get(user) ?? new Set();
        set.add(group);
        this.#groupsOf.set(user, set);
      }
    }
    this.#rules = config.rules.map((rule) => ({
      patterns: rule.repositories.map(globToRegExp),
      prefixes: rule.repositories.map(globPrefix),
      users: new Set(rule.users ?? []),
      groups: new Set(rule.groups ?? []),
      anonymous: rule.anonymous ?? false,
      actions: rule.actions.flatMap((a) => a === "*" ? [...ACTIONS] : [a]),
    }));
  }

  /** The actions `user` (`undefined`: anonymous) may take on repository `name`. */
  actions(user: string | undefined, name: string): Set<RepositoryAction> {
    if (!this.#rules) return new Set(user === undefined ? [] : ACTIONS);
    const granted = new Set<RepositoryAction>();
    for (const rule of this.#rules) {
      if (!this.#applies(rule, user) || !rule.patterns.some((p) => p.test(name))) continue;
      for (const action of rule.actions) granted.add(action);
    }
    return granted;
  }

  /**
   * Where the repositories `user` may pull can be: name prefixes, sorted, none inside another
   * (`[""]`: anywhere; `[]`: nowhere). A catalog walks only these ranges.
   */
  pullPrefixes(user: string | undefined): string[] {
    if (!this.#rules) return user === undefined ? [] : [""];
    const prefixes: string[] = [];
    for (const rule of this.#rules) {
      if (rule.actions.includes("pull") && this.#applies(rule, user)) {
        prefixes.push(...rule.prefixes);
      }
    }
    return outerPrefixes(prefixes);
  }

  #applies(rule: CompiledRule, user: string | undefined): boolean {
    if (user === undefined) return rule.anonymous;
    return rule.anonymous || rule.users.has("*") || rule.users.has(user) ||
      [...(this.#groupsOf.get(user) ?? [])].some((g) => rule.groups.has(g));
  }

  /** Whether `user` may use the admin endpoints (without a policy: every known user). */
  isAdmin(user: string | undefined): boolean {
    if (user === undefined) return false;
    if (!this.#admins) return true;
    return this.#admins.has(user) ||
      [...(this.#groupsOf.get(user) ?? [])].some((g) => this.#admins!.has(`@${g}`));
  }

  /** Whether `user` may take every one of `actions` on `name`. */
  allows(user: string | undefined, name: string, actions: RepositoryAction[]): boolean {
    const granted = this.actions(user, name);
    return actions.every((a) => granted.has(a));
  }
}

/** Check a parsed policy document (JSON) and return it typed; throws with the first problem. */
export function checkPolicy(input: unknown): PolicyConfig {
  const fail = (where: string, what: string): never => {
    throw new Error(`auth policy: ${where} ${what}`);
  };
  const strings = (value: unknown, where: string): string[] => {
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
      fail(where, "must be a list of strings");
    }
    return value as string[];
  };
  if (typeof input !== "object" || input === null) return fail("", "must be an object");
  const { groups, rules, admins } = input as Record<string, unknown>;
  const policy: PolicyConfig = { rules: [] };
  if (admins !== undefined) policy.admins = strings(admins, "admins");
  if (groups !== undefined) {
    if (typeof groups !== "object" || groups === null) fail("groups", "must be an object");
    policy.groups = {};
    for (const [name, members] of Object.entries(groups as object)) {
      policy.groups[name] = strings(members, `groups.${name}`);
    }
  }
  if (!Array.isArray(rules)) return fail("rules", "must be a list");
  for (const [i, raw] of rules.entries()) {
    const where = `rules[${i}]`;
    if (typeof raw !== "object" || raw === null) fail(where, "must be an object");
    const r = raw as Record<string, unknown>;
    const actions = strings(r.actions, `${where}.actions`).flatMap((a): string[] =>
      a === "*" ? [...ACTIONS] : [a]
    );
    for (const a of actions) {
      if (!ACTIONS.includes(a as RepositoryAction)) fail(`${where}.actions`, `has unknown "${a}"`);
    }
    const rule: PolicyRule = {
      repositories: strings(r.repositories, `${where}.repositories`),
      actions: actions as RepositoryAction[],
    };
    if (r.users !== undefined) rule.users = strings(r.users, `${where}.users`);
    if (r.groups !== undefined) rule.groups = strings(r.groups, `${where}.groups`);
    if (r.anonymous !== undefined) {
      if (typeof r.anonymous !== "boolean") fail(`${where}.anonymous`, "must be true or false");
      rule.anonymous = r.anonymous as boolean;
    }
    policy.rules.push(rule);
  }
  return policy;
}
