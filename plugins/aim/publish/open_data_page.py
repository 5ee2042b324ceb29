"""The open data page of the static site (`data.html`, beside the scorecard's `index.html`).

    open_data_page_data(url, datasets) -> the page's data (data["catalog"] of render_site)
    render_open_data_html(site_data)   -> data.html as text

The page is built from what catalog/data.json is built from: the inventory (dags/datasets/*.yaml)
and the publication records (ops.dataset_release). Per released data set: its description,
department, update frequency, its source's newest data (`aim.freshness`: the newest day the source
delivered data for, with a "Late" note when that is older than the source promises), when its
published data last changed and its row count, a download in each
format, its data dictionary (the fields of the published `<id>.schema.json`), its archive by date and the scorecard measures computed
from it. A released data set not published yet is listed as such, without a link: the page never
links to a file that does not exist. Then the public data sets that are planned (inventoried,
under review), by priority; sensitive and restricted ones are never listed. Links are relative
only; the page needs no JavaScript.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable

from aim import clock, db, settings
from aim.freshness import current as current_freshness
from aim.measures import MeasureError, parse_measure_file
from aim.measures.files import file_name_for_code
from aim.publish.datasets import DatasetConfig
from aim.publish.formats import CSV_FORMULA_NOTE
from aim.publish.site import (DATA_PAGE, DEFAULT_TITLE, INDEX_PAGE, _as_of_html, _details_table, _e, _site_pages,
                              dataset_anchor, format_as_of, freshness_html, frequency_words, measure_anchors,
                              page_shell, relative_href)

CATALOG_PATH = "catalog/data.json"  # beside site/, under the export root
# The files of a published data set: (extension, format, media type, what the file type is).
DOWNLOADS = (("csv", "CSV", "text/csv", "comma-separated values"),
             ("json", "JSON", "application/json", "JSON records"),
             ("parquet", "Parquet", "application/vnd.apache.parquet", "Apache Parquet, for data tools"))
RELEASE_STATUS_WORDS = {"inventoried": "Inventoried", "under_review": "Under review", "approved": "Approved",
                        "published": "Published", "retired": "Retired"}
LICENSE_NAMES = {
    "https://creativecommons.org/licenses/by/4.0/": "Creative Commons Attribution 4.0 International (CC BY 4.0)",
    "https://creativecommons.org/publicdomain/zero/1.0/": "CC0 1.0 Universal (public domain dedication)",
    "https://opendatacommons.org/licenses/pddl/1-0/": "Open Data Commons Public Domain Dedication and License",
}
ARCHIVE_OPEN_LIMIT = 3  # more snapshots than this: the archive list is closed in a <details>
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# ---------------------------------------------------------------------------------------------
# The page's data, from the warehouse
# ---------------------------------------------------------------------------------------------

def _iso(moment) -> str | None:
    """A moment as the site writes it: Milwaukee time, to the second, with its offset."""
    return None if moment is None else moment.astimezone(clock.LOCAL_ZONE).replace(microsecond=0).isoformat()


def _measures_by_source(cur) -> dict[str, list[str]]:
    """The current measures' codes by the source they read: as `core.aim_measure_file` recorded it,
    else (a measure not computed yet) as its measure file's header declares."""
    cur.execute("""
        SELECT d.measure_code, f.sources FROM marts.measure_definitions d
        LEFT JOIN core.aim_measure_file f ON f.measure_code = d.measure_code
        WHERE d.is_current ORDER BY d.measure_code""")
    found: dict[str, list[str]] = {}
    for code, sources in cur.fetchall():
        if sources is None:
            path = settings.measures_dir() / file_name_for_code(code)
            try:
                sources = sorted({r.table for r in parse_measure_file(path).dated_reads}) if path.is_file() else []
            except MeasureError:
                sources = []
        for source in sources:
            if code not in found.setdefault(source, []):
                found[source].append(code)
    return found


def _fields(dataset: DatasetConfig, read_file: Callable[[str], bytes | None]) -> list[dict]:
    """The data set's fields (name, type, description) as its published `<id>.schema.json` has them;
    [] when there is no such file."""
    found = read_file(f"latest/{dataset.id}/{dataset.id}.schema.json")
    if not found:
        return []
    return [{"name": f["name"], "type": f["type"], "description": f.get("description", "")}
            for f in json.loads(found)["fields"]]


def _entry(dataset: DatasetConfig, releases: list[tuple], measures: list[str], base: str,
           freshness: dict | None = None) -> dict:
    """A data set as the page lists it, from its releases (newest first): downloads, dictionary and
    archive only when it has been published; `freshness`, its source's (None: it has no source)."""
    latest = f"{base}latest/{dataset.id}/{dataset.id}"
    archive, seen = [], set()
    for _released_at, _rows, path in releases:
        path = path.rstrip("/")
        if path in seen:
            continue
        seen.add(path)
        archive.append({"date": path.rsplit("/", 1)[-1], "href": f"{base}{path}/{dataset.id}.csv"})
    archive.sort(key=lambda a: a["date"], reverse=True)
    published = bool(releases)
    return {
        "id": dataset.id, "title": dataset.title, "description": dataset.public_description,
        "department": dataset.department, "frequency": frequency_words(dataset.accrual_periodicity),
        "data_as_of": _iso(releases[0][0]) if published else None,
        "freshness": freshness,
        "rows": int(releases[0][1]) if published else None,
        "downloads": [{"format": name, "href": f"{latest}.{ext}", "media_type": media, "file_type": kind}
                      for ext, name, media, kind in DOWNLOADS] if published else [],
        "dictionary_href": f"{latest}.schema.json" if published else None,
        "fields": [],
        "archive": archive,
        "license": dataset.license,
        "contact": {"name": dataset.contact.name, "email": dataset.contact.email},
        "keywords": list(dataset.keywords),
        "measures": list(measures),
    }


def open_data_page_data(url: str, datasets: list[DatasetConfig], read_file: Callable[[str], bytes | None],
                        base: str = "../", freshness: dict[str, dict] | None = None) -> dict:
    """The open data page's data (JSON-like): `catalog_href`; `released`, every released data set in
    inventory order, published or not (then without downloads, dictionary or archive); `planned`, the
    public data sets neither released nor retired, by release priority; `retired`, those with an
    archive. `read_file(relpath)` reads a published file under the export root (the data
    dictionaries shown are the published `.schema.json` files); `base` is the export root relative
    to the site folder. Each released data set of a source has its source's `freshness`
    (`aim.freshness.SourceFreshness.public()`): from `freshness` by source, else computed now."""
    released = [d for d in datasets if d.released]
    retired = [d for d in datasets if d.release_status == "retired"]
    planned = sorted((d for d in datasets if d.sensitivity == "public" and not d.released
                      and d.release_status != "retired"), key=lambda d: (d.release_priority, d.id))
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT dataset, released_at, rows, archive_path FROM ops.dataset_release "
                    "ORDER BY dataset, released_at DESC, sha256")
        releases: dict[str, list[tuple]] = {}
        for dataset_id, *release in cur.fetchall():
            releases.setdefault(dataset_id, []).append(tuple(release))
        measures = _measures_by_source(cur)
    if freshness is None:
        freshness = {source: f.public() for source, f in
                     current_freshness(url, {d.source for d in released if d.source}).items()}
    entries = []
    for dataset in released:
        entry = _entry(dataset, releases.get(dataset.id, []), measures.get(dataset.source or "", []), base,
                       freshness.get(dataset.source or ""))
        if entry["downloads"]:
            entry["fields"] = _fields(dataset, read_file)
        entries.append(entry)
    gone = []
    for dataset in retired:
        if dataset.id in releases:
            entry = _entry(dataset, releases[dataset.id], measures.get(dataset.source or "", []), base)
            entry.update(retired=True, downloads=[], dictionary_href=None, frequency="No longer updated")
            gone.append(entry)
    return {
        "catalog_href": f"{base}{CATALOG_PATH}",
        "released": entries,
        "planned": [{"id": d.id, "title": d.title, "description": d.public_description, "department": d.department,
                     "release_status": d.release_status, "release_priority": d.release_priority} for d in planned],
        "retired": gone,
    }


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

def _date_text(date: str) -> str:
    return format_as_of(date) if _DATE.match(date or "") else str(date or "")


def _hidden(text: str) -> str:
    return f'<span class="visually-hidden">{text}</span>'


def _rows_text(rows: Any) -> str:
    try:
        count = int(rows)
    except (TypeError, ValueError):
        return '<span class="missing">Not published yet</span>'
    return f"{count:,}"


def _license_html(license_uri: Any) -> str:
    uri = "" if license_uri is None else str(license_uri)
    name = LICENSE_NAMES.get(uri)
    return f"{_e(name)} <code>{_e(uri)}</code>" if name else f"<code>{_e(uri)}</code>"


def _facts_html(entry: dict) -> str:
    facts = [("Department", _e(entry.get("department"))),
             ("Updated", _e(entry.get("frequency")))]
    if entry.get("freshness") is not None:  # its source's newest data, and whether it is late
        facts.append(("Newest data", freshness_html(entry["freshness"])))
    as_of = entry.get("data_as_of")
    facts.append(("Data as of", f'<time datetime="{_e(as_of)}">{_e(format_as_of(as_of))}</time>' if as_of
                  else '<span class="missing">Not published yet</span>'))
    facts.append(("Rows", _rows_text(entry.get("rows"))))
    facts.append(("Identifier", f"<code>{_e(entry.get('id'))}</code>"))
    if entry.get("license"):
        facts.append(("License", _license_html(entry["license"])))
    contact = entry.get("contact") or {}
    if contact.get("name") or contact.get("email"):
        email = f" <code>{_e(contact['email'])}</code>" if contact.get("email") else ""
        facts.append(("Contact", f"{_e(contact.get('name'))}{email}"))
    if entry.get("keywords"):
        facts.append(("Keywords", _e(", ".join(str(k) for k in entry["keywords"]))))
    return ('<dl class="dataset-facts">' + "".join(f"<div><dt>{label}</dt><dd>{value}</dd></div>"
                                                   for label, value in facts) + "</dl>")


def _downloads_html(entry: dict, aid: str) -> str:
    title = _e(entry.get("title") or entry.get("id"))
    heading = f'<h4 id="{aid}-downloads">Downloads</h4>'
    downloads = entry.get("downloads") or []
    if not downloads:
        return (heading + '<p class="not-published">Not published yet: the files will be here after the data set\'s '
                "first publication.</p>")
    items = []
    for download in downloads:
        href = relative_href(download.get("href"))
        fmt = _e(download.get("format"))
        ext = href.rsplit(".", 1)[-1] if "." in href.rsplit("/", 1)[-1] else ""
        kind = ", ".join(x for x in (_e(download.get("file_type")), f".{_e(ext)}" if ext else "") if x)
        media = f' type="{_e(download["media_type"])}"' if download.get("media_type") else ""
        items.append(f'<li><a href="{_e(href)}"{media}>{fmt}{_hidden(f": {title}")}</a>'
                     + (f' <span class="file-type">({kind})</span>' if kind else "") + "</li>")
    if entry.get("dictionary_href"):
        items.append(f'<li><a href="{_e(relative_href(entry["dictionary_href"]))}" type="application/json">'
                     f'Data dictionary{_hidden(f": {title}")}</a> '
                     '<span class="file-type">(Table Schema, JSON, .schema.json)</span></li>')
    return heading + f'<ul class="downloads">{"".join(items)}</ul>'


def _dictionary_html(entry: dict) -> str:
    """The fields as a table, closed in a <details>. The CSV's formula rule, which ends every text
    field's description in the Table Schema, is said once under the table instead of on every row."""
    fields = entry.get("fields") or []
    if not fields:
        return ""
    rows, noted = [], False
    for f in fields:
        description = str(f.get("description") or "")
        if f.get("type") == "string" and description.endswith(CSV_FORMULA_NOTE):
            description, noted = description.removesuffix(CSV_FORMULA_NOTE).rstrip(), True
        text = _e(description) if description else '<span class="missing">No description</span>'
        rows.append(f'<tr><th scope="row"><code>{_e(f.get("name"))}</code></th><td>{_e(f.get("type"))}</td>'
                    f"<td>{text}</td></tr>")
    title = _e(entry.get("title") or entry.get("id"))
    table = _details_table("dictionary", f"Data dictionary ({len(fields)} field{'' if len(fields) == 1 else 's'})",
                           f"{title}: fields, as in its Table Schema", ("Field", "Type", "Description"), "".join(rows))
    if noted:
        table = table.removesuffix("</details>") + (
            f'<p class="dictionary-note">Text (string) fields: {_e(CSV_FORMULA_NOTE)}</p></details>')
    return table


def _archive_html(entry: dict, aid: str) -> str:
    archive = entry.get("archive") or []
    if not archive:
        return ""
    title = _e(entry.get("title") or entry.get("id"))
    items = "".join(
        f'<li><a href="{_e(relative_href(a.get("href")))}" type="text/csv">'
        f'<time datetime="{_e(a.get("date"))}">{_e(_date_text(a.get("date")))}</time>'
        f'{_hidden(f": {title}, CSV")}</a></li>' for a in archive)
    note = ('<p class="archive-note">Each snapshot is the data set as first released that day, kept unchanged; '
            "its folder also holds the JSON and Parquet files and the data dictionary.</p>")
    listing = f'<ul class="archive-list">{items}</ul>'
    count = len(archive)
    heading = f'<h4 id="{aid}-archive">Archive</h4>'
    if count > ARCHIVE_OPEN_LIMIT:
        return (heading + note + f'<details class="archive"><summary>{count} snapshots, newest first</summary>'
                f"{listing}</details>")
    return heading + note + listing


def _measures_html(entry: dict, aid: str, anchors: dict[str, str], names: dict[str, str]) -> str:
    codes = [str(c) for c in entry.get("measures") or []]
    if not codes:
        return ""
    items = []
    for code in codes:
        label = f"{code}: {names[code]}" if names.get(code) else code
        items.append(f'<li><a href="{INDEX_PAGE[0]}#{anchors[code]}">{_e(label)}</a></li>' if code in anchors
                     else f"<li>{_e(label)}</li>")
    return (f'<h4 id="{aid}-measures">On the scorecard</h4>'
            f'<p>Measures computed from this data:</p><ul class="dataset-measures">{"".join(items)}</ul>')


def _dataset_html(entry: dict, anchors: dict[str, str], names: dict[str, str]) -> str:
    aid = dataset_anchor(entry.get("id"))
    retired = bool(entry.get("retired"))
    parts = [f'<article class="dataset{" retired" if retired else ""}" id="{aid}" aria-labelledby="{aid}-title">',
             f'<h3 id="{aid}-title">{_e(entry.get("title") or entry.get("id"))}</h3>']
    if retired:
        parts.append('<p class="retired-note">Retired: no longer updated. Its archive stays available.</p>')
    if entry.get("description"):
        parts.append(f'<p class="dataset-description">{_e(entry["description"])}</p>')
    parts.append(_facts_html(entry))
    if not retired:
        parts.append(_downloads_html(entry, aid))
        parts.append(_dictionary_html(entry))
    parts.append(_archive_html(entry, aid))
    parts.append(_measures_html(entry, aid, anchors, names))
    parts.append("</article>")
    return "".join(p for p in parts if p)


def _planned_html(planned: list[dict]) -> str:
    intro = ('<p>Data sets the city has inventoried and means to release, in order of priority (1 first). '
             "Sensitive and restricted data sets are not listed.</p>")
    if not planned:
        return intro + "<p>None at the moment.</p>"
    rows = "".join(
        f'<tr><th scope="row">{_e(p.get("title") or p.get("id"))} <code>{_e(p.get("id"))}</code>'
        + (f'<span class="planned-description">{_e(p["description"])}</span>' if p.get("description") else "")
        + f'</th><td>{_e(p.get("department"))}</td>'
        f'<td>{_e(RELEASE_STATUS_WORDS.get(str(p.get("release_status")), p.get("release_status")))}</td>'
        f'<td>{_e(p.get("release_priority"))}</td></tr>' for p in planned)
    return (intro + '<div class="table-scroll" role="region" tabindex="0" aria-label="Data sets coming next, by '
            'priority"><table class="planned"><caption>Data sets coming next, by '
            'priority</caption><thead><tr><th scope="col">Data set</th><th scope="col">Department</th>'
            '<th scope="col">Release status</th><th scope="col">Priority</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def render_open_data_html(data: dict) -> str:
    """The open data page (data.html) as text, from the site's data: data["catalog"] (what
    `open_data_page_data` returns), data["title"] and data["as_of"], and data["priorities"] for the
    links back to the measures' cards on index.html. Text is escaped; links are relative only
    (ValueError otherwise); the same data gives the same page."""
    catalog = data.get("catalog") or {}
    site_title = str(data.get("title") or DEFAULT_TITLE)
    as_of = data.get("as_of")
    released = catalog.get("released") or []
    planned = catalog.get("planned") or []
    retired = catalog.get("retired") or []
    anchors: dict[str, str] = {}
    for code, anchor in measure_anchors(data.get("priorities") or []):
        anchors.setdefault(code, anchor)
    names = {str(m.get("code")): str(m.get("name") or "") for p in data.get("priorities") or []
             for m in p.get("measures") or [] if m.get("code")}

    published = sum(1 for d in released if d.get("downloads"))
    toc = "".join(f'<li><a href="#{dataset_anchor(d.get("id"))}">{_e(d.get("title") or d.get("id"))}</a>'
                  + ("" if d.get("downloads") else ' <span class="format">(not published yet)</span>') + "</li>"
                  for d in released)
    toc_html = ('<nav aria-label="On this page"><ul class="toc"><li><a href="#published">Data sets</a>'
                + (f"<ul>{toc}</ul>" if toc else "") + '</li><li><a href="#coming-next">Coming next</a></li>'
                + ('<li><a href="#retired">Retired data sets</a></li>' if retired else "") + "</ul></nav>")
    catalog_link = ""
    if catalog.get("catalog_href"):
        catalog_link = (f'<p class="catalog-link"><a href="{_e(relative_href(catalog["catalog_href"]))}" '
                        'type="application/json">Machine-readable catalog of these data sets</a> '
                        '<span class="file-type">(DCAT-US 1.1, JSON, catalog/data.json)</span></p>')
    main = (
        '<section class="summary" aria-labelledby="about-heading">'
        '<h2 id="about-heading">About the open data</h2>'
        f'<p class="lede">{len(released)} data set{"" if len(released) == 1 else "s"} released by the City of '
        f"Milwaukee ({published} published so far), free to download and reuse under the license shown with "
        "each. Every data set comes as CSV, JSON and Parquet, with a data dictionary (Table Schema) and an "
        "archive of earlier versions by date. The scorecard's measures are computed from them.</p>"
        f"{catalog_link}{toc_html}</section>\n"
        '<section class="datasets-section" id="published" aria-labelledby="published-heading">'
        '<h2 id="published-heading">Data sets</h2>'
        + ("".join(_dataset_html(d, anchors, names) for d in released) if released
           else "<p>No data sets are released yet.</p>")
        + "</section>\n"
        '<section class="coming-next" id="coming-next" aria-labelledby="coming-next-heading">'
        f'<h2 id="coming-next-heading">Coming next</h2>{_planned_html(planned)}</section>\n'
        + ('<section class="datasets-section" id="retired" aria-labelledby="retired-heading">'
           '<h2 id="retired-heading">Retired data sets</h2>'
           + "".join(_dataset_html(d, anchors, names) for d in retired) + "</section>\n" if retired else "")
    )
    footer = (f"<p>{_e(site_title)}: open data. Data as of {_as_of_html(as_of)}. Each data set's own date is "
              "when its data last changed.</p>")
    return page_shell(
        title=f"Open data - {site_title}", heading="Open data", as_of=as_of, current=DATA_PAGE[0],
        pages=_site_pages(data), skip_text="Skip to the open data",
        description=f"{len(released)} open data sets of the City of Milwaukee: downloads, data dictionaries "
                    "and archives.",
        main=main, footer=footer)
