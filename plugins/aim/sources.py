"""Source configuration: one YAML file per departmental source, validated into a typed model.

A file that does not validate raises `SourceConfigError` naming the file, the field and what was
expected, so the DAG factory can show one clear import error for that source alone.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# Warehouse types a source column may be cast to when it moves from staging (text) to core.
COLUMN_TYPES = {
    "text", "smallint", "integer", "bigint", "numeric", "double precision",
    "boolean", "date", "timestamp", "timestamptz",
}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


class SourceConfigError(ValueError):
    """A source configuration file that cannot be used, with the file and the reasons."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Column(_Strict):
    """One column as the warehouse keeps it, with its privacy class for exports."""

    name: str
    type: str = "text"
    privacy: Literal["public", "generalize", "drop"] = "public"
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"expected a lower-case SQL identifier ([a-z_][a-z0-9_]*), got {value!r}")
        return value

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in COLUMN_TYPES:
            raise ValueError(f"expected one of {sorted(COLUMN_TYPES)}, got {value!r}")
        return value


class SqlExtract(_Strict):
    """Where a `sql` source's rows are and how to pick up only what changed."""

    table: str = Field(description="schema.table (or table) in the source database")
    watermark_column: str

    @field_validator("table")
    @classmethod
    def _qualified_name(cls, value: str) -> str:
        parts = value.split(".")
        if len(parts) > 2 or not all(_IDENTIFIER.match(p) for p in parts):
            raise ValueError(f"expected 'schema.table' or 'table' in lower case, got {value!r}")
        return value


class Export(_Strict):
    """The public data set this source feeds, and the SQL file that selects its rows."""

    dataset: str
    query: str = Field(description="path under sql/ of the SELECT that defines the public projection")


class SourceConfig(_Strict):
    """Everything the platform needs to ingest one departmental source."""

    source: str
    department: str
    system: str
    kind: Literal["sql"]
    connection_id: str
    schedule: str | None
    owner: str
    extract: SqlExtract
    key: list[str] = Field(min_length=1)
    columns: list[Column] = Field(min_length=1)
    expectation_suite: str
    export: Export | None = None
    description: str = ""

    @field_validator("source")
    @classmethod
    def _source_is_identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"expected a lower-case identifier ([a-z_][a-z0-9_]*), got {value!r}")
        return value

    @model_validator(mode="after")
    def _columns_consistent(self) -> "SourceConfig":
        names = [c.name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"columns: duplicate names {duplicates}")
        missing = [k for k in [*self.key, self.extract.watermark_column] if k not in names]
        if missing:
            raise ValueError(f"key / extract.watermark_column name columns not listed in columns: {missing}")
        return self

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def staging_table(self) -> tuple[str, str]:
        return ("staging", self.source)

    @property
    def core_table(self) -> tuple[str, str]:
        return ("core", self.source)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def load_source_config(path: Path) -> SourceConfig:
    """Parse and validate one source file; `SourceConfigError` names the file and each bad field."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise SourceConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise SourceConfigError(f"{path}: expected a mapping of fields, got {type(raw).__name__}")
    try:
        return SourceConfig.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"field '{'.'.join(str(p) for p in e['loc']) or '(file)'}': {e['msg']}" for e in err.errors()
        )
        raise SourceConfigError(f"{path}: {problems}") from err


def source_config_paths(folder: Path) -> list[Path]:
    """The source configuration files in `folder`, in a stable order."""
    return sorted(Path(folder).glob("*.yaml"))
