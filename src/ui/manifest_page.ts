/**
 * A manifest's page (`/ui/<name>/-/manifest/<reference>`): digest, media type, sizes, pull
 * commands, platforms of an index, the image config, layers, annotations and referrers.
 *
 * @module
 */
import { KIND_TITLES } from "./artifacts.ts";
import type { ImageConfig, ManifestDetail, PlatformRow } from "./data.ts";
import type { Descriptor } from "../oci/manifest.ts";
import {
  deleteUrl,
  formatBytes,
  manifestUrl,
  platformLabel,
  repositoryUrl,
  shortDigest,
  UI_ROOT,
} from "./format.ts";
import { type Html, markup } from "./html.ts";
import { page, type PageContext } from "./layout.ts";

/** Render a manifest's page. */
export function manifestPage(ctx: PageContext, detail: ManifestDetail, canDelete: boolean): Html {
  const { name } = detail;
  const byTag = !detail.reference.includes(":");
  const title = byTag ? `${name}:${detail.reference}` : `${name}@${shortDigest(detail.digest)}`;
  const body = markup`<h1>${title}</h1>
${summary(detail)}
${pullCommands(ctx, detail, byTag)}
${detail.kind === "index" ? platforms(detail) : ""}
${detail.image ? imageConfig(detail.image) : ""}
${detail.kind === "index" ? "" : layers(detail)}
${pairs("Annotations", "annotations", detail.annotations)}
${referrers(detail)}
${
    canDelete
      ? markup`
        <h2>Delete</h2>
        <p><a class="button danger" href="${
        deleteUrl(
          name,
          detail.digest,
        )
      }">Delete this manifest&hellip;</a></p>
      `
      : ""
  }`;
  return page(ctx, title, [
    { label: "Repositories", href: UI_ROOT },
    { label: name, href: repositoryUrl(name) },
    { label: byTag ? detail.reference : shortDigest(detail.digest) },
  ], body);
}

function summary(detail: ManifestDetail): Html {
  const kind = detail.kind === "index"
    ? "Index (multi-platform)"
    : detail.kind === "artifact"
    ? "Artifact"
    : "Image";
  return markup`<dl class="facts">
<dt>Kind</dt><dd>${kind}</dd>
<dt>Digest</dt><dd><code data-copy="" data-copy-label="digest">${detail.digest}</code></dd>
<dt>Media type</dt><dd><code>${detail.mediaType}</code></dd>
${
    detail.artifactType
      ? markup`
        <dt>Artifact type</dt>
        <dd><code>${detail.artifactType}</code></dd>
      `
      : ""
  }
<dt>Manifest size</dt><dd>${formatBytes(detail.manifestSize)}</dd>
${
    detail.totalSize === undefined ? "" : markup`
      <dt>Total size</dt>
      <dd>${
      formatBytes(
        detail.totalSize,
      )
    } <span class="muted">(config and layers, compressed)</span></dd>
    `
  }
${
    detail.tags.length === 0 ? "" : markup`
      <dt>Tags</dt>
      <dd>${
      detail.tags.map((tag, i) =>
        markup`${i > 0 ? ", " : ""}<a href="${manifestUrl(detail.name, tag)}">${tag}</a>`
      )
    }</dd>
    `
  }
${
    detail.subject
      ? markup`
        <dt>Refers to</dt>
        <dd><a class="mono" href="${
        manifestUrl(detail.name, detail.subject)
      }">${detail.subject}</a></dd>
      `
      : ""
  }
</dl>`;
}

function pullCommands(ctx: PageContext, detail: ManifestDetail, byTag: boolean): Html {
  const base = `${ctx.host}/${detail.name}`;
  const refs = byTag ? [`${base}:${detail.reference}`, `${base}@${detail.digest}`] : [
    `${base}@${detail.digest}`,
  ];
  const items = refs.flatMap((ref) =>
    ["podman", "docker"].map((tool) =>
      markup`<li><code data-copy="" data-copy-label="${tool} pull command">${tool} pull ${ref}</code></li>`
    )
  );
  return markup`
    <h2>Pull</h2>
    <ul class="plain commands">${items}</ul>
  `;
}

function platforms(detail: ManifestDetail): Html {
  if (detail.platforms.length === 0) {
    return markup`
      <h2>Platforms</h2>
      <p>This index lists no manifests.</p>
    `;
  }
  const row = (p: PlatformRow) =>
    markup`
      <tr>
        <th scope="row"><a href="${manifestUrl(detail.name, p.digest)}">${
      p.artifact ? "attestation" : platformLabel(p.platform)
    }</a></th>
        <td><a class="mono" href="${manifestUrl(detail.name, p.digest)}" title="${p.digest}">${
      shortDigest(p.digest)
    }</a></td>
        <td class="num">${p.size === undefined ? "–" : formatBytes(p.size)}</td>
        <td class="hide-narrow"><code>${p.mediaType}</code></td>
      </tr>
    `;
  return markup`
    <h2>Platforms</h2>
    <div class="table-wrap">
      <table id="platforms">
        <thead>
          <tr>
            <th scope="col">Platform</th>
            <th scope="col">Digest</th>
            <th scope="col" class="num">Size</th>
            <th scope="col" class="hide-narrow">Media type</th>
          </tr>
        </thead>
        <tbody>${detail.platforms.map(row)}</tbody>
      </table>
    </div>
  `;
}

function imageConfig(image: ImageConfig): Html {
  const command = (parts: string[] | undefined) =>
    parts === undefined ? undefined : markup`<code>${JSON.stringify(parts)}</code>`;
  const facts: [string, Html | string | undefined][] = [
    ["Created", image.created],
    ["Platform", image.os || image.architecture ? platformLabel(image) : undefined],
    ["Entrypoint", command(image.entrypoint)],
    ["Command", command(image.cmd)],
    ["Working directory", image.workingDir],
    ["User", image.user],
    ["Exposed ports", image.exposedPorts.length > 0 ? image.exposedPorts.join(", ") : undefined],
  ];
  return markup`<h2>Image config</h2>
<dl class="facts">${
    facts.filter(([, value]) => value !== undefined && value !== "").map(([label, value]) =>
      markup`
        <dt>${label}</dt>
        <dd>${value}</dd>
      `
    )
  }</dl>
${
    image.env.length === 0 ? "" : markup`
      <h3>Environment</h3>
      <ul class="plain">${image.env.map((entry) => markup`<li><code>${entry}</code></li>`)}</ul>
    `
  }
${pairs("Labels", "labels", image.labels, "h3")}
${image.history.length === 0 ? "" : history(image)}`;
}

function history(image: ImageConfig): Html {
  return markup`
    <details>
      <summary>History (${image.history.length} steps)</summary>
      <div class="table-wrap">
        <table id="history">
          <thead>
            <tr>
              <th scope="col" class="num">#</th>
              <th scope="col">Created by</th>
              <th scope="col" class="hide-narrow">Created</th>
            </tr>
          </thead>
          <tbody>${
    image.history.map((step, i) =>
      markup`
              <tr>
                <td class="num">${i + 1}</td>
                <td><pre class="mono">${step.createdBy ?? ""}</pre>${
        step.comment ? markup`<div class="muted">${step.comment}</div>` : ""
      }${step.emptyLayer ? markup`<span class="badge">no layer</span>` : ""}</td>
                <td class="hide-narrow">${step.created ?? ""}</td>
              </tr>
            `
    )
  }</tbody>
        </table>
      </div>
    </details>
  `;
}

function layers(detail: ManifestDetail): Html {
  const heading = detail.kind === "artifact" ? "Blobs" : "Layers";
  const config = detail.config;
  const row = (d: Descriptor, label: string) => {
    const title = d.annotations?.["org.opencontainers.image.title"];
    return markup`
      <tr>
        <td>${label}${
      typeof title === "string" ? markup`<div class="muted">${title}</div>` : ""
    }</td>
        <td><span class="mono" title="${d.digest}">${
      shortDigest(
        d.digest,
      )
    }</span><span hidden data-copy="${d.digest}" data-copy-label="digest"></span></td>
        <td class="num">${formatBytes(d.size)}</td>
        <td class="hide-narrow"><code>${d.mediaType}</code></td>
      </tr>
    `;
  };
  return markup`
    <h2>${heading}</h2>
    <div class="table-wrap">
      <table id="layers">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Digest</th>
            <th scope="col" class="num">Size</th>
            <th scope="col" class="hide-narrow">Media type</th>
          </tr>
        </thead>
        <tbody>${config ? row(config, "config") : ""}${
    detail.layers.map((d, i) => row(d, String(i + 1)))
  }</tbody>
      </table>
    </div>
  `;
}

function pairs(
  title: string,
  id: string,
  entries: [string, string][],
  level = "h2",
): Html | string {
  if (entries.length === 0) return "";
  const heading = level === "h3" ? markup`<h3>${title}</h3>` : markup`<h2>${title}</h2>`;
  return markup`
    ${heading}<div class="table-wrap">
      <table id="${id}">
        <thead>
          <tr>
            <th scope="col">Key</th>
            <th scope="col">Value</th>
          </tr>
        </thead>
        <tbody>${
    entries.map(([key, value]) =>
      markup`
            <tr>
              <th scope="row"><code>${key}</code></th>
              <td>
                <pre>${value}</pre>
              </td>
            </tr>
          `
    )
  }</tbody>
      </table>
    </div>
  `;
}

function referrers(detail: ManifestDetail): Html {
  if (detail.referrers.length === 0) {
    return markup`
      <h2>Referrers</h2>
      <p class="muted">No signatures, SBOMs or attestations refer to this manifest.</p>
    `;
  }
  return markup`<h2>Referrers</h2>${
    detail.referrers.map((group) =>
      markup`
        <section aria-label="${KIND_TITLES[group.kind]}: ${
        group.artifactType ||
        "no artifact type"
      }">
          <h3>${KIND_TITLES[group.kind]} <code class="muted">${
        group.artifactType ||
        "(no artifact type)"
      }</code></h3>
          <ul class="plain referrers">${
        group.referrers.map((r) => {
          const created = r.annotations?.["org.opencontainers.image.created"];
          return markup`<li><a class="mono" href="${manifestUrl(detail.name, r.digest)}">${
            shortDigest(r.digest)
          }</a> <span class="muted">${formatBytes(r.size)}${
            typeof created === "string"
              ? markup`
                  &middot; ${created}
                `
              : ""
          }</span></li>`;
        })
      }</ul>
        </section>
      `
    )
  }`;
}
