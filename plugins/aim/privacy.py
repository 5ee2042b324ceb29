"""Privacy classes: what the open data exports do to each column of a source.

Every column of every source declares its class (`privacy:` in its source file); a column without
one is a configuration error, so nothing is published because somebody forgot to say otherwise.
One class per entry of `CLASSES`: its name, the column types it applies to, and the SQL that
turns a core value into its published value (None: never published).

| class                | published as                                                             |
|----------------------|--------------------------------------------------------------------------|
| `drop`               | never                                                                    |
| `personal`           | never: the value is about a person (name, phone, birth date)             |
| `free_text`          | never: free text (comments, notes) can name anyone                       |
| `public`             | as it is; on a free-text column only with a `reviewed:` note             |
| `generalize_address` | its hundred block and street (`2800 BLOCK N 1ST ST`); empty when no block |
| `generalize_time`    | cut to the hour (or `generalize_to: day`)                                |
| `generalize_point`   | the centre of its `grid` cell, empty when the cell holds fewer than      |
|                      | `min_addresses` distinct addresses in core                               |

Free text is never generalized: an address generalizer run on prose returns prose.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from psycopg2 import sql

if TYPE_CHECKING:
    from aim.sources import Column

TIMES = frozenset({"timestamp", "timestamptz"})
NUMBERS = frozenset({"smallint", "integer", "bigint", "numeric", "double precision"})


@dataclass(frozen=True)
class PrivacyClass:
    """One privacy class: the types it applies to (None: any) and its published SQL (None: dropped)."""

    name: str
    meaning: str
    types: frozenset[str] | None = None
    published: Callable[["Column", sql.Composable], sql.Composable] | None = None


def _as_is(column: "Column", value: sql.Composable) -> sql.Composable:
    return value


def _address_block(column: "Column", value: sql.Composable) -> sql.Composable:
    return sql.SQL("ops.generalize_address({})").format(value)


def _time_cut(column: "Column", value: sql.Composable) -> sql.Composable:
    return sql.SQL("date_trunc({}, {})").format(sql.Literal(column.generalize_to or "hour"), value)


def _grid_centre(column: "Column", value: sql.Composable) -> sql.Composable:
    return sql.SQL("((floor({v} / {g}) + 0.5) * {g})::double precision").format(v=value, g=sql.Literal(column.grid))


CLASSES: dict[str, PrivacyClass] = {c.name: c for c in (
    PrivacyClass("drop", "never published"),
    PrivacyClass("personal", "about a person (name, phone, birth date): never published"),
    PrivacyClass("free_text", "free text that can name anyone: never published"),
    PrivacyClass("public", "published as it is", published=_as_is),
    PrivacyClass("generalize_address", "published as its hundred block and street, empty when it has no block",
                 frozenset({"text"}), _address_block),
    PrivacyClass("generalize_time", "published cut to the hour, or to the day (generalize_to: day)",
                 TIMES, _time_cut),
    PrivacyClass("generalize_point", "published as the centre of its grid cell, empty in a cell of fewer "
                 "than min_addresses addresses", NUMBERS, _grid_centre),
)}


def privacy_class(name: str) -> str:
    """`name` if it is a privacy class; ValueError listing the classes otherwise."""
    if name not in CLASSES:
        raise ValueError(f"expected a privacy class, one of {sorted(CLASSES)}; got {name!r}")
    return name


def check_column(column: "Column") -> None:
    """ValueError when a column's class does not fit its type or lacks (or misuses) its settings."""
    cls = CLASSES[column.privacy]
    if cls.types is not None and column.type not in cls.types:
        raise ValueError(f"privacy {cls.name} applies to {sorted(cls.types)} columns; {column.name} is {column.type}")
    if column.generalize_to is not None and cls.name != "generalize_time":
        raise ValueError("generalize_to belongs to privacy generalize_time")
    if (column.grid is not None) != (cls.name == "generalize_point"):
        raise ValueError("privacy generalize_point needs grid (the cell size, in the coordinates' unit), "
                         "and only it takes one")
    if column.min_addresses is not None and cls.name != "generalize_point":
        raise ValueError("min_addresses belongs to privacy generalize_point")
    if column.reviewed is not None and cls.name != "public":
        raise ValueError("reviewed: is the review note of a free-text column made public; this column is "
                         f"{cls.name}")


def published(column: "Column") -> bool:
    """Whether the column appears, in some form, in its source's public data set."""
    return CLASSES[column.privacy].published is not None


def published_value(column: "Column", value: sql.Composable) -> sql.Composable:
    """The SQL of the column's published value, given the SQL of its core value."""
    transform = CLASSES[column.privacy].published
    if transform is None:
        raise ValueError(f"{column.name} is {column.privacy}: never published")
    return transform(column, value)
