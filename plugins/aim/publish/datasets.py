"""The open data inventory: one YAML file per data set the city holds, released or not.

The inventory is the governance record the open data policy asks for: every data set has an
owning department, a steward, a sensitivity class, a release status (inventoried, under review,
approved, published, retired) and a release priority. Only approved and published data sets
are exported and catalogued; a retired one keeps its archive and is marked in the catalog.

A data set's rows are either the public projection of a source (`source:`, with each column's
privacy class applied) or a SELECT in a SQL file (`query:`, with its columns listed).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aim import settings
from aim.sources import column_type

RELEASED = ("approved", "published")
_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_PERIODICITY = re.compile(r"^(R/P(\d+[YMWD])+(T(\d+[HMS])+)?|R/PT(\d+[HMS])+|irregular)$")


class DatasetConfigError(ValueError):
    """An inventory file that cannot be used; the message names the file and the fields."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Contact(_Strict):
    name: str
    email: str

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ValueError(f"expected an email address, got {value!r}")
        return value


class QueryColumn(_Strict):
    name: str
    type: str = "text"
    description: str = ""
    reviewed: str | None = Field(None, min_length=10, description="a free-text column published: who reviewed "
                                 "it, when, and why it is safe (as a source column's `reviewed:`)")

    _type = field_validator("type")(column_type)


class SmallCells(_Strict):
    """Counts about few people are not published: a count from 1 to `threshold` - 1 is suppressed
    (published empty), and so is the next smallest count of its group wherever a group's total is
    published (here or in another data set) and would otherwise give a lone suppressed cell back."""

    columns: list[str] = Field(min_length=1, description="the count columns")
    threshold: int = Field(5, ge=2, description="counts below it (and above 0) are suppressed")
    published_totals: list[list[str]] = Field(
        default_factory=list, description="column groups whose totals are published, e.g. [[month]] when a "
        "monthly total appears elsewhere; [] (the group of everything) for a grand total")

    def explained(self) -> str:
        """The suppression rule in one sentence, for the data set's description and dictionary."""
        return (f"Counts from 1 to {self.threshold - 1} are suppressed (published empty), with other cells "
                "where a published total would reveal them.")


class DatasetConfig(_Strict):
    """One data set of the inventory, with everything its catalog entry needs."""

    id: str
    title: str
    description: str
    keywords: list[str] = Field(min_length=1)
    publisher: str = "City of Milwaukee"
    contact: Contact
    license: str = Field(description="a license URI")
    accrual_periodicity: str = Field(description="ISO 8601 repeating duration (R/P1D, R/P1M) or 'irregular'")
    department: str
    steward: str
    sensitivity: Literal["public", "sensitive", "restricted"]
    release_status: Literal["inventoried", "under_review", "approved", "published", "retired"]
    release_priority: int = Field(ge=1)
    source: str | None = Field(None, description="the source whose public projection this data set is")
    query: str | None = Field(None, description="a SELECT under sql/ giving the rows, when not a source")
    columns: list[QueryColumn] = Field(default_factory=list, description="the query's columns")
    key: list[str] = Field(default_factory=list, description="the query's primary key")
    temporal_column: str | None = Field(None, description="the date column whose range is the catalog's temporal")
    theme: list[str] = Field(default_factory=list)
    small_cells: SmallCells | None = Field(None, description="an aggregated data set: its count columns and threshold")
    contains: list[Literal["personal", "free_text"]] = Field(
        default_factory=list, description="what the data holds that is about residents: personal values, free text")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"expected lower-case words joined by hyphens, got {value!r}")
        return value

    @field_validator("license")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not re.match(r"^https?://\S+$", value):
            raise ValueError(f"expected a license URI, got {value!r}")
        return value

    @field_validator("accrual_periodicity")
    @classmethod
    def _periodicity(cls, value: str) -> str:
        if not _PERIODICITY.match(value):
            raise ValueError(f"expected an ISO 8601 repeating duration such as R/P1D, or 'irregular'; got {value!r}")
        return value

    @model_validator(mode="after")
    def _rows_defined(self) -> "DatasetConfig":
        if self.release_status in (*RELEASED, "retired"):
            if bool(self.source) == bool(self.query):
                raise ValueError("a released data set names exactly one of source or query")
            if self.query and not self.columns:
                raise ValueError("a query data set lists its columns")
            if self.sensitivity != "public":
                raise ValueError(f"a {self.sensitivity} data set cannot be {self.release_status}")
        if self.sensitivity == "public" and self.contains:
            raise ValueError(f"sensitivity: a data set that contains {' and '.join(self.contains)} cannot be public")
        if self.small_cells and self.query:
            names = {c.name for c in self.columns}
            unknown = [c for c in self.small_cells.columns + [g for group in self.small_cells.published_totals
                                                              for g in group] if c not in names]
            if unknown:
                raise ValueError(f"small_cells names columns the data set does not list: {unknown}")
        return self

    @property
    def public_description(self) -> str:
        """The description readers see: the steward's, and the small-cell rule when there is one."""
        return f"{self.description} {self.small_cells.explained()}" if self.small_cells else self.description

    @property
    def released(self) -> bool:
        """Exported and catalogued: approved or published."""
        return self.release_status in RELEASED


def load_dataset(path: Path) -> DatasetConfig:
    """Parse and validate one inventory file; `DatasetConfigError` names the file and each bad field."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        config = DatasetConfig.model_validate(raw)
    except yaml.YAMLError as err:
        raise DatasetConfigError(f"{path}: not valid YAML: {err}") from err
    except ValidationError as err:
        problems = "; ".join(f"field '{'.'.join(str(p) for p in e['loc']) or '(file)'}': {e['msg']}"
                             for e in err.errors())
        raise DatasetConfigError(f"{path}: {problems}") from err
    if config.id != path.stem:
        raise DatasetConfigError(f"{path}: field 'id' is {config.id!r}; expected the file's name, {path.stem!r}")
    return config


def inventory(folder: Path | None = None) -> list[DatasetConfig]:
    """Every data set of the inventory, by release priority."""
    folder = folder or settings.datasets_dir()
    return sorted((load_dataset(p) for p in sorted(Path(folder).glob("*.yaml"))),
                  key=lambda d: (d.release_priority, d.id))
