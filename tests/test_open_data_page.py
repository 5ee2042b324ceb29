"""The open data page (site/data.html) and its links with the scorecard (site/index.html).

Unit tests render the page from a realistic fixture: the scorecard fixture of test_scorecard_site
plus the catalog `open_data_page_data` would build (published data sets with their downloads,
dictionary and archive, one released but not published yet, planned and retired ones).

The end-to-end test builds a warehouse with real components, as cheaply as it can: migrations,
two sources ingested by their DAGs (`dag.test()`: the budget office's registry and the DNS code
enforcement workbooks), the measures DAG, and a full publication to a local folder (the other
sources never load, so their data sets are released but not published yet); then a second
publication on the next day after the DNS data changed (a second archive snapshot). It follows
every link of site/index.html and site/data.html: each relative href/src names a file of the
export folder, and each #fragment an element id of the page it points to.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import re
from html import unescape
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from aim.publish.formats import CSV_FORMULA_NOTE
from aim.publish.open_data_page import render_open_data_html
from aim.publish.site import format_as_of, frequency_words, render_html, render_site
from small_city import load_registry_and_dns_orders
from test_scorecard_site import EVIL, Page, measures_of, scorecard_data

AS_OF_RELEASE = "2026-11-26T06:05:00-06:00"


def _files(dataset_id: str) -> tuple[list[dict], str]:
    base = f"../latest/{dataset_id}/{dataset_id}"
    return ([{"format": "CSV", "href": f"{base}.csv", "media_type": "text/csv", "file_type": "comma-separated values"},
             {"format": "JSON", "href": f"{base}.json", "media_type": "application/json", "file_type": "JSON records"},
             {"format": "Parquet", "href": f"{base}.parquet", "media_type": "application/vnd.apache.parquet",
              "file_type": "Apache Parquet, for data tools"}], f"{base}.schema.json")


def _archive(dataset_id: str, dates: list[str]) -> list[dict]:
    return [{"date": d, "href": f"../archive/{dataset_id}/{d}/{dataset_id}.csv"} for d in dates]


def _entry(dataset_id: str, title: str, department: str, periodicity: str, rows: int | None,
           fields: list[tuple], archive: list[str], measures: list[str]) -> dict:
    downloads, dictionary = _files(dataset_id)
    published = rows is not None
    return {
        "id": dataset_id, "title": title, "description": f"{title}: one row per record, as the department keeps it.",
        "department": department, "frequency": frequency_words(periodicity),
        "data_as_of": AS_OF_RELEASE if published else None, "rows": rows,
        "downloads": downloads if published else [], "dictionary_href": dictionary if published else None,
        "fields": [{"name": n, "type": t, "description": d} for n, t, d in fields] if published else [],
        "archive": _archive(dataset_id, archive) if published else [],
        "license": "https://creativecommons.org/licenses/by/4.0/",
        "contact": {"name": f"{department} open data", "email": "opendata@milwaukee.gov"},
        "keywords": [department.lower(), "open data"], "measures": measures,
    }


# The scorecard fixture's data sets (same ids), as data.html lists them.
RELEASED = [
    _entry("mpd-crime-incidents", "Crime incidents", "Police (MPD)", "R/P1D", 184_392,
           [("incident_num", "string", f"Incident number. {CSV_FORMULA_NOTE}"),
            ("reported_at", "datetime", "When the incident was reported (UTC)."),
            ("ald", "integer", "Aldermanic district.")],
           ["2026-11-26", "2026-11-25", "2026-11-24", "2026-11-23", "2026-10-01"], ["SAF-01", "SAF-02"]),
    _entry("mfd-dispatch", "Fire and EMS dispatches", "Fire (MFD)", "R/P1D", 96_120,
           [("incident_id", "string", "CAD incident."), ("dispatched_at", "datetime", "Dispatch time.")],
           ["2026-11-26", "2026-11-19"], ["SAF-03", "SAF-04"]),
    _entry("dns-code-enforcement", "Code enforcement orders", "Neighborhood Services (DNS)", "R/P1W", 12_004,
           [("order_number", "string", "Order number."), ("issued_on", "date", "Issue date."),
            ("complied", "boolean", "Whether the order was complied with.")],
           ["2026-11-23"], ["ECO-01", "ECO-02"]),
    _entry("mhd-lead-tests", "Blood lead tests", "Health (MHD)", "R/P1M", 1_404,
           [("month", "date", "Month."), ("children_tested", "integer", "Children tested. Counts from 1 to 4 are "
                                                                        "suppressed (published empty).")],
           ["2026-11-02"], ["CHI-01", "CHI-02"]),
    # released, but its source has not loaded yet: listed, never linked
    _entry("call-center-requests", "311 service requests", "Public Works (DPW)", "R/PT1H", None, [], [],
           ["PHY-01", "PHY-02", "PHY-03", "PHY-04"]),
    _entry("aim-measures", "AIM measure values", "Budget and Management (BMO)", "R/P1D", 7_236,
           [("measure_code", "string", "Measure code."), ("value", "number", "The value.")],
           ["2026-11-26", "2026-11-25"], []),
    _entry("open-data-inventory", "Open data inventory", "Information and Technology Management (ITMD)",
           "irregular", 10, [("dataset_id", "string", "Data set.")], ["2026-06-17"], []),
]
NOT_PUBLISHED = "call-center-requests"
PLANNED = [
    {"id": "dpw-snow-plow-locations", "title": "Snow plow locations", "description": "Where the plows are.",
     "department": "Public Works (DPW)", "release_status": "inventoried", "release_priority": 7},
    {"id": "mpd-traffic-stops", "title": "Traffic stops", "description": "Stops by month and district.",
     "department": "Police (MPD)", "release_status": "under_review", "release_priority": 8},
]
RETIRED = [{**_entry("dpw-potholes-2019", "Pothole requests (2019 system)", "Public Works (DPW)", "R/P1D", 50_000,
                     [("request_id", "string", "Request.")], ["2020-01-15", "2019-12-31"], []),
            "retired": True, "downloads": [], "dictionary_href": None, "frequency": "No longer updated"}]
CATALOG = {"catalog_href": "../catalog/data.json", "released": RELEASED, "planned": PLANNED, "retired": RETIRED}
SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*:|//|/|\\)", re.IGNORECASE)


def site_data() -> dict:
    data = scorecard_data()
    data["catalog"] = copy.deepcopy(CATALOG)
    return data


@pytest.fixture(scope="module")
def data() -> dict:
    return site_data()


@pytest.fixture(scope="module")
def site(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    render_site(data, out)
    return out


@pytest.fixture(scope="module")
def page(site) -> str:
    return (site / "data.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def index(site) -> str:
    return (site / "index.html").read_text(encoding="utf-8")


def words(fragment: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", "", fragment))).strip()


def article(html: str, element_id: str) -> str:
    found = re.search(rf'<article [^>]*id="{re.escape(element_id)}".*?</article>', html, re.DOTALL)
    assert found, f"no <article id={element_id}>"
    return found.group(0)


def links(html: str) -> list[tuple[str, str]]:
    """(href, link text with hidden text) of every <a>."""
    return [(unescape(h), words(t)) for h, t in re.findall(r'<a [^>]*href="([^"]*)"[^>]*>(.*?)</a>', html, re.DOTALL)]


def ids_of(html: str) -> set[str]:
    return {unescape(i) for i in re.findall(r'\sid="([^"]*)"', html)}


# ---------------------------------------------------------------------------------------------
# Unit tests of the page
# ---------------------------------------------------------------------------------------------

def test_render_site_writes_data_html_beside_index(data, tmp_path):
    written = render_site(data, tmp_path)
    assert written[:2] == [tmp_path / "index.html", tmp_path / "data.html"]
    without = copy.deepcopy(data)
    del without["catalog"]
    assert (tmp_path / "plain").joinpath("data.html") not in render_site(without, tmp_path / "plain")
    assert not (tmp_path / "plain" / "data.html").exists()


def test_every_released_data_set_has_its_entry(page):
    for entry in RELEASED:
        body = article(page, f"dataset-{entry['id']}")
        text = words(body)
        assert re.search(rf'<h3 id="dataset-{entry["id"]}-title">{re.escape(entry["title"])}</h3>', body)
        assert entry["description"] in text and entry["department"] in text
        assert f"Updated{entry['frequency']}" in text
        if entry["rows"] is None:
            assert "Data as ofNot published yet" in text and "RowsNot published yet" in text
        else:
            assert f"Rows{entry['rows']:,}" in text
            assert f'<time datetime="{AS_OF_RELEASE}">{format_as_of(AS_OF_RELEASE)}</time>' in body
        assert "Creative Commons Attribution 4.0" in text and "opendata@milwaukee.gov" in text
    assert [words(t) for t in re.findall(r"<dt>Updated</dt><dd>(.*?)</dd>", page)][:7] == [
        "Daily", "Daily", "Weekly", "Monthly", "Hourly", "Daily", "As needed"]


def test_downloads_name_the_format_and_the_data_set(page):
    for entry in RELEASED:
        if entry["id"] == NOT_PUBLISHED:
            continue
        body = article(page, f"dataset-{entry['id']}")
        found = dict(links(body))
        for download in entry["downloads"]:
            # the link text says which format of which data set, out of context too
            assert found[download["href"]] == f"{download['format']}: {entry['title']}"
            assert f'type="{download["media_type"]}"' in re.search(
                rf'<a href="{re.escape(download["href"])}"[^>]*>', body).group(0)
            ext = download["href"].rsplit(".", 1)[1]
            assert f"({download['file_type']}, .{ext})" in words(body)
        assert found[entry["dictionary_href"]] == f"Data dictionary: {entry['title']}"
        assert "Table Schema, JSON" in words(body)


def dictionary_rows(fields: list[dict]) -> list[tuple[str, str, str]]:
    """The rows the page shows for `fields`: a text field's description without the CSV formula rule,
    which is said once, under the table."""
    return [(f["name"], f["type"], f["description"].removesuffix(CSV_FORMULA_NOTE).rstrip()
             if f["type"] == "string" else f["description"]) for f in fields]


def test_data_dictionary_is_a_closed_table(page):
    for entry in RELEASED:
        body = article(page, f"dataset-{entry['id']}")
        table = re.search(r'<details class="dictionary">(.*?)</details>', body, re.DOTALL)
        if not entry["fields"]:
            assert table is None
            continue
        assert table, entry["id"]
        html = table.group(1)
        assert f"<caption>{entry['title']}: fields" in html
        assert re.findall(r'<th scope="col">(.*?)</th>', html) == ["Field", "Type", "Description"]
        rows = re.findall(r'<tr><th scope="row"><code>(.*?)</code></th><td>(.*?)</td><td>(.*?)</td></tr>', html)
        assert [(unescape(n), t, unescape(d)) for n, t, d in rows] == dictionary_rows(entry["fields"])
        noted = any(f["description"].endswith(CSV_FORMULA_NOTE) for f in entry["fields"])
        assert (f"Text (string) fields: {CSV_FORMULA_NOTE}" in words(html)) == noted, entry["id"]
        summary = f"Data dictionary ({len(entry['fields'])} field{'' if len(entry['fields']) == 1 else 's'})"
        assert f"<summary>{summary}</summary>" in html


def test_archive_is_listed_by_date_newest_first(page):
    for entry in RELEASED + RETIRED:
        body = article(page, f"dataset-{entry['id']}")
        archived = re.findall(r'<a href="(\.\./archive/[^"]*)"[^>]*><time datetime="([^"]*)">(.*?)</time>', body)
        assert [(h, d) for h, d, _ in archived] == [(a["href"], a["date"]) for a in entry["archive"]], entry["id"]
        assert all(text == format_as_of(d) for _, d, text in archived)
        long = len(entry["archive"]) > 3
        assert ('<details class="archive">' in body) == long, entry["id"]
    body = article(page, "dataset-mpd-crime-incidents")
    assert "<summary>5 snapshots, newest first</summary>" in body
    assert dict(links(body))["../archive/mpd-crime-incidents/2026-11-26/mpd-crime-incidents.csv"] == (
        "November 26, 2026: Crime incidents, CSV")


def test_a_data_set_not_published_yet_has_no_link_to_its_files(page, index):
    body = article(page, f"dataset-{NOT_PUBLISHED}")
    assert "Not published yet" in words(body)
    assert not [h for h, _ in links(body) if "latest/" in h or "archive/" in h]
    for html in (page, index):
        assert f"latest/{NOT_PUBLISHED}/" not in html and f"archive/{NOT_PUBLISHED}/" not in html
    # the scorecard's measures say so too, and link to its entry
    card = article(index, "m-phy-01")
    sources = re.search(r"<dt>Source data</dt><dd>(.*?)</dd>", card, re.DOTALL).group(1)
    assert links(sources) == [(f"data.html#dataset-{NOT_PUBLISHED}", "311 service requests")]
    assert "not published yet" in words(sources)


def test_planned_data_sets_with_status_and_priority(page):
    section = re.search(r'<section class="coming-next" id="coming-next".*?</section>', page, re.DOTALL).group(0)
    assert '<h2 id="coming-next-heading">Coming next</h2>' in section
    rows = re.findall(r'<tr><th scope="row">(.*?)</th><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>', section)
    assert [(words(t), d, s, p) for t, d, s, p in rows] == [
        (f"{p['title']} {p['id']}{p['description']}", p["department"], status, str(p["release_priority"]))
        for p, status in zip(PLANNED, ("Inventoried", "Under review"))]
    assert "<caption>" in section and section.count('scope="col"') == 4


def test_retired_data_sets_keep_only_their_archive(page):
    body = article(page, "dataset-dpw-potholes-2019")
    assert "Retired: no longer updated" in words(body)
    assert not [h for h, _ in links(body) if "latest/" in h]
    assert "UpdatedNo longer updated" in words(body)


def test_measures_link_to_their_cards_and_cards_to_the_data_sets(page, index, data):
    card_ids, entry_ids = ids_of(index), ids_of(page)
    names = {m["code"]: m["name"] for m in measures_of(data)}
    for entry in RELEASED:
        body = article(page, f"dataset-{entry['id']}")
        shown = [(h, t) for h, t in links(body) if h.startswith("index.html#")]
        assert shown == [(f"index.html#m-{code.lower()}", f"{code}: {names[code]}") for code in entry["measures"]]
        assert all(h.split("#")[1] in card_ids for h, _ in shown)
    published = {e["id"]: e for e in RELEASED if e["downloads"]}
    for measure in measures_of(data):
        card = article(index, f"m-{measure['code'].lower()}")
        sources = re.search(r"<dt>Source data</dt><dd>(.*?)</dd>", card, re.DOTALL).group(1)
        found = links(sources)
        for source in measure["sources"]:
            for dataset in source["datasets"]:
                assert (f"data.html#dataset-{dataset['id']}", dataset["title"]) in found
                assert f"dataset-{dataset['id']}" in entry_ids
                if dataset["id"] in published:  # the CSV is still offered, named for the data set
                    assert (dataset["href"], f"CSV: {dataset['title']}") in found


def test_site_navigation_on_both_pages(page, index):
    for html, current in ((index, "index.html"), (page, "data.html")):
        nav = re.search(r'<nav class="site-nav" aria-label="Site">(.*?)</nav>', html, re.DOTALL).group(1)
        items = re.findall(r'<a href="([^"]*)"( aria-current="page")?>(.*?)</a>', nav)
        assert [(h, t) for h, _, t in items] == [("index.html", "Scorecard"), ("data.html", "Open data")]
        assert [h for h, mark, _ in items if mark] == [current]
    open_data = re.search(r'<section class="open-data" id="data".*?</section>', index, re.DOTALL).group(0)
    assert ("data.html", "Browse the open data sets") in links(open_data)
    assert [h for h, _ in links(open_data)][1:] == [f"data.html#dataset-{e['id']}" for e in RELEASED]
    assert "../catalog/data.json" in dict(links(page))


def test_page_structure(page):
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">')
    parsed = Page(page)
    tags = [t for t, _ in parsed.tags]
    assert tags.count("h1") == 1 and tags.count("main") == 1 and "script" not in tags
    levels = [int(t[1]) for t in tags if re.fullmatch(r"h[1-6]", t)]
    assert all(b <= a + 1 for a, b in zip(levels, levels[1:])), f"a heading level is skipped: {levels}"
    assert tags.count("table") == tags.count("caption")
    assert all(a.get("scope") in ("col", "row") for t, a in parsed.tags if t == "th")
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert any(t == "nav" and a.get("aria-label") == "On this page" for t, a in parsed.tags)
    toc = re.search(r'<nav aria-label="On this page">(.*?)</nav>', page, re.DOTALL).group(1)
    assert [h for h, _ in links(toc)] == ["#published"] + [f"#dataset-{e['id']}" for e in RELEASED] + [
        "#coming-next", "#retired"]


def test_links_are_relative_and_resolve(site, page, index):
    pages = {"index.html": index, "data.html": page}
    for name, html in pages.items():
        for tag, attrs in Page(html).tags:
            for key in ("href", "src"):
                value = attrs.get(key)
                if value is None:
                    continue
                assert not SCHEME.match(value), f"{name}: <{tag} {key}={value!r}>"
                path, _, fragment = value.partition("#")
                if path.startswith("../"):  # the data files live beside the site, not in it
                    continue
                target = path or name
                assert (site / target).is_file(), f"{name}: {value} is not in the site folder"
                if fragment:
                    assert fragment in ids_of(pages[target]), f"{name}: {value} has no target"


def test_hostile_text_is_escaped(data, tmp_path):
    evil = copy.deepcopy(data)
    entry = evil["catalog"]["released"][0]
    entry.update(title=EVIL, description="</p><script>window.__pwned = 8</script>", department="<b>MPD</b>",
                 keywords=["<i>x</i>"], contact={"name": "<img src=x onerror=alert(1)>", "email": "a@b.c"},
                 license="javascript:alert(1)")
    entry["fields"][0].update(name="<script>x</script>", description="<img src=x onerror=alert(2)>")
    entry["archive"][0]["date"] = "<b>2026</b>"
    evil["catalog"]["planned"][0].update(title="<script>window.__pwned = 9</script>", release_status="<i>new</i>")
    evil["catalog"]["released"][1]["id"] = 'x" onmouseover="alert(1)'
    html = render_open_data_html(evil)
    parsed = Page(html)
    assert not any(t in ("script", "img", "b", "i") for t, _ in parsed.tags)
    assert not any(k.startswith("on") for _, a in parsed.tags for k in a)
    assert EVIL in words(article(html, "dataset-mpd-crime-incidents"))
    assert 'id="dataset-x-onmouseover-alert-1"' in html
    assert "javascript:" not in "".join(a.get("href") or "" for _, a in parsed.tags)


@pytest.mark.parametrize("where", ["download", "archive", "dictionary", "catalog"])
def test_absolute_links_are_refused(data, where):
    bad = copy.deepcopy(data)
    entry = bad["catalog"]["released"][0]
    for href in ("https://evil.example/x.csv", "//evil.example/x.csv", "/latest/x.csv", "javascript:alert(1)"):
        if where == "download":
            entry["downloads"][0]["href"] = href
        elif where == "archive":
            entry["archive"][0]["href"] = href
        elif where == "dictionary":
            entry["dictionary_href"] = href
        else:
            bad["catalog"]["catalog_href"] = href
        with pytest.raises(ValueError, match="not a relative link"):
            render_open_data_html(bad)


def test_output_is_deterministic(data, tmp_path):
    first = render_site(data, tmp_path / "a")
    second = render_site(copy.deepcopy(data), tmp_path / "b")
    assert [p.name for p in first] == [p.name for p in second]
    for x, y in zip(first, second):
        assert x.read_bytes() == y.read_bytes()
    changed = copy.deepcopy(data)
    changed["catalog"]["released"][0]["rows"] += 1
    assert render_open_data_html(changed) != render_open_data_html(data)
    assert render_html(changed) == render_html(data), "index.html does not show row counts"


def test_frequency_in_words():
    assert [frequency_words(p) for p in ("R/P1D", "R/P1W", "R/P1M", "R/P1Y", "irregular", "R/PT1H", "R/P3M")] == [
        "Daily", "Weekly", "Monthly", "Yearly", "As needed", "Hourly", "R/P3M"]


# ---------------------------------------------------------------------------------------------
# End to end: a real warehouse, two sources ingested by their DAGs, a real publication
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def export(new_database, airflow_db, tmp_path_factory, clock):
    from aim import db
    from aim.publish.publication import publish
    from aim.storage import LocalTarget

    state = tmp_path_factory.mktemp("city")
    landing, folder = state / "landing", state / "exports"
    url = new_database("aim_odp")
    with pytest.MonkeyPatch.context() as env:
        load_registry_and_dns_orders(env, url, landing, clock, days=70)
        target = LocalTarget(folder)
        first = publish(run_id="first", target=target, today=clock.date())
        # the DNS data changes; the next day's publication releases it again: a second archive snapshot
        with db.transaction(url) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM core.dns_code_enforcement_orders WHERE ctid = "
                        "(SELECT min(ctid) FROM core.dns_code_enforcement_orders)")
            assert cur.rowcount == 1
        second = publish(run_id="second", target=target, today=clock.date() + dt.timedelta(days=1))
        yield {"folder": folder, "first": first, "second": second, "url": url, "target": target}


def _follow(folder: Path, page: Path, html: str) -> list[str]:
    """Every problem with the links of `page`: a link that is not relative, a file that does not
    exist in the export folder, a #fragment with no element of that id on its page."""
    problems = []
    for tag, attrs in Page(html).tags:
        for key in ("href", "src"):
            value = attrs.get(key)
            if value is None:
                continue
            parts = urlsplit(value)
            if SCHEME.match(value) or parts.scheme or parts.netloc:
                problems.append(f"{page.name}: <{tag} {key}={value!r}> is not relative")
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if not target.is_relative_to(folder.resolve()) or not target.is_file():
                problems.append(f"{page.name}: <{tag} {key}={value!r}> names no file of the export")
                continue
            if parts.fragment:
                if target.suffix != ".html":
                    problems.append(f"{page.name}: <{tag} {key}={value!r}>: a fragment of a non-HTML file")
                elif unquote(parts.fragment) not in ids_of(target.read_text(encoding="utf-8")):
                    problems.append(f"{page.name}: <{tag} {key}={value!r}>: no element with that id")
    return problems


def test_every_link_of_the_published_site_resolves(export):
    folder = export["folder"].resolve()
    followed = []
    for name in ("index.html", "data.html"):
        page = folder / "site" / name
        html = page.read_text(encoding="utf-8")
        assert _follow(folder, page, html) == []
        followed += [a.get("href") or a.get("src") for _, a in Page(html).tags if a.get("href") or a.get("src")]
    # every kind of link was there to follow: assets, definitions, the pages and their entries, the
    # data files, the dictionaries, the archive and the catalog
    for kind in (r"^assets/style\.css$", r"^assets/charts\.js$", r"^definitions/eco_01\.sql$", r"^data\.html$",
                 r"^data\.html#dataset-dns-code-enforcement-orders$", r"^index\.html#m-eco-01$", r"^index\.html$",
                 r"^#main$", r"^#priority-1$", r"^#dataset-mpd-crime-incidents$", r"^#coming-next$",
                 r"^\.\./latest/dns-code-enforcement-orders/dns-code-enforcement-orders\.(csv|json|parquet)$",
                 r"^\.\./latest/aim-measure-values/aim-measure-values\.schema\.json$",
                 r"^\.\./archive/dns-code-enforcement-orders/\d{4}-\d{2}-\d{2}/dns-code-enforcement-orders\.csv$",
                 r"^\.\./catalog/data\.json$"):
        assert any(re.match(kind, link) for link in followed), kind


def test_data_page_lists_the_inventory_as_published(export, clock):
    from aim.publish.datasets import inventory

    folder = export["folder"]
    page = (folder / "site" / "data.html").read_text(encoding="utf-8")
    manifest = {f["path"]: f for f in json.loads((folder / "manifest.json").read_text())["files"]}
    everything = inventory()
    skipped = set(export["first"].skipped)
    assert skipped and set(export["second"].skipped) == skipped
    assert "dns-code-enforcement-orders" in export["second"].changed
    for dataset in everything:
        if dataset.sensitivity != "public":  # never listed, not even by name
            assert dataset.id not in page and dataset.title not in page, dataset.id
            continue
        if dataset.released:
            body = article(page, f"dataset-{dataset.id}")
            hrefs = [h for h, _ in links(body)]
            if dataset.id in skipped:
                assert "Not published yet" in words(body) and not [h for h in hrefs if h.startswith("../")]
                continue
            schema = json.loads((folder / "latest" / dataset.id / f"{dataset.id}.schema.json").read_text())
            table = re.search(r'<details class="dictionary">(.*?)</details>', body, re.DOTALL).group(1)
            rows = re.findall(r'<tr><th scope="row"><code>(.*?)</code></th><td>(.*?)</td><td>(.*?)</td></tr>', table)
            assert [(unescape(n), t, unescape(d)) for n, t, d in rows] == dictionary_rows(schema["fields"]), dataset.id
            if any(f["type"] == "string" for f in schema["fields"]):
                assert f"Text (string) fields: {CSV_FORMULA_NOTE}" in words(table)
            for ext in ("csv", "json", "parquet", "schema.json"):
                assert f"../latest/{dataset.id}/{dataset.id}.{ext}" in hrefs
            csv_rows = manifest[f"latest/{dataset.id}/{dataset.id}.csv"]["rows"]
            assert f"<dt>Rows</dt><dd>{csv_rows:,}</dd>" in body
            assert f"Updated{frequency_words(dataset.accrual_periodicity)}" in words(body)
        elif dataset.release_status != "retired":
            coming = re.search(r'<section class="coming-next".*?</section>', page, re.DOTALL).group(0)
            assert f"<code>{dataset.id}</code>" in coming and dataset.title in coming
    dns = article(page, "dataset-dns-code-enforcement-orders")
    dates = re.findall(r'<a href="\.\./archive/dns-code-enforcement-orders/([^/]*)/', dns)
    assert dates == [(clock.date() + dt.timedelta(days=1)).isoformat(), clock.date().isoformat()], "newest first"
    assert ('<a href="index.html#m-eco-01">ECO-01: ' in dns) and ('<a href="index.html#m-eco-02">ECO-02: ' in dns)
    police = article(page, "dataset-mpd-crime-incidents")  # not loaded; its measures are still named
    assert '<a href="index.html#m-saf-01">SAF-01: ' in police


def test_open_data_page_data_shape(export, clock):
    from aim import db
    from aim.publish.datasets import inventory
    from aim.publish.open_data_page import open_data_page_data

    everything = inventory()
    data = open_data_page_data(export["url"], everything, export["target"].read_bytes)
    assert json.loads(json.dumps(data)) == data, "JSON-like: the renderer consumes exactly this"
    assert data["catalog_href"] == "../catalog/data.json" and data["retired"] == []
    assert [e["id"] for e in data["released"]] == [d.id for d in everything if d.released]
    assert [p["id"] for p in data["planned"]] == [d.id for d in sorted(
        everything, key=lambda d: (d.release_priority, d.id))
        if d.sensitivity == "public" and d.release_status in ("inventoried", "under_review")]
    with db.transaction(export["url"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT dataset, max(released_at), count(DISTINCT archive_path) FROM ops.dataset_release "
                    "GROUP BY dataset")
        released = {d: (when, count) for d, when, count in cur.fetchall()}
    for entry in data["released"]:
        if entry["id"] in export["first"].skipped:
            assert (entry["data_as_of"], entry["rows"], entry["downloads"], entry["dictionary_href"], entry["fields"],
                    entry["archive"]) == (None, None, [], None, [], []), entry["id"]
            continue
        when, snapshots = released[entry["id"]]
        moment = dt.datetime.fromisoformat(entry["data_as_of"])
        assert moment == when.replace(microsecond=0) and moment.utcoffset() in (
            dt.timedelta(hours=-5), dt.timedelta(hours=-6)), "Milwaukee time, with its offset"
        assert [d["format"] for d in entry["downloads"]] == ["CSV", "JSON", "Parquet"]
        assert len(entry["archive"]) == snapshots and entry["fields"]
    dns = next(e for e in data["released"] if e["id"] == "dns-code-enforcement-orders")
    assert dns["measures"] == ["ECO-01", "ECO-02"] and dns["frequency"] == "Weekly"
    assert [a["date"] for a in dns["archive"]] == [(clock.date() + dt.timedelta(days=1)).isoformat(),
                                                   clock.date().isoformat()]
