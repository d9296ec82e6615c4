import assert from "node:assert/strict";
import { digestBytes } from "../../src/oci/digest.ts";
import { parseManifest } from "../../src/oci/manifest.ts";
import { ManifestCache, manifestCost, type StoredManifest } from "../../src/services/manifests.ts";
import { descriptor, MEDIA, text } from "../helpers/registry.ts";

/** A stored OCI manifest listing `layers` descriptors, distinct by `seed`. */
function stored(seed: number, layers = 1): StoredManifest {
  const layer = descriptor(MEDIA.ociLayer, text(`layer ${seed}`));
  const bytes = text(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: descriptor(MEDIA.ociConfig, text(`config ${seed}`)),
    layers: Array(layers).fill(layer),
  }));
  const parsed = parseManifest(bytes);
  return { digest: digestBytes(bytes), mediaType: parsed.mediaType, bytes, parsed };
}

Deno.test("manifest cache: the cost counts the bytes and the parsed form", () => {
  const small = stored(1, 1);
  const large = stored(1, 1000);
  assert.ok(manifestCost(small) > small.bytes.byteLength);
  // 999 more descriptors: their bytes plus a parsed digest each.
  const extra = manifestCost(large) - manifestCost(small);
  assert.ok(extra > large.bytes.byteLength - small.bytes.byteLength + 999 * 200, String(extra));
});

Deno.test("manifest cache: stays within its byte budget, least recently used out first", () => {
  const entries = [1, 2, 3, 4, 5].map((seed) => stored(seed, 20));
  const cost = manifestCost(entries[0]!);
  const cache = new ManifestCache(cost * 3 + cost / 2);
  for (const entry of entries.slice(0, 3)) cache.set(entry);
  assert.equal(cache.size, 3);
  assert.ok(cache.get(entries[0]!.digest.value)); // 0 becomes the most recent
  cache.set(entries[3]!); // drops 1, the least recently used
  assert.equal(cache.get(entries[1]!.digest.value), undefined);
  assert.ok(cache.get(entries[0]!.digest.value));
  cache.set(entries[4]!);
  assert.ok(cache.bytes <= cost * 3 + cost / 2, `${cache.bytes} bytes held`);
  assert.equal(cache.size, 3);
  cache.set(entries[4]!); // again: counted once
  assert.equal(cache.size, 3);
  assert.ok(cache.bytes <= cost * 3 + cost / 2);
});

Deno.test("manifest cache: an entry over the budget, or a budget of 0, holds nothing", () => {
  const big = stored(1, 5000);
  const cache = new ManifestCache(manifestCost(big) - 1);
  cache.set(big);
  assert.equal(cache.size, 0);
  assert.equal(cache.bytes, 0);
  const none = new ManifestCache(0);
  none.set(stored(2));
  assert.equal(none.get(stored(2).digest.value), undefined);
});
