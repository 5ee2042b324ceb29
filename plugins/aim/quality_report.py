"""Publishing quality results for IT operations, to the private quality target (AIM_QUALITY_URL,
`aim.settings.quality_url`), never to the public export root: GX Data Docs show the sample values
of failed checks as received, unescaped (`<script>` in a source value would run in the portal's
origin), and a sample may hold values that the exports drop or generalize.

- `<source>/`: the Great Expectations Data Docs site of the source; each validation adds its own
  page under `validations/` (the site's own index shows the latest one).
- `index.html`: every recent batch of every source, newest first: its status, failed critical
  checks, warnings, rows set aside, and a link to its Data Docs page. Plain HTML, every value
  escaped, with links relative to the target's root (where `ops.batch.data_docs` paths start), so
  it works opened from S3 or from a local folder.
"""
from __future__ import annotations

import datetime as dt
import html
import mimetypes
import tempfile
from pathlib import Path

from aim.storage import ExportTarget

INDEX = "index.html"
RECENT_BATCHES = 200


def publish_data_docs(target: ExportTarget, source: str, site: Path) -> str | None:
    """Publish a built Data Docs site under `<source>/` of the quality target; returns the validation
    page's path there (relative to the target's root), or None when the site has none."""
    page = None
    for path in sorted(p for p in Path(site).rglob("*") if p.is_file()):
        relative = path.relative_to(site).as_posix()
        relpath = f"{source}/{relative}"
        target.publish_if_changed(path, relpath, mimetypes.guess_type(path.name)[0] or "application/octet-stream")
        if relative.startswith("validations/") and relative.endswith(".html"):
            page = relpath
    return page


def _rows(cur) -> list[tuple]:
    cur.execute(
        """
        SELECT b.source, b.batch_id, b.status, b.landed_at, b.rows_landed, b.rows_rejected, b.warnings, b.data_docs,
               (SELECT count(*) FROM ops.quality_result q
                 WHERE q.batch_id = b.batch_id AND NOT q.success AND q.severity = 'critical') AS failed
        FROM ops.batch b ORDER BY b.landed_at DESC LIMIT %s
        """,
        (RECENT_BATCHES,),
    )
    return cur.fetchall()


def index_html(rows: list[tuple]) -> str:
    """The quality index page for these batches (source, batch, status, landed, rows, rejected, warnings,
    Data Docs path, failed critical checks)."""
    body = []
    for source, batch_id, status, landed_at, rows_landed, rejected, warnings, docs, failed in rows:
        link = f'<a href="{html.escape(docs)}">checks</a>' if docs else ""
        body.append(
            f'<tr class="{html.escape(status)}"><td>{html.escape(source)}</td><td>{html.escape(batch_id)}</td>'
            f"<td>{html.escape(status)}</td><td>{landed_at.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M}</td><td>{rows_landed}</td>"
            f"<td>{failed}</td><td>{warnings}</td><td>{rejected}</td><td>{link}</td></tr>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AIM data quality</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; }}
tr.quarantined, tr.failed {{ background: #fde2e1; }} tr.discarded {{ background: #eee; color: #666; }}
</style></head><body>
<h1>AIM data quality: recent batches</h1>
<p>Every batch landed from a departmental source and the outcome of its quality gate. A
<b>quarantined</b> batch failed a critical check: nothing of it reached the warehouse or the
exports; a <b>failed</b> batch passed its checks but its merge failed (the reason is in
<code>ops.batch.failure</code>); see <code>make quarantine</code> to review either. Rows set aside by row-level rules are in
<code>ops.rejected_row</code>.</p>
<table><thead><tr><th>source</th><th>batch</th><th>status</th><th>landed (UTC)</th><th>rows</th>
<th>critical checks failed</th><th>warnings</th><th>rows set aside</th><th>Data Docs</th></tr></thead>
<tbody>
{chr(10).join(body)}
</tbody></table></body></html>
"""


def publish_index(cur, target: ExportTarget) -> None:
    """Rewrite `index.html` at the quality target's root from `ops.batch` (only when its content changed)."""
    with tempfile.TemporaryDirectory(prefix="aim-quality-") as tmp:
        page = Path(tmp) / "index.html"
        page.write_text(index_html(_rows(cur)), encoding="utf-8")
        target.publish_if_changed(page, INDEX, "text/html; charset=utf-8")
