"""Source configuration: one YAML file per departmental source, validated into a typed model.

A file that does not validate raises `SourceConfigError` naming the file, the field and what was
expected, so the DAG factory can show one clear import error for that source alone.

Each kind of source (`aim.source_kinds`: `sql`, `file`, `http`, ...) brings the model of its own
`extract` block; everything else here is common to all kinds.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from aim.privacy import CLASSES as PRIVACY_CLASSES, check_column, privacy_class
from aim.source_kinds import KINDS, kind_named
from aim.source_kinds.base import SourceKind, Strict, identifier
from aim.watermarks import WATERMARK_TYPES

# Warehouse types a source column may be cast to when it moves from staging (text) to core.
COLUMN_TYPES = {
    "text", "smallint", "integer", "bigint", "numeric", "double precision",
    "boolean", "date", "timestamp", "timestamptz",
}


class SourceConfigError(ValueError):
    """A source configuration file that cannot be used, with the file and the reasons."""


def column_type(value: str) -> str:
    """A warehouse column type, checked against the types the platform casts to."""
    if value not in COLUMN_TYPES:
        raise ValueError(f"expected one of {sorted(COLUMN_TYPES)}, got {value!r}")
    return value


class Column(Strict):
    """One column as the warehouse keeps it, where it comes from, and its privacy class for exports
    (required: see `aim.privacy`)."""

    name: str
    source: str | None = Field(None, description="the field's name in the source (header, JSON field); default: name")
    type: str = "text"
    privacy: str = Field(description="its privacy class: " + ", ".join(PRIVACY_CLASSES))
    generalize_to: Literal["hour", "day"] | None = Field(None, description="generalize_time: hour (default) or day")
    grid: float | None = Field(None, gt=0, description="generalize_point: the cell size, in the coordinates' unit")
    min_addresses: int | None = Field(None, ge=2, description="generalize_point: fewest distinct addresses a "
                                      "published cell holds (default 5)")
    reviewed: str | None = Field(None, min_length=10, description="a free-text column made public: who reviewed "
                                 "it, when, and why it is safe")
    description: str = ""

    _name = field_validator("name")(identifier)
    _type = field_validator("type")(column_type)
    _privacy = field_validator("privacy")(privacy_class)

    @model_validator(mode="before")
    @classmethod
    def _privacy_declared(cls, data: Any) -> Any:
        if isinstance(data, dict) and "privacy" not in data:
            raise ValueError(f"column {data.get('name', '?')} declares no privacy class; every column needs one "
                             f"(nothing is public by default): one of {', '.join(PRIVACY_CLASSES)}")
        return data

    @model_validator(mode="after")
    def _privacy_fits(self) -> "Column":
        check_column(self)
        return self

    @property
    def source_name(self) -> str:
        return self.source or self.name


Extract = Annotated[
    Union[tuple(kind.extract_model for kind in KINDS.values())],  # type: ignore[valid-type]
    Field(discriminator="kind"),
]


class DerivedKey(Strict):
    """A key made from the row's content, for sources that have no id of their own."""

    column: str
    from_columns: list[str] = Field(min_length=1)

    _column = field_validator("column")(identifier)


class VolumeCheck(Strict):
    """Daily row volume against the source's recent history, by a date column.

    A day whose rows jump past `spike_factor` times the typical day fails the batch; a day under
    `drop_share` of it is a warning (recent days may still be filling in); a whole day with no
    rows, older than `still_filling_days`, fails the batch (data lost, not late).
    """

    date_column: str
    lookback_days: int = Field(28, ge=7, le=366)
    still_filling_days: int = Field(2, ge=0, le=60)
    spike_factor: float = Field(10, gt=1)
    drop_share: float = Field(0.1, gt=0, lt=1)


class BatchSizeCheck(Strict):
    """A batch much smaller than the source's usual delivery: under `min_share` of the median
    rows of its last `lookback_batches` merged batches that had rows."""

    min_share: float = Field(0.1, gt=0, lt=1)
    lookback_batches: int = Field(14, ge=3, le=365)
    severity: Literal["warning", "critical"] = "warning"


class Quality(Strict):
    """Per-source quality gate settings beyond the expectation suite."""

    max_rejected_share: float = Field(
        0.01, ge=0, le=1, description="largest share of a batch's rows that row-level rules may set aside"
    )
    volume: VolumeCheck | None = None
    batch_size: BatchSizeCheck | None = BatchSizeCheck()


class Coverage(Strict):
    """Which days a source's data covers, and when a day's data is settled (`aim.measures.coverage`).

    A day is covered when the source delivered rows placed on it by `date_column` (its local
    date; for a `monthly` source, a month with rows covers every day of it up to today). A gap of
    at most `quiet_days` days without rows between covered days is covered too (a source that
    legitimately has no records on some days, e.g. weekends). A day is settled once the source has
    kept delivering for `lag_days` days after it without a gap: records for a day keep arriving
    and changing for that long.
    """

    date_column: str
    cadence: Literal["daily", "monthly"] = "daily"
    lag_days: int = Field(ge=0, le=366)
    quiet_days: int = Field(0, ge=0, le=31)

    @model_validator(mode="after")
    def _quiet_days_only_for_daily(self) -> "Coverage":
        if self.cadence == "monthly" and self.quiet_days:
            raise ValueError("quiet_days: only a daily source has days without records; a monthly one covers whole months")
        return self


class Freshness(Strict):
    """How fresh the source's data must be (`aim.freshness`); IT operations is alerted when it is not.

    The source's data is as of the newest day it delivered data for: by its `coverage` date column
    when it has one (a monthly source: the first day of its newest month), else the day of its
    last successful run that loaded rows. It is stale when that day is more than `max_age_days`
    days before today (Milwaukee's date).
    """

    max_age_days: int = Field(ge=0, le=366, description="the newest data is at most this many days before today")


class SourceConfig(Strict):
    """Everything the platform needs to ingest one departmental source."""

    source: str
    department: str
    system: str
    kind: str = Field(description="a registered source kind: " + ", ".join(sorted(KINDS)))
    connection_id: str | None = None
    schedule: str | None
    owner: str
    extract: Extract
    key: list[str] = Field(min_length=1)
    derived_key: DerivedKey | None = None
    columns: list[Column] = Field(min_length=1)
    expectation_suite: str
    quality: Quality = Quality()
    coverage: Coverage | None = Field(
        None, description="which days the data covers and when they are settled; required for a source a measure reads"
    )
    freshness: Freshness | None = Field(
        None, description="how fresh the data must be; none: no promise (its freshness is still recorded)"
    )
    task_timeout_minutes: int = Field(60, ge=1, le=24 * 60, description="each task of a run fails after this long")
    description: str = ""

    _source = field_validator("source")(identifier)

    @model_validator(mode="before")
    @classmethod
    def _extract_kind_from_source_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("extract"), dict) and "kind" in data:
            kind_named(str(data["kind"]))  # an unknown kind: one message listing the known ones
            data = {**data, "extract": {"kind": data["kind"], **data["extract"]}}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> "SourceConfig":
        names = [c.name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"columns: duplicate names {duplicates}")
        needed = list(self.key)
        watermark = getattr(self.extract, "watermark_column", None)
        if watermark:
            needed.append(watermark)
        if self.quality.volume:
            needed.append(self.quality.volume.date_column)
        if self.coverage:
            needed.append(self.coverage.date_column)
            if self.coverage.date_column in names and self.column(self.coverage.date_column).type not in ("date", "timestamp", "timestamptz", "text"):
                raise ValueError(f"coverage.date_column: {self.coverage.date_column} is "
                                 f"{self.column(self.coverage.date_column).type}; expected a date, a timestamp or "
                                 "YYYY-MM text")
        if self.derived_key:
            needed += [self.derived_key.column, *self.derived_key.from_columns]
            if self.key != [self.derived_key.column]:
                raise ValueError(f"key: a derived key is the key; expected [{self.derived_key.column}]")
        if self.derived_key and self.column(self.derived_key.column).privacy != "drop":
            raise ValueError(f"columns: {self.derived_key.column} is a derived key, a hash of the row's content that "
                             "hashing candidate values reverses; class it drop (its data set then publishes an opaque "
                             "record_id)")
        self._points_have_addresses()
        missing = [k for k in needed if k not in names]
        if missing:
            raise ValueError(f"key / watermark / derived key / volume / coverage date name columns not listed in columns: "
                             f"{missing}")
        if watermark and self.column(watermark).type not in WATERMARK_TYPES:
            raise ValueError(f"extract.watermark_column: {watermark} is {self.column(watermark).type}; "
                             f"a watermark is a time, one of {list(WATERMARK_TYPES)}")
        kind = kind_named(self.kind)
        if kind.needs_connection and not self.connection_id:
            raise ValueError(f"connection_id: a {self.kind} source needs an Airflow connection")
        kind.validate(self)
        return self

    def _points_have_addresses(self) -> None:
        points = [c for c in self.columns if c.privacy == "generalize_point"]
        if not points:
            return
        if len(points) != 2 or points[0].grid != points[1].grid or points[0].min_addresses != points[1].min_addresses:
            raise ValueError("columns: generalize_point classes a point's two coordinates, with the same grid and "
                             f"min_addresses; found {[c.name for c in points]}")
        if len([c for c in self.columns if c.privacy == "generalize_address"]) != 1:
            raise ValueError("columns: a generalize_point source needs its one generalize_address column (a cell is "
                             "published only when it holds min_addresses distinct addresses)")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def typed_columns(self) -> list[tuple[str, str]]:
        """(name, type) of every column that is not text: what the merge casts staged text to."""
        return [(c.name, c.type) for c in self.columns if c.type != "text"]

    @property
    def extracted_columns(self) -> list["Column"]:
        """Columns read from the source (all but a derived key, which the platform computes)."""
        derived = self.derived_key.column if self.derived_key else None
        return [c for c in self.columns if c.name != derived]

    @property
    def watermark_column(self) -> str | None:
        """The extract's watermark column, for incremental kinds (None for a file drop)."""
        return getattr(self.extract, "watermark_column", None)

    @property
    def unique_in_batch(self) -> list[str]:
        """The columns no two rows of a batch may share: the key, and for an incremental source the
        key with its watermark (a record read twice, edited in between, is two versions; the merge
        keeps its latest)."""
        return [*self.key, self.watermark_column] if self.watermark_column else list(self.key)

    @property
    def source_kind(self) -> SourceKind:
        """The registered kind that reads this source."""
        return kind_named(self.kind)

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
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise SourceConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise SourceConfigError(f"{path}: expected a mapping of fields, got {type(raw).__name__}")
    try:
        config = SourceConfig.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"field '{'.'.join(str(p) for p in e['loc']) or '(file)'}': {e['msg']}" for e in err.errors()
        )
        raise SourceConfigError(f"{path}: {problems}") from err
    if config.source != path.stem:
        raise SourceConfigError(f"{path}: field 'source' is {config.source!r}; expected the file's name, {path.stem!r}")
    return config


def load_source(source: str) -> SourceConfig:
    """The configuration of the source named `source`, from the sources folder."""
    from aim import settings

    return load_source_config(settings.sources_dir() / f"{source}.yaml")


def source_config_paths(folder: Path) -> list[Path]:
    """The source configuration files in `folder`, in a stable order."""
    return sorted(Path(folder).glob("*.yaml"))
