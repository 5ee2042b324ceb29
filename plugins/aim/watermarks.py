"""Watermarks that only move safely.

A watermark is the highest value of a source's watermark column (`updated_at`) merged into core.
Each run reads the rows changed at or after the watermark less `overlap_seconds` (late commits
and same-second updates are read again; the merge is an upsert, so nothing doubles). A batch's
candidate watermark is the highest value it read, but never later than the time the extraction
started less `clock_skew_seconds`: a row stamped in the future (clock skew, a bad manual edit)
can never carry the watermark past rows that are yet to change. Storing a watermark never moves
it backwards, whichever batch merges last (a release of an older quarantined batch included).

Watermark columns are `timestamp` (naive: Milwaukee wall time, as the city's systems record it)
or `timestamptz`. Wall time goes back an hour when daylight saving time ends, so a `timestamp`
watermark's window reaches one hour further back (rows re-read unchanged are dropped at landing). Values are stored in `ops.watermark` as ISO 8601 text.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from aim import clock
from aim.source_kinds.base import Watermarked

WATERMARK_TYPES = ("timestamp", "timestamptz")


class WatermarkError(ValueError):
    """A watermark value that is not a timestamp of the column's kind."""


def parse(value: Any, column_type: str) -> dt.datetime | None:
    """A watermark value (ISO text, or a datetime from a database driver) as a datetime of the
    column's kind: naive for `timestamp`, aware for `timestamptz`; None for None or ''."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise WatermarkError(f"{value[:40]!r} is not an ISO 8601 timestamp") from None
    else:
        raise WatermarkError(f"{value!r} is a {type(value).__name__}, not a timestamp")
    if column_type == "timestamp":
        return moment.astimezone(clock.LOCAL_ZONE).replace(tzinfo=None) if moment.tzinfo else moment
    if column_type == "timestamptz":
        return moment if moment.tzinfo else moment.replace(tzinfo=clock.LOCAL_ZONE)
    raise WatermarkError(f"a watermark column is timestamp or timestamptz, not {column_type}")


def to_text(value: dt.datetime) -> str:
    """A watermark as stored: ISO 8601."""
    return value.isoformat()


@dataclass(frozen=True)
class Window:
    """What one run reads and how far its batch may move the watermark."""

    stored: dt.datetime | None     # the watermark before the run
    since: dt.datetime | None      # inclusive lower bound: stored - overlap (None: read everything)
    ceiling: dt.datetime           # extraction start - clock skew: the highest watermark this run may set

    def candidate(self, newest: dt.datetime | None) -> dt.datetime | None:
        """The batch's watermark from the newest value it read: capped at the ceiling, and None
        when it would not move the stored watermark forward."""
        if newest is None:
            return None
        capped = min(newest, self.ceiling)
        if self.stored is not None and capped <= self.stored:
            return None
        return capped


def window(extract: Watermarked, column_type: str, stored: str | None, started: dt.datetime) -> Window:
    """The window of a run that started at `started` (aware) over a source whose watermark is `stored`."""
    ceiling = parse(started, column_type) - dt.timedelta(seconds=extract.clock_skew_seconds)
    last = parse(stored, column_type)
    overlap = dt.timedelta(seconds=extract.overlap_seconds)
    if column_type == "timestamp":  # wall time repeats an hour when daylight saving time ends
        overlap += dt.timedelta(hours=1)
    since = last - overlap if last is not None else None
    return Window(stored=last, since=since, ceiling=ceiling)


def read(cur, source: str) -> str | None:
    """The source's stored watermark (ISO text), or None before its first merge."""
    cur.execute("SELECT value FROM ops.watermark WHERE source = %s", (source,))
    row = cur.fetchone()
    return row[0] if row else None


def advance(cur, source: str, column_type: str, candidate: str, batch_id: str) -> bool:
    """Store `candidate` as the source's watermark if it is later than the stored one; True if it moved.

    Never moves a watermark backwards (a release of an older batch leaves it where it is)."""
    cur.execute("SELECT value FROM ops.watermark WHERE source = %s FOR UPDATE", (source,))
    row = cur.fetchone()
    if row is not None and parse(row[0], column_type) >= parse(candidate, column_type):
        return False
    cur.execute(
        """
        INSERT INTO ops.watermark (source, value, batch_id) VALUES (%s, %s, %s)
        ON CONFLICT (source) DO UPDATE SET value = EXCLUDED.value, batch_id = EXCLUDED.batch_id, updated_at = now()
        """,
        (source, candidate, batch_id),
    )
    return True
