"""The AIM registry sync: the budget office's workbook (`core.bmo_aim_registry`) becomes
priorities, departments, activities, versioned measures (`core.aim_measure`, SCD type 2) and
annual targets (`core.aim_target`).

Each step is a readable SQL file in `sql/registry/` (clean, problems, dimensions, versions,
targets, targets_removed), run in that order in the caller's transaction.
"""
from __future__ import annotations

import logging

from aim import settings

log = logging.getLogger(__name__)

REGISTRY_TABLE = "core.bmo_aim_registry"


class RegistryError(ValueError):
    """Registry rows that cannot become measures; the message names the measure codes and fields."""


def _step(cur, name: str, params: dict | None = None) -> None:
    """Run the registry step `sql/registry/<name>.sql`."""
    cur.execute((settings.sql_dir() / "registry" / f"{name}.sql").read_text(encoding="utf-8"), params)


def sync_registry(cur, run_id: str) -> dict[str, int]:
    """Bring priorities, departments, activities, measures and targets in line with `core.bmo_aim_registry`.

    Values are trimmed ('Higher is better' becomes 'higher'). A measure's attributes come from its
    row for the latest fiscal year. A measure seen for the first time gets version 1 (valid from
    -infinity); a measure whose name, definition, unit, direction, frequency, priority,
    department or activity changed gets a new version valid from the load time of the changed
    row, and its previous version is closed (valid_to) but kept. Annual targets are upserted from
    every row with a value and removed where the registry no longer has one. Idempotent: a second
    run with the same registry changes nothing. Returns counts of what changed; RegistryError
    (nothing written) when a row cannot become a measure.
    """
    counts = {"measures": 0, "new_measures": 0, "new_versions": 0, "targets_written": 0, "targets_removed": 0}
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (REGISTRY_TABLE,))
    if not cur.fetchone()[0]:
        log.warning("%s does not exist yet: no registry to sync", REGISTRY_TABLE)
        return counts

    _step(cur, "clean")
    _step(cur, "problems")
    problems = [f"{code}: {problem}" for code, problem in cur.fetchall() if problem]
    if problems:
        raise RegistryError(f"{REGISTRY_TABLE} has rows that cannot become measures: " + "; ".join(problems))
    _step(cur, "dimensions")
    _step(cur, "versions", {"run_id": run_id})
    versions = [row[0] for row in cur.fetchall()]
    counts["new_measures"] = versions.count(1)
    counts["new_versions"] = len(versions) - counts["new_measures"]
    _step(cur, "targets", {"run_id": run_id})
    counts["targets_written"] = cur.rowcount
    _step(cur, "targets_removed")
    counts["targets_removed"] = cur.rowcount
    cur.execute("DROP TABLE aim_registry_clean, aim_registry_latest, aim_registry_changed, aim_registry_target")
    cur.execute("SELECT count(*) FROM core.aim_measure WHERE valid_to IS NULL")
    counts["measures"] = cur.fetchone()[0]
    log.info("registry synced: %s", counts)
    return counts
