"""The commentary sync: the departments' notes on their measures (`core.bmo_measure_commentary`,
the workbook as it stands) become versioned notes (`core.aim_commentary`, SCD type 2), so an
edited note keeps its history. The step is `sql/commentary/versions.sql`.
"""
from __future__ import annotations

import logging

from aim import settings

log = logging.getLogger(__name__)

COMMENTARY_SOURCE = "bmo_measure_commentary"
COMMENTARY_TABLE = f"core.{COMMENTARY_SOURCE}"


def sync_commentary(cur, run_id: str) -> dict[str, int]:
    """Bring `core.aim_commentary` in line with the commentary workbook's notes, in the caller's
    transaction: a new or edited note gets a new version (the previous one is closed, not
    deleted); a note whose text was cleared is withdrawn (closed with no successor). Idempotent:
    the same notes again change nothing. Returns how many versions were written and withdrawn."""
    counts = {"notes_written": 0, "notes_withdrawn": 0}
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (COMMENTARY_TABLE,))
    if not cur.fetchone()[0]:
        log.info("%s does not exist yet: no commentary to sync", COMMENTARY_TABLE)
        return counts
    cur.execute((settings.sql_dir() / "commentary" / "versions.sql").read_text(encoding="utf-8"), {"run_id": run_id})
    for *_, withdrawn in cur.fetchall():
        counts["notes_withdrawn" if withdrawn else "notes_written"] += 1
    cur.execute("DROP TABLE aim_commentary_latest, aim_commentary_changed")
    log.info("commentary synced: %s", counts)
    return counts
