/**
 * A repository's page (`/ui/<name>`): its tags with digest, size or platforms, last push, a sort
 * by each column (real links), and delete links where the viewer may delete.
 *
 * @module
 */
import type { TagList, TagRow, TagSort } from "./data.ts";
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
import { page, type PageContext, timeElement } from "./layout.ts";

/** What the repository page shows. */
export interface RepositoryView {
  /** The repository. */
  name: string;
  /** A page of its tags. */
  tags: TagList;
  /** Sort key in force. */
  sort: TagSort;
  /** Descending order. */
  descending: boolean;
  /** Whether the viewer may delete here. */
  canDelete: boolean;
  /** A reference just deleted (to confirm it), when any. */
  deleted?: string;
}

/** Render a repository's page. */
export function repositoryPage(ctx: PageContext, view: RepositoryView): Html {
  const { name, tags } = view;
  const pullTag = tags.rows.find((row) => row.tag === "latest")?.tag ?? tags.rows[0]?.tag;
  const header = (key: TagSort, label: string, extra = "") => {
    const active = view.sort === key;
    const descending = active ? !view.descending : key !== "name";
    const href = repositoryUrl(name, { sort: key, order: descending ? "desc" : "asc" });
    const state = active ? (view.descending ? "descending" : "ascending") : undefined;
    return markup`
      <th scope="col" class="${extra}"
        ${
      state
        ? markup`
            aria-sort="${state}"
          `
        : ""
    }><a href="${href}">${label}${active ? (view.descending ? " ↓" : " ↑") : ""}</a></th>
    `;
  };
  const rows = tags.rows.map((row) => tagRow(ctx, view, row));
  const table = tags.total === 0 ? markup`<p>This repository has no tags.</p>` : markup`
    <div class="filter" role="search" data-script-only hidden>
      <label for="filter">Filter tags</label>
      <input id="filter" type="search" placeholder="tag contains&hellip;" autocomplete="off" spellcheck="false"
        data-filter="tags">
    </div>
    <p id="filter-status" class="muted" role="status" aria-live="polite"></p>
    <div class="table-wrap">
      <table id="tags">
        <caption class="visually-hidden">Tags of ${name}</caption>
        <thead>
          <tr>${header("name", "Tag")}<th scope="col">Digest</th>${
    header(
      "size",
      "Size / platforms",
    )
  }${header("pushed", "Last pushed", "hide-narrow")}${
    view.canDelete ? markup`<th scope="col"><span class="visually-hidden">Actions</span></th>` : ""
  }</tr>
        </thead>
        <tbody>
    ${rows}
        </tbody>
      </table>
    </div>
    ${pager(view)}
  `;
  const body = markup`<h1>${name}</h1>
${
    view.deleted === undefined
      ? ""
      : markup`<p class="notice" role="status">Deleted ${view.deleted}.</p>`
  }
<p class="muted">${tags.total} ${tags.total === 1 ? "tag" : "tags"}</p>
${
    pullTag === undefined ? "" : markup`
      <p
        class="commands">Pull: <code data-copy="" data-copy-label="pull command">podman pull ${ctx.host}/${name}:${pullTag}</code></p>
    `
  }
${table}`;
  return page(ctx, name, [{ label: "Repositories", href: UI_ROOT }, { label: name }], body);
}

function tagRow(ctx: PageContext, view: RepositoryView, row: TagRow): Html {
  const { name } = view;
  const size = row.platforms
    ? markup`<ul class="plain">${
      row.platforms.filter((p) => !p.artifact).map((p) =>
        markup`<li><a href="${manifestUrl(name, p.digest)}">${platformLabel(p.platform)}</a>${
          p.size === undefined ? "" : markup`
            <span class="muted">${formatBytes(p.size)}</span>
          `
        }</li>`
      )
    }</ul>`
    : row.size === undefined
    ? markup`<span class="muted">&ndash;</span>`
    : markup`${formatBytes(row.size)}`;
  return markup`<tr data-key="${row.tag}">
<th scope="row"><a href="${manifestUrl(name, row.tag)}">${row.tag}</a>${
    row.artifactType ? markup`<span class="badge" title="${row.artifactType}">artifact</span>` : ""
  }${row.platforms ? markup`<span class="badge">index</span>` : ""}</th>
<td><a class="mono" href="${manifestUrl(name, row.digest)}" title="${row.digest}">${
    shortDigest(row.digest)
  }</a><span hidden data-copy="${row.digest}" data-copy-label="digest of ${row.tag}"></span></td>
<td>${size}</td>
<td class="hide-narrow">${timeElement(row.pushed, ctx.now)}</td>
${
    view.canDelete
      ? markup`<td><a href="${
        deleteUrl(name, row.tag)
      }" aria-label="Delete tag ${row.tag}">Delete</a></td>`
      : ""
  }
</tr>`;
}

function pager(view: RepositoryView): Html | string {
  const { tags } = view;
  if (tags.pages <= 1) return "";
  const link = (n: number) =>
    repositoryUrl(view.name, {
      sort: view.sort === "name" ? undefined : view.sort,
      order: view.descending ? "desc" : undefined,
      page: String(n),
    });
  return markup`
    <nav class="pager"
      aria-label="Pages">${
    tags.page > 1
      ? markup`<a rel="prev" href="${link(tags.page - 1)}">&larr; Previous</a>`
      : markup`<span></span>`
  }<span class="muted">Page ${tags.page} of ${tags.pages}</span>${
    tags.page < tags.pages
      ? markup`<a rel="next" href="${link(tags.page + 1)}">Next &rarr;</a>`
      : markup`<span></span>`
  }</nav>
  `;
}
