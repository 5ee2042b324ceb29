"""The summary `make demo` ends with: per source, what the run did, and where to look next."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from aim import settings
from aim_demo import local
from aim_demo.databases import query

_HEADER = ("source", "status", "quality", "warnings", "extracted", "rejected", "loaded")


_RUN_COLUMNS = ("source", "status", "quality_outcome", "warnings", "rows_extracted", "rows_rejected",
                "rows_loaded", "message", "run_id")


def latest_runs(warehouse: str, sources: list[str], since: dt.datetime) -> list[dict]:
    """Each source's latest run started at or after `since`, from ops.run_log."""
    rows = query(
        warehouse,
        f"SELECT DISTINCT ON (source) {', '.join(_RUN_COLUMNS)} FROM ops.run_log "  # names from the tuple above
        "WHERE source = ANY(%s) AND started_at >= %s ORDER BY source, started_at DESC",
        (sources, since),
    )
    return [dict(zip(_RUN_COLUMNS, row)) for row in rows]


def print_publication(warehouse: str, since: dt.datetime) -> None:
    """What publish_open_data released since `since`: each data set whose content changed, with its rows."""
    released = query(warehouse, "SELECT dataset, rows FROM ops.dataset_release WHERE released_at >= %s ORDER BY dataset",
                     (since,))
    print(f"\npublished: {len(released)} data set(s) changed" + (":" if released else " (every export was up to date)"))
    for dataset, rows in released:
        print(f"  {dataset}  {rows} rows")


def print_freshness(warehouse: str) -> None:
    """Each source's freshness at the latest watch_freshness check, and the stale ones with why."""
    checks = query(warehouse, "SELECT source, status, message FROM ops.source_freshness ORDER BY source")
    if not checks:
        return
    counts: dict[str, int] = {}
    for _, status, _ in checks:
        counts[status] = counts.get(status, 0) + 1
    print("\nfreshness: " + ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
          + "  (SELECT * FROM ops.source_freshness;)")
    for source, status, message in checks:
        if status == "stale":
            print(f"  {source} is stale: {message}")


def print_summary(warehouse: str, sources: list[str], since_epoch: float,
                  analyst_passfile: Path | None = None) -> list[dict]:
    """Print the runs table, the export location and how to reach the warehouse; returns the runs.

    `analyst_passfile`, the embedded warehouse's pgpass file for aim_analyst, is named (never read).
    """
    runs = latest_runs(warehouse, sources, dt.datetime.fromtimestamp(since_epoch, dt.timezone.utc))
    seen = {r["source"] for r in runs}
    rows = [
        [r["source"], r["status"], r["quality_outcome"] or "-",
         *(str(r[k]) if r[k] is not None else "-" for k in ("warnings", "rows_extracted", "rows_rejected",
                                                          "rows_loaded"))]
        for r in runs
    ] + [[s, "not run", *["-"] * (len(_HEADER) - 2)] for s in sources if s not in seen]
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
    print_publication(warehouse, dt.datetime.fromtimestamp(since_epoch, dt.timezone.utc))
    print_quality(warehouse)
    print_freshness(warehouse)
    print_scorecard(warehouse)
    print(f"\nexports:   {settings.export_url()}/latest/ (CSV, JSON, Parquet, Table Schema per data set), "
          f"archive/, manifest.json, catalog/data.json")
    print(f"scorecard: {settings.export_url()}/site/index.html (open it in a browser; the open data page: site/data.html)")
    print(f"quality:   {settings.quality_url()}/index.html (Data Docs per batch, for IT operations: not published; "
          f"make quarantine lists held batches)")
    print(f"warehouse: {local.display_url(warehouse)}   (make psql opens it; make warehouse-url prints it)")
    if analyst_passfile is not None:
        print(f"analyst:   make psql-analyst opens it as aim_analyst (marts only); other clients: user aim_analyst, "
              f"password in {analyst_passfile} (PGPASSFILE={analyst_passfile})")
    print("run log:   SELECT * FROM ops.run_log ORDER BY started_at DESC;")
    return runs


def print_quality(warehouse: str) -> None:
    """The quality gate's findings of the latest batch of each source: warnings, rows set aside, held batches."""
    warnings = query(warehouse, """
        SELECT DISTINCT ON (b.source, q.expectation, q.description) b.source,
               coalesce(q.description, q.expectation || coalesce(' on ' || q.column_name, '')), q.unexpected_count
        FROM ops.batch b JOIN ops.quality_result q USING (batch_id)
        WHERE NOT q.success AND q.severity = 'warning'
          AND b.landed_at = (SELECT max(landed_at) FROM ops.batch x WHERE x.source = b.source)
        ORDER BY b.source, q.expectation, q.description""")
    rejected = query(warehouse, """
        SELECT source, rule, count(*) FROM ops.rejected_row
        WHERE rejected_at > now() - interval '1 day' GROUP BY 1, 2 ORDER BY 1, 2""")
    held = query(warehouse, "SELECT source, batch_id, status FROM ops.batch WHERE status IN ('quarantined', 'failed') "
                            "ORDER BY landed_at")
    if warnings:
        print("\nwarnings (the batch went on):")
        for source, description, count in warnings:
            print(f"  {source}: {description}" + (f" ({count})" if count else ""))
    if rejected:
        print("\nrows set aside in the last day (ops.rejected_row):")
        for source, rule, count in rejected:
            print(f"  {source}: {count} x {rule}")
    if held:
        print("\nbatches waiting for review, quarantined or failed (make quarantine BATCH=... to review):")
        for source, batch_id, status in held:
            print(f"  {source}: {batch_id} ({status})")


def print_scorecard(warehouse: str) -> None:
    """How full the AIM scorecard is: measures with a value, months of history, statuses."""
    rows = query(warehouse, """
        SELECT (SELECT count(DISTINCT measure_code) FROM marts.scorecard WHERE value IS NOT NULL),
               (SELECT count(DISTINCT measure_code) FROM marts.scorecard),
               (SELECT count(DISTINCT period_start) FROM marts.measure_history WHERE period_type = 'month'),
               (SELECT string_agg(status || ' ' || n, ', ' ORDER BY status) FROM
                  (SELECT status, count(*) AS n FROM marts.scorecard WHERE geography_type = 'citywide'
                   GROUP BY status) s)""")
    with_value, measures, months, statuses = rows[0]
    print(f"\nAIM scorecard: {with_value} of {measures} measures have values, {months} months of history; "
          f"citywide status: {statuses or '-'}  (SELECT * FROM marts.scorecard;)")
    completeness = query(warehouse, """
        SELECT string_agg(completeness || ' ' || n, ', ' ORDER BY completeness) FROM
          (SELECT completeness, count(*) AS n FROM marts.measure_history
           WHERE geography_type = 'citywide' AND period_type = 'month' GROUP BY completeness) c""")[0][0]
    print(f"measure-months, citywide: {completeness or '-'}  (which and why: SELECT * FROM marts.source_coverage;)")
    notes, commented = query(warehouse, "SELECT count(*), count(DISTINCT measure_code) FROM marts.measure_commentary")[0]
    print(f"department commentary: {notes} notes on {commented} measures  (SELECT * FROM marts.measure_commentary;)")
