"""`python -m aim.check [FILE ...]`: check source configurations and their suites before deploying.

With no file, checks every configuration in the sources folder. For each, prints what the
platform will do with the source, or every problem with the file and field. Exit status 1 when
any file has a problem.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from aim import settings
from aim.dag_factory import dag_id_for
from aim.sources import SourceConfig, SourceConfigError, load_source_config, source_config_paths


def describe(config: SourceConfig) -> list[str]:
    """Plain-language lines saying what the platform will do with a valid source."""
    extract = config.extract
    if config.kind == "sql":
        reads = f"reads {extract.table} changed after the highest {extract.watermark_column} merged"
    elif config.kind == "file":
        reads = f"reads {extract.location.rstrip('/')}/{extract.pattern} ({extract.format.kind})"
    else:
        reads = f"reads {extract.path} page by page ({extract.pagination})"
    key = ", ".join(config.key)
    return [
        f"DAG {dag_id_for(config)}, kind {config.kind}, schedule {config.schedule}, owner {config.owner}",
        f"{reads} through connection {config.connection_id}",
        f"lands in staging.{config.source}, merges into core.{config.source} on ({key})",
    ]


def check_suite(config: SourceConfig) -> str:
    """One line about the source's suite; raises ValueError when it cannot be used."""
    from aim.quality import load_suite  # imports great_expectations: only when checking

    path = settings.expectations_dir() / config.expectation_suite
    if not path.is_file():
        raise ValueError(f"suite {path} does not exist")
    load_suite(path)  # every expectation must be one GX can build
    raw = json.loads(path.read_text(encoding="utf-8"))["expectations"]
    severities = [e.get("severity", "critical") for e in raw]
    columns = set(config.column_names) | {"_batch_id", "_origin"}
    checked = {e["kwargs"]["column"] for e in raw if "column" in e.get("kwargs", {})}
    unknown = sorted(checked - columns)
    if unknown:
        raise ValueError(f"suite {path.name} checks columns the source does not have: {unknown}")
    return (
        f"suite expectations/{path.name}: {len(severities)} expectations "
        f"({severities.count('critical')} critical, {severities.count('warning')} warning)"
    )


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or source_config_paths(settings.sources_dir())
    problems = 0
    for path in paths:
        try:
            config = load_source_config(path)
            lines = [*describe(config), check_suite(config)]
        except (SourceConfigError, ValueError) as err:
            problems += 1
            print(f"{path}: PROBLEM\n  {err}")
            continue
        print(f"{path}: ok")
        for line in lines:
            print(f"  {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
