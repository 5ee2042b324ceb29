"""The kinds of source, one module each, and their registry.

A kind (see `base.SourceKind`) brings the model of its `extract` block, how it opens its Airflow
connection and how it yields rows changed since a watermark; everything else (landing by COPY,
derived keys, watermarks, the batch register, the quality gate, the merge) is the platform's.
Adding a kind is one module and one line below: see docs/adding-a-source.md.
"""
from __future__ import annotations

from aim.source_kinds import file_drop, json_api, sql_table
from aim.source_kinds.base import SourceKind

KINDS: dict[str, SourceKind] = {
    kind.name: kind
    for kind in (
        sql_table.KIND,
        file_drop.KIND,
        json_api.KIND,
    )
}


def kind_named(name: str) -> SourceKind:
    """The registered kind called `name`; ValueError listing the known kinds otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown source kind {name!r}; expected one of {sorted(KINDS)}") from None
