/**
 * Repository names, tags and manifest references, checked against the distribution spec's patterns.
 *
 * @module
 */
import { OciError } from "./errors.ts";
import { type Digest, tryParseDigest } from "./digest.ts";

const COMPONENT = "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*";
/** The spec's repository name pattern. */
export const NAME_PATTERN = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
/** The spec's tag pattern. */
export const TAG_PATTERN = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** Longest repository name accepted. */
export const MAX_NAME_LENGTH = 255;

/** Whether `name` is a valid repository name. */
export function isValidName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME_PATTERN.test(name);
}

/** Check a repository name or throw an {@link OciError} of kind `name`. */
export function checkName(name: string): string {
  if (!isValidName(name)) {
    throw new OciError("name", "invalid repository name", { name: name.slice(0, 300) });
  }
  return name;
}

/** Whether `tag` is a valid tag. */
export function isValidTag(tag: string): boolean {
  return TAG_PATTERN.test(tag);
}

/** A manifest reference: a tag or a digest. */
export type Reference = { kind: "tag"; tag: string } | { kind: "digest"; digest: Digest };

/** Parse a manifest reference (tag or digest), or throw an {@link OciError} (`digest`, `tag`). */
export function parseReference(input: string): Reference {
  if (input.includes(":")) {
    const digest = tryParseDigest(input);
    if (!digest) {
      throw new OciError("digest", "invalid digest reference", { reference: input.slice(0, 200) });
    }
    return { kind: "digest", digest };
  }
  if (!isValidTag(input)) {
    throw new OciError("tag", "invalid tag: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", {
      reference: input.slice(0, 200),
    });
  }
  return { kind: "tag", tag: input };
}

/** Parse a manifest reference, or `undefined` when it is neither a valid tag nor a digest. */
export function tryParseReference(input: string): Reference | undefined {
  if (input.includes(":")) {
    const digest = tryParseDigest(input);
    return digest && { kind: "digest", digest };
  }
  return isValidTag(input) ? { kind: "tag", tag: input } : undefined;
}
