"""The batch register: the one module that writes the status of `ops.batch` and `ops.source_file`.

A batch moves landed -> validated -> merged, or landed -> quarantined (a failed critical check)
-> validated (released after review) -> merged, or -> discarded; a batch whose merge failed is
`failed` and waits for review like a quarantined one. Each file version belongs to exactly one
batch and carries its own status: settling a batch (merged, quarantined, failed, discarded)
settles exactly its file versions. A version that is merged, discarded, or waiting for review in
its batch is known: it is not landed again with a later batch (a corrected file is a new version).
"""
from __future__ import annotations

from typing import Any

AWAITING_REVIEW = ("quarantined", "failed")
# File versions in these states are not landed again.
_KNOWN_FILE_STATES = ("merged", "discarded", *AWAITING_REVIEW)


def register_batch(cur, *, batch_id: str, source: str, run_id: str, rows: int, max_watermark: str | None,
                   typed_columns_cast: bool = False, keys_unique_at_source: bool = False) -> None:
    """Record a batch as landed in staging (a re-landed batch replaces its record);
    `typed_columns_cast` when landing found that every typed value of the batch casts,
    `keys_unique_at_source` when the source guaranteed each key once (`SourceKind.guarantees`)."""
    cur.execute(
        """
        INSERT INTO ops.batch (batch_id, source, run_id, status, rows_landed, max_watermark, typed_columns_cast,
                              keys_unique_at_source)
        VALUES (%s, %s, %s, 'landed', %s, %s, %s, %s)
        ON CONFLICT (batch_id) DO UPDATE
           SET status = 'landed', rows_landed = EXCLUDED.rows_landed, max_watermark = EXCLUDED.max_watermark,
               typed_columns_cast = EXCLUDED.typed_columns_cast, keys_unique_at_source = EXCLUDED.keys_unique_at_source,
               landed_at = now(), merged_at = NULL, failure = NULL,
               rows_rejected = 0, warnings = 0, data_docs = NULL,  -- no checks have run on this landing yet
               keys_proven_unique = false, each_key_once = false
        """,
        (batch_id, source, run_id, rows, max_watermark, typed_columns_cast, keys_unique_at_source),
    )


def batch_status(cur, batch_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    """A batch's record as a dict, or None when it was never landed; `lock` holds it until commit."""
    cur.execute(
        "SELECT batch_id, source, run_id, status, rows_landed, max_watermark, landed_at, failure, keys_proven_unique, "
        "each_key_once, typed_columns_cast, keys_unique_at_source "
        "FROM ops.batch WHERE batch_id = %s" + (" FOR UPDATE" if lock else ""),
        (batch_id,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip(("batch_id", "source", "run_id", "status", "rows_landed", "max_watermark", "landed_at", "failure",
                     "keys_proven_unique", "each_key_once", "typed_columns_cast", "keys_unique_at_source"), row))


def _settle(cur, batch_id: str, status: str, **fields: Any) -> None:
    """Set the batch's status (and `fields`); a settled status goes to its file versions too."""
    assignments = "".join(f", {name} = %({name})s" for name in fields)  # names from this module only
    merged_at = ", merged_at = now()" if status == "merged" else ""
    cur.execute(f"UPDATE ops.batch SET status = %(status)s{assignments}{merged_at} WHERE batch_id = %(batch_id)s",
                {**fields, "status": status, "batch_id": batch_id})
    if status in _KNOWN_FILE_STATES:
        cur.execute(f"UPDATE ops.source_file SET status = %s{merged_at} WHERE batch_id = %s", (status, batch_id))


def mark_validated(cur, batch_id: str, *, each_key_once: bool = False) -> None:
    """Mark a landed batch as having passed its critical checks (the only state merge accepts),
    the generated key check among them: its key is unique in the batch (`keys_proven_unique`);
    `each_key_once` when the gate found each key alone in one row (`aim.gate.each_key_once`)."""
    _settle(cur, batch_id, "validated", failure=None, keys_proven_unique=True, each_key_once=each_key_once)


def quarantine_batch(cur, batch_id: str, failure: str) -> None:
    """Mark a batch quarantined with the reason; its rows stay in staging for review."""
    _settle(cur, batch_id, "quarantined", failure=failure)


def mark_failed(cur, batch_id: str, failure: str) -> None:
    """Mark a batch whose merge failed: it is listed for review with the reason, its rows stay in staging."""
    _settle(cur, batch_id, "failed", failure=failure[:4000])


def mark_merged(cur, batch_id: str) -> None:
    """Mark a batch and its file versions merged (the versions are never loaded again)."""
    _settle(cur, batch_id, "merged")


def mark_reviewed(cur, batch_id: str, status: str, *, reviewer: str, note: str) -> None:
    """Record a review: `validated` (released, about to merge) or `discarded` (with its file versions)."""
    if status not in ("validated", "discarded"):
        raise ValueError(f"a review releases (validated) or discards a batch, not {status!r}")
    cur.execute("UPDATE ops.batch SET reviewed_by = %s, reviewed_at = now(), review_note = %s WHERE batch_id = %s",
                (reviewer, note, batch_id))
    _settle(cur, batch_id, status)


def awaiting_review(cur) -> list[dict[str, Any]]:
    """Every quarantined or failed batch, newest first, with its failure."""
    cur.execute(
        "SELECT batch_id, source, run_id, status, rows_landed, rows_rejected, landed_at, failure FROM ops.batch "
        "WHERE status IN %s ORDER BY landed_at DESC",
        (AWAITING_REVIEW,),
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def record_batch_checks(cur, batch_id: str, *, rows_rejected: int, warnings: int, data_docs: str | None) -> None:
    """Record on the batch how many rows row-level rules set aside, how many warnings it had, and
    where its Data Docs page was published (None: no suite ran on it)."""
    cur.execute(
        "UPDATE ops.batch SET rows_rejected = %s, warnings = %s, data_docs = %s WHERE batch_id = %s",
        (rows_rejected, warnings, data_docs, batch_id),
    )


def file_version_known(cur, source: str, file_key: str, sha256: str, *, batch_id: str | None = None) -> bool:
    """True when this exact version (key and content) of a file needs no landing: merged into
    core, discarded after review, or waiting for review in another batch than `batch_id` (a
    batch landed again, e.g. its run cleared in Airflow, lands its own versions again)."""
    cur.execute(
        "SELECT 1 FROM ops.source_file WHERE source = %s AND file_key = %s AND sha256 = %s "
        "AND (status IN ('merged', 'discarded') OR (status IN %s AND batch_id IS DISTINCT FROM %s))",
        (source, file_key, sha256, AWAITING_REVIEW, batch_id),
    )
    return cur.fetchone() is not None


def register_file(cur, *, source: str, file_key: str, sha256: str, size: int, rows: int, batch_id: str,
                  extra_columns: list[str] = ()) -> None:
    """Record a file version as landed in `batch_id` (a version landed before by a batch that never
    settled, e.g. a run that died, moves to this batch)."""
    cur.execute(
        """
        INSERT INTO ops.source_file (source, file_key, sha256, size_bytes, rows_landed, batch_id, status, extra_columns)
        VALUES (%s, %s, %s, %s, %s, %s, 'landed', %s)
        ON CONFLICT (source, file_key, sha256) DO UPDATE
           SET rows_landed = EXCLUDED.rows_landed, batch_id = EXCLUDED.batch_id, status = 'landed',
               extra_columns = EXCLUDED.extra_columns
        """,
        (source, file_key, sha256, size, rows, batch_id, list(extra_columns)),
    )
