/**
 * Unit tests of the UI's rendering: escaping, sizes, platforms, referrer grouping, the pages'
 * markup from view data, and path parsing.
 *
 * @module
 */
import assert from "node:assert/strict";
import { artifactKind, groupReferrers } from "../../src/ui/artifacts.ts";
import { annotationsOf, imageConfigOf, imageSize } from "../../src/ui/data.ts";
import {
  formatAge,
  formatBytes,
  manifestUrl,
  platformLabel,
  repositoryUrl,
  shortDigest,
  toPlatform,
} from "../../src/ui/format.ts";
import { escapeHtml, markup, trusted } from "../../src/ui/html.ts";
import type { PageContext } from "../../src/ui/layout.ts";
import { listPage } from "../../src/ui/list_page.ts";
import { manifestPage } from "../../src/ui/manifest_page.ts";
import { repositoryPage } from "../../src/ui/repository_page.ts";
import { deletePage } from "../../src/ui/delete_page.ts";
import { parsePath } from "../../src/ui/ui.ts";
import { PAYLOADS } from "./fixtures.ts";

const DIGEST = `sha256:${"ab".repeat(32)}`;
const CTX: PageContext = {
  signIn: false,
  host: "registry.example:5000",
  now: new Date("2026-12-02T12:00:00Z"),
  style: "body{}",
  scriptUrl: "/ui/-/app.js?v=1",
};

/** Whether markup holds any tag or attribute a payload would have brought in. */
function assertInert(markup: string): void {
  for (const payload of PAYLOADS) assert.ok(!markup.includes(payload), `raw payload ${payload}`);
  assert.doesNotMatch(markup, /<(img|svg|iframe)\b/i);
  assert.doesNotMatch(markup, /<script>/i);
  assert.doesNotMatch(markup, /\son(error|load)="/i);
}

Deno.test("ui html: every interpolated value is escaped, Html fragments are kept", () => {
  assert.equal(
    escapeHtml(`<a href="x">'&'</a>`),
    "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;",
  );
  const value = `"><script>alert(1)</script>`;
  const out = markup`<p title="${value}">${value}${markup`<b>${value}</b>`}${[value, 1]}</p>`;
  assert.equal(
    out.text,
    '<p title="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;' +
      "<b>&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;</b>&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;1</p>",
  );
  assert.equal(markup`${undefined}${null}${false}${trusted("<br>")}`.text, "<br>");
});

Deno.test("ui format: sizes in decimal units, short digests, ages", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(999), "999 B");
  assert.equal(formatBytes(1000), "1.0 kB");
  assert.equal(formatBytes(5_300), "5.3 kB");
  assert.equal(formatBytes(123_456_789), "123 MB");
  assert.equal(formatBytes(2_500_000_000), "2.5 GB");
  assert.equal(formatBytes(-1), "?");
  assert.equal(shortDigest(DIGEST), `sha256:${"ab".repeat(6)}`);
  const now = new Date("2026-12-02T12:00:00Z");
  assert.equal(formatAge(new Date("2026-12-02T11:59:30Z"), now), "just now");
  assert.equal(formatAge(new Date("2026-12-02T11:55:00Z"), now), "5 minutes ago");
  assert.equal(formatAge(new Date("2026-12-02T11:00:00Z"), now), "1 hour ago");
  assert.equal(formatAge(new Date("2026-11-29T12:00:00Z"), now), "3 days ago");
  assert.equal(formatAge(new Date("2026-09-01T12:00:00Z"), now), "3 months ago");
  assert.equal(formatAge(new Date("2024-12-01T12:00:00Z"), now), "2 years ago");
});

Deno.test("ui format: platforms from untrusted JSON, labelled os/arch/variant", () => {
  assert.equal(
    platformLabel(toPlatform({ os: "linux", architecture: "arm64", variant: "v8" })),
    "linux/arm64/v8",
  );
  assert.equal(platformLabel(toPlatform({ os: "linux", architecture: "amd64" })), "linux/amd64");
  assert.equal(
    platformLabel(toPlatform({ os: "windows", architecture: "amd64", "os.version": "10.0.17763" })),
    "windows/amd64 (10.0.17763)",
  );
  assert.equal(platformLabel(toPlatform({ os: 7, architecture: ["x"] })), "unknown");
  assert.equal(platformLabel(toPlatform("linux")), "unknown");
  assert.equal(platformLabel(toPlatform({ architecture: "riscv64" })), "?/riscv64");
});

Deno.test("ui format: URLs encode each segment and keep the repository's slashes", () => {
  assert.equal(repositoryUrl("library/alpine"), "/ui/library/alpine");
  assert.equal(
    repositoryUrl("a/b", { sort: "size", order: "desc", page: undefined }),
    "/ui/a/b?sort=size&order=desc",
  );
  assert.equal(manifestUrl("a/b", DIGEST), `/ui/a/b/-/manifest/sha256%3A${"ab".repeat(32)}`);
  assert.deepEqual(parsePath("a/b/-/manifest/sha256%3A" + "ab".repeat(32)), {
    kind: "manifest",
    name: "a/b",
    reference: DIGEST,
  });
  assert.deepEqual(parsePath("a/b"), { kind: "repository", name: "a/b" });
  assert.deepEqual(parsePath("a/b/"), { kind: "repository", name: "a/b" });
  assert.deepEqual(parsePath("a/-/delete/v1"), { kind: "delete", name: "a", reference: "v1" });
  for (
    const bad of [
      "A/b",
      "a/-/other/v1",
      "a/-/manifest/<x>",
      "a/-/manifest/sha256:12",
      "%E0%A4%A",
      "-/x",
      "a/-/manifest",
    ]
  ) {
    assert.equal(parsePath(bad), undefined, bad);
  }
});

Deno.test("ui data: image size is config plus layers; malformed descriptors are skipped", () => {
  const doc = {
    config: { mediaType: "c", digest: DIGEST, size: 100 },
    layers: [
      { mediaType: "l", digest: DIGEST, size: 1000 },
      { mediaType: "l", digest: DIGEST, size: 2500 },
      { mediaType: "l", digest: "nope", size: 7 },
      { mediaType: "l", digest: DIGEST, size: -1 },
    ],
  };
  assert.equal(imageSize(doc), 3600);
  assert.equal(imageSize({ layers: [] }), undefined);
  assert.deepEqual(annotationsOf({ b: "2", a: "1", c: 3 }), [["a", "1"], ["b", "2"]]);
});

Deno.test("ui data: the image config's fields are read defensively", () => {
  const image = imageConfigOf({
    created: "2026-01-01T00:00:00Z",
    os: "linux",
    architecture: 5,
    config: {
      Env: ["A=1", 2],
      Entrypoint: ["/init"],
      Cmd: "not a list",
      Labels: { k: "v", n: 1 },
      ExposedPorts: { "80/tcp": {}, "443/tcp": {} },
      User: "app",
    },
    history: [{ created_by: "RUN x", empty_layer: true }, "junk", { comment: "c" }],
  });
  assert.equal(image.created, "2026-01-01T00:00:00Z");
  assert.equal(image.os, "linux");
  assert.equal(image.architecture, undefined);
  assert.deepEqual(image.env, ["A=1"]);
  assert.deepEqual(image.entrypoint, ["/init"]);
  assert.equal(image.cmd, undefined);
  assert.deepEqual(image.labels, [["k", "v"]]);
  assert.deepEqual(image.exposedPorts, ["443/tcp", "80/tcp"]);
  assert.equal(image.user, "app");
  assert.deepEqual(image.history, [{ createdBy: "RUN x", emptyLayer: true }, {
    comment: "c",
    emptyLayer: false,
  }]);
  assert.deepEqual(imageConfigOf({ config: "x", history: {} }).history, []);
});

Deno.test("ui artifacts: referrers are grouped by artifactType, kinds in a fixed order", () => {
  assert.equal(artifactKind("application/vnd.dev.cosign.artifact.sig.v1+json"), "signature");
  assert.equal(artifactKind("application/vnd.cncf.notary.signature"), "signature");
  assert.equal(artifactKind("application/spdx+json"), "sbom");
  assert.equal(artifactKind("application/vnd.cyclonedx+json"), "sbom");
  assert.equal(artifactKind("application/vnd.in-toto+json"), "attestation");
  assert.equal(artifactKind("application/vnd.dev.sigstore.bundle.v0.3+json"), "signature");
  assert.equal(artifactKind("application/vnd.cncf.helm.config.v1+json"), "other");
  assert.equal(artifactKind(undefined), "other");
  const d = (artifactType: string | undefined, n: number) => ({
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: `sha256:${String(n).repeat(64).slice(0, 64)}`,
    size: n,
    ...(artifactType !== undefined && { artifactType }),
  });
  const groups = groupReferrers([
    d("application/vnd.in-toto+json", 1),
    d(undefined, 2),
    d("application/spdx+json", 3),
    d("application/vnd.dev.cosign.artifact.sig.v1+json", 4),
    d("application/vnd.cyclonedx+json", 5),
    d("application/spdx+json", 6),
  ]);
  assert.deepEqual(groups.map((g) => [g.kind, g.artifactType, g.referrers.map((r) => r.size)]), [
    ["signature", "application/vnd.dev.cosign.artifact.sig.v1+json", [4]],
    ["sbom", "application/spdx+json", [3, 6]],
    ["sbom", "application/vnd.cyclonedx+json", [5]],
    ["attestation", "application/vnd.in-toto+json", [1]],
    ["other", "", [2]],
  ]);
});

Deno.test("ui pages: the list page links each repository and the next page", () => {
  const out = listPage(CTX, {
    rows: [
      { name: "library/alpine", tagCount: 2, lastPushed: new Date("2026-12-02T10:00:00Z") },
      { name: "team/api", tagCount: 0 },
    ],
    next: "team/api",
    partial: false,
  }, "a").text;
  assert.match(out, /<a href="\/ui\/library\/alpine">library\/alpine<\/a>/);
  assert.match(out, /<time datetime="2026-12-02T10:00:00.000Z"[^>]*>2 hours ago<\/time>/);
  assert.match(out, /<a rel="next" href="\/ui\/\?q=a&amp;last=team%2Fapi">Next page &rarr;<\/a>/);
  assert.match(out, /<input id="filter" name="q" type="search" value="a"/);
  assert.match(out, /<label for="filter">/);
  const empty = listPage(CTX, { rows: [], partial: false }, "").text;
  assert.match(empty, /No repositories yet/);
  assert.match(empty, /docker:\/\/registry\.example:5000\/my\/app:v1/);
});

Deno.test("ui pages: stored payloads render as text on every page", () => {
  const evil = PAYLOADS.join("");
  const list = listPage(CTX, { rows: [{ name: "x", tagCount: 1 }], partial: false }, evil).text;
  assertInert(list);
  assert.ok(list.includes(escapeHtml(PAYLOADS[0]!)));
  const repo = repositoryPage({ ...CTX, user: evil }, {
    name: "x",
    tags: {
      rows: [{
        tag: "v1",
        digest: DIGEST,
        mediaType: "application/vnd.oci.image.index.v1+json",
        artifactType: evil,
        platforms: [{
          digest: DIGEST,
          mediaType: evil,
          platform: { os: evil, architecture: evil },
          artifact: false,
          size: 10,
        }],
      }],
      total: 1,
      page: 1,
      pages: 1,
    },
    sort: "name",
    descending: false,
    canDelete: true,
    deleted: evil,
  }).text;
  assertInert(repo);
  const detail = {
    name: "x",
    reference: "v1",
    digest: DIGEST,
    mediaType: evil,
    manifestSize: 10,
    kind: "artifact" as const,
    artifactType: evil,
    config: { mediaType: evil, digest: DIGEST, size: 2 },
    image: {
      created: evil,
      os: evil,
      architecture: evil,
      entrypoint: [evil],
      cmd: [evil],
      workingDir: evil,
      user: evil,
      env: [evil],
      exposedPorts: [evil],
      labels: [[evil, evil]] as [string, string][],
      history: [{ createdBy: evil, comment: evil, created: evil, emptyLayer: true }],
    },
    layers: [{
      mediaType: evil,
      digest: DIGEST,
      size: 1,
      annotations: { "org.opencontainers.image.title": evil },
    }],
    totalSize: 3,
    annotations: [[evil, evil]] as [string, string][],
    subject: DIGEST,
    platforms: [],
    referrers: groupReferrers([{
      mediaType: evil,
      digest: DIGEST,
      size: 3,
      artifactType: evil,
      annotations: { "org.opencontainers.image.created": evil },
    }]),
    tags: ["v1"],
  };
  assertInert(manifestPage(CTX, detail, true).text);
  assertInert(
    deletePage(CTX, { name: "x", reference: DIGEST, tags: ["v1"], token: evil, problem: evil })
      .text,
  );
});

Deno.test("ui pages: repository page shows platforms, sizes, sort state and delete links", () => {
  const out = repositoryPage(CTX, {
    name: "library/alpine",
    tags: {
      rows: [
        {
          tag: "latest",
          digest: DIGEST,
          mediaType: "application/vnd.oci.image.index.v1+json",
          size: 10_600,
          platforms: [
            {
              digest: DIGEST,
              mediaType: "m",
              platform: { os: "linux", architecture: "amd64" },
              artifact: false,
              size: 5_300,
            },
            {
              digest: DIGEST,
              mediaType: "m",
              platform: { os: "linux", architecture: "arm64", variant: "v8" },
              artifact: false,
              size: 5_300,
            },
            {
              digest: DIGEST,
              mediaType: "m",
              platform: { os: "unknown", architecture: "unknown" },
              artifact: true,
            },
          ],
        },
        {
          tag: "small",
          digest: DIGEST,
          mediaType: "m",
          size: 1_234_567,
          pushed: new Date("2026-12-01T12:00:00Z"),
        },
      ],
      total: 250,
      page: 2,
      pages: 3,
    },
    sort: "size",
    descending: true,
    canDelete: true,
  }).text;
  assert.match(out, />linux\/amd64<\/a>/);
  assert.match(out, />linux\/arm64\/v8<\/a>/);
  assert.doesNotMatch(out, /unknown\/unknown/);
  assert.match(out, /1\.2 MB/);
  assert.match(out, /aria-sort="descending"/);
  assert.match(out, /href="\/ui\/library\/alpine\?sort=size&amp;order=asc"/);
  assert.match(
    out,
    /<a href="\/ui\/library\/alpine\/-\/delete\/latest" aria-label="Delete tag latest">/,
  );
  assert.match(out, /podman pull registry\.example:5000\/library\/alpine:latest/);
  assert.match(out, /rel="prev" href="\/ui\/library\/alpine\?sort=size&amp;order=desc&amp;page=1"/);
  assert.match(out, /rel="next" href="\/ui\/library\/alpine\?sort=size&amp;order=desc&amp;page=3"/);
  assert.match(out, /1 day ago/);
  const readOnly = repositoryPage(CTX, {
    name: "a",
    tags: { rows: [{ tag: "v1", digest: DIGEST }], total: 1, page: 1, pages: 1 },
    sort: "name",
    descending: false,
    canDelete: false,
  }).text;
  assert.doesNotMatch(readOnly, /Delete/);
});
