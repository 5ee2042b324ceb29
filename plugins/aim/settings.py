"""Runtime settings, read from the environment at call time (never at DAG parse time).

| variable            | meaning                                                         |
| ------------------- | --------------------------------------------------------------- |
| AIM_WAREHOUSE_URL   | SQLAlchemy URL of the warehouse (required inside tasks)          |
| AIM_EXPORT_URL      | export target: a folder path or `s3://bucket/prefix`            |
| AIM_QUALITY_URL     | quality reports (Data Docs, quality index) for IT operations: a  |
|                     | private folder or `s3://bucket/prefix`, never in the export root |
| AIM_PROJECT_ROOT    | folder holding `sql/`, `expectations/` (default: this checkout)  |
| AIM_SOURCES_DIR     | source configuration files (default: `<root>/dags/sources`)     |
| AIM_EXPECTATIONS_DIR| expectation suites (default: `<root>/expectations`)             |
| AIM_NOW             | the platform's clock, an ISO timestamp with offset (`aim.clock`) |
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

PROJECT_ROOT_DEFAULT = Path(__file__).resolve().parents[2]


def project_root() -> Path:
    """Folder that holds `sql/`, `expectations/` and `dags/`."""
    return Path(os.environ.get("AIM_PROJECT_ROOT") or PROJECT_ROOT_DEFAULT)


def sql_dir() -> Path:
    """Folder of the project's SQL files."""
    return project_root() / "sql"


def expectations_dir() -> Path:
    """Folder of the Great Expectations suites, one JSON file per source."""
    return Path(os.environ.get("AIM_EXPECTATIONS_DIR") or project_root() / "expectations")


def sources_dir() -> Path:
    """Folder of the source configuration files, one YAML file per source."""
    return Path(os.environ.get("AIM_SOURCES_DIR") or project_root() / "dags" / "sources")


def datasets_dir() -> Path:
    """Folder of the open data inventory, one YAML file per data set."""
    return Path(os.environ.get("AIM_DATASETS_DIR") or project_root() / "dags" / "datasets")


def warehouse_url() -> str:
    """The warehouse's SQLAlchemy URL; a clear error when it is not configured."""
    url = os.environ.get("AIM_WAREHOUSE_URL")
    if not url:
        raise RuntimeError(
            "AIM_WAREHOUSE_URL is not set: point it at the warehouse "
            "(e.g. postgresql+psycopg2://user@host:5432/aim); `make demo` sets it for the embedded one"
        )
    return url


def export_url() -> str:
    """Where exports go: a local folder or `s3://bucket/prefix` (default: `<project>/.aim/exports`)."""
    return os.environ.get("AIM_EXPORT_URL") or str(project_root() / ".aim" / "exports")


def quality_url() -> str:
    """Where quality reports go, private to IT operations: AIM_QUALITY_URL, a folder or
    `s3://bucket/prefix` (default: `<project>/.aim/quality`); RuntimeError when it overlaps the
    public export root (Data Docs show sample values as received, unescaped)."""
    given = os.environ.get("AIM_QUALITY_URL")
    url = given or str(project_root() / ".aim" / "quality")
    exports = export_url()
    if _overlap(url, exports):
        raise RuntimeError(
            f"AIM_QUALITY_URL {url!r}{'' if given else ' (its default)'} overlaps the public export root "
            f"AIM_EXPORT_URL {exports!r}: quality reports and Data Docs must never be published to the open "
            "data portal; point AIM_QUALITY_URL at a private folder or s3://bucket/prefix outside the export root"
        )
    return url


def _location(url: str) -> tuple[str, ...]:
    """A folder path or URL as comparable parts: ("s3", bucket, *prefix) or ("file", *absolute path)."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        return ("s3", parsed.netloc, *(part for part in parsed.path.split("/") if part))
    if parsed.scheme not in ("", "file"):
        return (parsed.scheme, url)
    return ("file", *Path(parsed.path if parsed.scheme == "file" else url).resolve().parts)


def _overlap(one: str, other: str) -> bool:
    """True when one location is the other or lies inside it (either way round)."""
    a, b = _location(one), _location(other)
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def measures_dir() -> Path:
    """Folder of the AIM measure SQL files, one per measure: AIM_MEASURES_DIR, default `<root>/sql/measures`."""
    return Path(os.environ.get("AIM_MEASURES_DIR") or sql_dir() / "measures")


def fiscal_year_start_month() -> int:
    """First month (1-12) of the fiscal year: AIM_FISCAL_YEAR_START_MONTH, default 1 (the calendar year)."""
    month = int(os.environ.get("AIM_FISCAL_YEAR_START_MONTH") or 1)
    if not 1 <= month <= 12:
        raise ValueError(f"AIM_FISCAL_YEAR_START_MONTH must be a month number 1-12, got {month}")
    return month
