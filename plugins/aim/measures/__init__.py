"""AIM measures: the registry, the calendar, source coverage and measure values, one job per module.

- `files`: the measure files (`sql/measures/<code>.sql`) and what their headers declare;
- `calendar`: months, fiscal quarters and fiscal years (`core.aim_period`);
- `registry`: the budget office's registry into measures and targets (steps in `sql/registry/`);
- `coverage`: which days each source covers and which are settled (`core.source_coverage`);
- `compute`: measure values per period with completeness and provenance;
- `plan`: what an incremental run recomputes;
- `runs`: the DAG's task bodies; `dag`: the DAG wiring.

The names below are the package's public interface.
"""
from aim.measures.calendar import add_months, ensure_periods, fiscal_year_of, month_start, months_in, parse_month
from aim.measures.compute import missing_sources, recompute, recompute_months
from aim.measures.coverage import refresh_coverage
from aim.measures.files import (
    AGGREGATIONS, GEOGRAPHY_TYPES, OUTPUT_COLUMNS, MeasureError, MeasureFile, SourceRead, measure_files,
    parse_measure_file, source_tables,
)
from aim.measures.plan import touched_months
from aim.measures.registry import RegistryError, sync_registry

__all__ = [
    "AGGREGATIONS", "GEOGRAPHY_TYPES", "OUTPUT_COLUMNS", "MeasureError", "MeasureFile", "RegistryError",
    "SourceRead", "add_months", "ensure_periods", "fiscal_year_of", "measure_files", "missing_sources",
    "month_start", "months_in", "parse_measure_file", "parse_month", "recompute", "recompute_months",
    "refresh_coverage", "source_tables", "sync_registry", "touched_months",
]
