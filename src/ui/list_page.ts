/**
 * The repository list page (`/ui/`): a filter box (server-side over the catalog, narrowed as
 * you type by the script), one row per repository, and a link to the next page.
 *
 * The table's rows are laid out as grids of fixed columns (class `rows`), so rows below the
 * window skip layout and paint until scrolled to (`content-visibility: auto`): the first paint
 * costs the rows on screen, not the 100 of the page. Table layout would size every column from
 * every row; the explicit ARIA roles keep it a table for assistive technology whatever its CSS
 * `display`.
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
      <tr data-key="${row.name}" role="row">
        <td role="cell"><a href="${repositoryUrl(row.name)}">${row.name}</a></td>
        <td class="num" role="cell">${row.tagCount}</td>
        <td role="cell">${
      row.manyTags
        ? markup`<a href="${
          repositoryUrl(row.name, { sort: "pushed", order: "desc" })
        }" title="Its tags, newest push first">newest tags</a>`
        : timeElement(row.lastPushed, ctx.now)
    }</td>
      </tr>
    `
  );
  const table = list.rows.length === 0 ? emptyState(ctx, filter) : markup`
    <div class="table-wrap">
      <table id="repositories" class="rows" role="table">
        <caption class="visually-hidden">Repositories${
    filter === "" ? "" : markup`
          matching &ldquo;${filter}&rdquo;
        `
  }</caption>
        <thead role="rowgroup">
          <tr role="row">
            <th role="columnheader" scope="col">Repository</th>
            <th role="columnheader" scope="col" class="num">Tags</th>
            <th role="columnheader" scope="col">Last pushed</th>
          </tr>
        </thead>
        <tbody role="rowgroup">
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
    }">${list.partial ? "Search further" : "Next page"} &rarr;</a></nav>
    `
    : "";
  const body = markup`
    <h1>Repositories</h1>
    <form class="filter" role="search" method="get" action="${listUrl()}">
      <label for="filter">Filter</label>
      <input id="filter" name="q" type="search" value="${filter}" placeholder="name contains&hellip;"
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
    return markup`<p>No repository you may see matches &ldquo;${filter}&rdquo; on this page.</p>`;
  }
  return markup`
    <p>No repositories${ctx.user === undefined ? "" : " you may pull"} yet. Push one, e.g.:</p>
    <p
      class="commands"><code data-copy="" data-copy-label="push command">skopeo copy --dest-tls-verify=false docker-archive:image.tar docker://${ctx.host}/my/app:v1</code></p>
  `;
}
