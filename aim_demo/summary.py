"""The summary `make demo` ends with: per source, what the run did, and where to look next."""
from __future__ import annotations

import datetime as dt

import psycopg2

from aim import settings
from aim_demo import local
from aim_demo.databases import libpq_dsn

_HEADER = ("source", "status", "quality", "extracted", "rejected", "loaded", "exported")


def latest_runs(warehouse: str, sources: list[str], since: dt.datetime) -> list[dict]:
    """Each source's latest run started at or after `since`, from ops.run_log."""
    conn = psycopg2.connect(libpq_dsn(warehouse))
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                """
                SELECT DISTINCT ON (source) source, status, quality_outcome, rows_extracted, rows_rejected,
                       rows_loaded, rows_exported, message, run_id
                FROM ops.run_log WHERE source = ANY(%s) AND started_at >= %s
                ORDER BY source, started_at DESC
                """,
                (sources, since),
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        conn.close()


def print_summary(warehouse: str, sources: list[str], since_epoch: float) -> list[dict]:
    """Print the runs table, the export location and how to reach the warehouse; returns the runs."""
    runs = latest_runs(warehouse, sources, dt.datetime.fromtimestamp(since_epoch, dt.timezone.utc))
    seen = {r["source"] for r in runs}
    rows = [
        [r["source"], r["status"], r["quality_outcome"] or "-",
         *(str(r[k]) if r[k] is not None else "-" for k in ("rows_extracted", "rows_rejected", "rows_loaded",
                                                          "rows_exported"))]
        for r in runs
    ] + [[s, "not run", "-", "-", "-", "-", "-"] for s in sources if s not in seen]
    widths = [max(len(str(x)) for x in col) for col in zip(_HEADER, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    print("\nAIM pipeline run summary")
    print(line(_HEADER))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))
    for r in runs:
        if r["status"] == "failed":
            print(f"\n{r['source']} failed: {r['message']}")
    print(f"\nexports:   {settings.export_url()}/latest/")
    print(f"warehouse: {local.display_url(warehouse)}   (make psql opens it; make warehouse-url prints it)")
    print("run log:   SELECT * FROM ops.run_log ORDER BY started_at DESC;")
    return runs
