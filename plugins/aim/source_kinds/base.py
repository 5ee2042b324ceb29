"""What every kind of source provides, and the configuration pieces kinds share.

A kind is one module under `aim.source_kinds` with one `SourceKind` subclass: the model of its
`extract` block, how it opens its Airflow connection, and how it yields the rows changed since a
watermark, a chunk at a time. Landing, the watermark, derived keys and the batch register are
the platform's, the same for every kind.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from aim.sources import SourceConfig

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


class Strict(BaseModel):
    """A configuration block: unknown fields are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def identifier(value: str) -> str:
    """`value` if it is a lower-case SQL identifier; ValueError saying what was expected otherwise."""
    if not IDENTIFIER.match(value):
        raise ValueError(f"expected a lower-case SQL identifier ([a-z_][a-z0-9_]*), got {value!r}")
    return value


class Watermarked(Strict):
    """How an incremental source's watermark moves: never past the extraction's start (less the
    allowed clock skew), never backwards, and each run re-reads an overlap window behind it."""

    watermark_column: str
    overlap_seconds: int = Field(
        900, ge=1, le=7 * 86400,
        description="each run re-reads this far behind the watermark: late commits, same-second updates",
    )
    clock_skew_seconds: int = Field(
        300, ge=0, le=86400,
        description="the watermark stays this far behind the extraction's start; a value further ahead "
                    "of the clock than this is in the future",
    )
    future_rows: Literal["reject", "fail"] = Field(
        "reject", description="a row whose watermark lies in the future: set it aside (reject) or fail the batch",
    )


@dataclass(frozen=True)
class FileVersion:
    """One version of a delivered file: its key in the drop and the SHA-256 of its content."""

    key: str
    sha256: str
    size: int
    extra_columns: Callable[[], list[str]] = lambda: []  # known once the file has been read


@dataclass(frozen=True)
class CopyGuarantees:
    """What a source's schema guarantees of the rows its `copy_out` writes (one `COPY`: one snapshot)."""

    each_key_once: bool = False  # no two rows hold one key, compared as the merge compares keys (typed)
    columns_that_cast: frozenset[str] = frozenset()  # typed columns whose every value casts to the configured type


@dataclass
class Chunk:
    """Rows in the order of the source's extracted columns, and where they came from. Or, in
    `columnar`, a whole file to land as Arrow columns (`tables()`, named as the extracted
    columns), with `rows()` its rows as chunks, for when that raises `NotColumnar`."""

    rows: Sequence[Sequence[Any]]
    origin: str | None = None
    file: FileVersion | None = None
    columnar: Any = None


@dataclass
class ExtractRequest:
    """What a landing asks of a kind: rows changed at or after `since` (None: everything), and,
    for file drops, which versions are already known (landed for review, merged or discarded)."""

    since: Any = None
    file_known: Callable[[str, str], bool] = field(default=lambda key, sha256: False)


class SourceKind(ABC):
    """One kind of source. Subclasses set `name` and `extract_model` and implement the methods."""

    name: ClassVar[str]
    extract_model: ClassVar[type[Strict]]
    needs_connection: ClassVar[bool] = True

    def connection_types(self, config: "SourceConfig") -> tuple[str, ...]:
        """The Airflow connection types this source's connection may have (empty: any)."""
        return ()

    def validate(self, config: "SourceConfig") -> None:
        """Raise ValueError when the rest of the source's configuration does not suit this kind."""

    @abstractmethod
    def describe(self, config: "SourceConfig") -> str:
        """A phrase saying what a run reads, e.g. 'reads rms.incident changed since ...'."""

    @abstractmethod
    def access(self, config: "SourceConfig", conn: Any | None) -> Any:
        """What `chunks` needs to reach the source, from its Airflow connection (None: it has none).
        Credentials stay inside the returned object; it never goes to a log or XCom."""

    @abstractmethod
    def chunks(self, config: "SourceConfig", access: Any, request: ExtractRequest) -> Iterator[Chunk]:
        """The rows asked for, a bounded chunk at a time, in extracted-column order
        (`config.extracted_columns`), values as the source gives them."""

    def copy_out(self, config: "SourceConfig", access: Any, request: ExtractRequest, *,
                 batch_id: str) -> Iterator[bytes] | None:
        """The rows asked for as COPY text that staging's `COPY` takes as it is (`aim.staging.copy_text`:
        the batch id, an empty origin, then every configured column), in bounded pieces, when the
        source can write it itself; None (the default) when rows come through `chunks`."""
        return None

    def guarantees(self, config: "SourceConfig", access: Any) -> "CopyGuarantees":
        """What the source's own schema guarantees of the rows `copy_out` writes for one landing,
        so that landing and the quality gate need not scan the batch to find it out. Nothing (the
        default) when not known."""
        return CopyGuarantees()
