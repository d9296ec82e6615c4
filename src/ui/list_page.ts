/**
 * The repository list page (`/ui/`): a filter box (server-side over the catalog, narrowed as
 * you type by the script), one row per repository, and a link to the next page.
 *
 * @module
 */
import type { RepositoryList } from "./data.ts";
import { listUrl, repositoryUrl } from "./format.ts";
import { type Html, markup } from "./html.ts";
import { page, type PageContext, timeElement } from "./layout.ts";

/** Render a page of the repository list. */
export function listPage(ctx: PageContext, list: RepositoryList, filter: string): Html {
  const more = list.next !== undefined;
  const rows = list.rows.map((row) =>
    markup`
      <tr data-key="${row.name}">
        <td><a href="${repositoryUrl(row.name)}">${row.name}</a></td>
        <td class="num">${row.tagCount}</td>
        <td>${timeElement(row.lastPushed, ctx.now)}</td>
      </tr>
    `
  );
  const table = list.rows.length === 0 ? emptyState(ctx, filter) : markup`
    <div class="table-wrap">
      <table id="repositories">
        <caption class="visually-hidden">Repositories${
    filter === "" ? "" : markup`
          matching “${filter}”
        `
  }</caption>
        <thead>
          <tr>
            <th scope="col">Repository</th>
            <th scope="col" class="num">Tags</th>
            <th scope="col">Last pushed</th>
          </tr>
        </thead>
        <tbody>
    ${rows}
        </tbody>
      </table>
    </div>
  `;
  const pager = more
    ? markup`
      <nav class="pager"
        aria-label="Pages">${
      list.partial
        ? markup`<span class="muted" data-partial="">Searched part of the catalog.</span>`
        : markup`<span></span>`
    }<a rel="next" href="${
      listUrl({
        q: filter,
        last: list.next,
      })
    }">${list.partial ? "Search further" : "Next page"} →</a></nav>
    `
    : "";
  const body = markup`
    <h1>Repositories</h1>
    <form class="filter" role="search" method="get" action="${listUrl()}">
      <label for="filter">Filter</label>
      <input id="filter" name="q" type="search" value="${filter}" placeholder="name contains…"
        autocomplete="off" spellcheck="false" data-filter="repositories" data-results="results">
      <button type="submit">Search</button>
    </form>
    <p id="filter-status" class="muted" role="status" aria-live="polite"></p>
    <div id="results">
      ${table} ${pager}
    </div>
  `;
  return page(ctx, "Repositories", [], body);
}

function emptyState(ctx: PageContext, filter: string): Html {
  if (filter !== "") {
    return markup`<p>No repository you may see matches “${filter}” on this page.</p>`;
  }
  return markup`
    <p>No repositories${ctx.user === undefined ? "" : " you may pull"} yet. Push one, e.g.:</p>
    <p
      class="commands"><code data-copy="" data-copy-label="push command">skopeo copy --dest-tls-verify=false docker-archive:image.tar docker://${ctx.host}/my/app:v1</code></p>
  `;
}
