"""Landing streams: a 1,000,000-row source costs the landing process no more than 100 MB of peak
memory over a 10,000-row one, through the same code path (benchmarks/landing.py, in fresh
processes, against the test PostgreSQL server): a PostgreSQL source's COPY to COPY, the rows
path every other SQL source takes, and a CSV file drop read by Arrow into columns (which reads
ahead a bounded number of blocks of the file)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "landing_benchmark", Path(__file__).resolve().parents[1] / "benchmarks" / "landing.py"
)
landing_benchmark = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(landing_benchmark)

ALLOWED_GROWTH_MB = 100


@pytest.mark.parametrize("path", ["land", "land-rows", "land-file"],
                         ids=["copy-to-copy", "rows-through-python", "csv-file-through-arrow"])
def test_peak_memory_does_not_grow_with_the_source(pg_server, path):
    (small,) = landing_benchmark.benchmark(pg_server, 10_000, modes=(path,))
    (large,) = landing_benchmark.benchmark(pg_server, 1_000_000, modes=(path,))

    assert (small["rows"], large["rows"]) == (10_000, 1_000_000)
    growth = large["peak_rss_mb"] - small["peak_rss_mb"]
    assert growth <= ALLOWED_GROWTH_MB, f"peak RSS {small['peak_rss_mb']} MB -> {large['peak_rss_mb']} MB"
