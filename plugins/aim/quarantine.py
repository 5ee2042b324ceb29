"""Reviewing quarantined batches: list them, look at one, release it or discard it.

    python -m aim.quarantine list
    python -m aim.quarantine show BATCH
    python -m aim.quarantine release BATCH --note "district 9 is the new district, confirmed by MPD"
    python -m aim.quarantine discard BATCH --note "duplicate drop; the department re-sent a fixed file"

(`make quarantine`, `make release BATCH=... NOTE=...`, `make discard BATCH=... NOTE=...` run these
on the demo warehouse; the `quarantine_review` DAG runs them from Airflow.)

Batches waiting for review are the quarantined ones (a failed critical check) and the failed
ones (their merge failed: a value that does not cast, named with its column).

A release goes through the same merge as any validated batch: the upsert, the watermark and the
batch's file versions move together. Publication stays `publish_open_data`'s: from Airflow, the
`quarantine_review` DAG announces the source's change and publication follows; from the command
line, the next publication (daily, or `airflow dags trigger publish_open_data`) carries it. The rule for time:
a release merges only the keys that no later-landed batch has merged since; keys changed since
are left out (the newer data stays) and the result names how many, with a sample. A release
never moves a watermark backwards, and a batch holding a key twice (for a database or API
source: a key twice at one watermark value) cannot be released (discard it and ask for a
corrected delivery). A discard deletes the batch's staged rows and marks its
file versions discarded (never loaded again; a corrected file is a new version). A discard does
not move a watermark: the source still holds those rows, and the next run extracts them again,
as the source has them then.
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

from aim import batches, db, pipeline, runlog, settings
from aim.merge import MergeError, lock_core, merge_batch, superseded
from aim.sources import load_source
from aim.staging import discard_batch


class ReviewError(RuntimeError):
    """The batch cannot be reviewed as asked (unknown, or not quarantined)."""


def reviewer() -> str:
    """Who is reviewing: AIM_REVIEWER, else the login name."""
    return os.environ.get("AIM_REVIEWER") or getpass.getuser()


def quarantined(cur) -> list[dict[str, Any]]:
    """Every batch waiting for review (quarantined, or its merge failed), newest first, with its failure."""
    return batches.awaiting_review(cur)


def details(cur, batch_id: str) -> dict[str, Any]:
    """A batch's record, its failed checks (with samples) and how many rows it holds in staging."""
    cur.execute("SELECT * FROM ops.batch WHERE batch_id = %s", (batch_id,))
    row = cur.fetchone()
    if row is None:
        raise ReviewError(f"no batch {batch_id} in ops.batch")
    batch = dict(zip([d[0] for d in cur.description], row))
    cur.execute(
        "SELECT expectation, description, column_name, severity, unexpected_count, unexpected_sample, error "
        "FROM ops.quality_result WHERE batch_id = %s AND NOT success ORDER BY severity, result_id", (batch_id,)
    )
    names = [d[0] for d in cur.description]
    batch["failed_checks"] = [dict(zip(names, r)) for r in cur.fetchall()]
    cur.execute("SELECT count(*) FROM ops.rejected_row WHERE batch_id = %s", (batch_id,))
    batch["rejected_rows"] = cur.fetchone()[0]
    return batch


def _batch_for_review(cur, batch_id: str) -> dict[str, Any]:
    batch = batches.batch_status(cur, batch_id, lock=True)
    if batch is None:
        raise ReviewError(f"no batch {batch_id} in ops.batch")
    if batch["status"] not in batches.AWAITING_REVIEW:
        raise ReviewError(f"batch {batch_id} is {batch['status']}, not quarantined or failed: "
                          "only a batch waiting for review is released or discarded")
    return batch


def release(batch_id: str, note: str) -> dict[str, Any]:
    """Merge a quarantined batch after review, as a validated batch would be; publishing it is
    `publish_open_data`'s (the review DAG announces the change)."""
    if not note.strip():
        raise ReviewError("a release needs a note saying why the batch is fit to publish")
    url = settings.warehouse_url()
    run_id = f"release__{batch_id}"
    with db.transaction(url) as conn, conn.cursor() as cur:
        source = _batch_for_review(cur, batch_id)["source"]
        config = load_source(source)
        lock_core(cur, config)  # as the merge does, before staging is read: what it leaves out stays so
        left_out = superseded(cur, config, batch_id)
        if left_out.keys:
            note = (f"{note} [{left_out.keys} key(s) changed since by later batches were left out, "
                    f"e.g. {left_out.sample}]")
        batches.mark_reviewed(cur, batch_id, "validated", reviewer=reviewer(), note=note)
        runlog.start_run(cur, source=source, run_id=run_id, dag_id="aim.quarantine", batch_id=batch_id,
                         logical_date=None)
        try:
            loaded = merge_batch(cur, config, batch_id, run_id)
        except MergeError as err:
            raise ReviewError(f"batch {batch_id} cannot be released: {err}") from err
        runlog.update_run(cur, source=source, run_id=run_id, rows_loaded=loaded, quality_outcome="passed",
                          message=f"released by {reviewer()}: {note}")
    pipeline.finish_run(config, run_id=run_id)
    return {"batch_id": batch_id, "source": source, "rows_loaded": loaded, "keys_left_out": left_out.keys,
            "keys_left_out_sample": left_out.sample}


def discard(batch_id: str, note: str) -> dict[str, Any]:
    """Throw away a quarantined batch's staged rows after review; its file versions are never reloaded."""
    if not note.strip():
        raise ReviewError("a discard needs a note saying why")
    with db.transaction(settings.warehouse_url()) as conn, conn.cursor() as cur:
        source = _batch_for_review(cur, batch_id)["source"]
        deleted = discard_batch(cur, load_source(source).staging_table, batch_id)
        batches.mark_reviewed(cur, batch_id, "discarded", reviewer=reviewer(), note=note)
    return {"batch_id": batch_id, "source": source, "rows_deleted": deleted}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m aim.quarantine", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="batches waiting for review (quarantined or failed), newest first")
    show = commands.add_parser("show", help="one batch: its failure, failed checks and samples")
    show.add_argument("batch")
    for name in ("release", "discard"):
        sub = commands.add_parser(name, help=f"{name} a quarantined or failed batch after review")
        sub.add_argument("batch")
        sub.add_argument("--note", required=True, help="why (kept in ops.batch.review_note)")
    args = parser.parse_args(argv)
    try:
        if args.command in ("list", "show"):
            with db.transaction(settings.warehouse_url()) as conn, conn.cursor() as cur:
                found = quarantined(cur) if args.command == "list" else details(cur, args.batch)
            print(json.dumps(found, indent=2, default=str))
            return 0
        result = (release if args.command == "release" else discard)(args.batch, args.note)
    except ReviewError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, default=str))
    if result.get("rows_loaded"):
        print(f"{result['source']}: publish_open_data publishes the release at its next run "
              "(daily, or now with `airflow dags trigger publish_open_data`)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
