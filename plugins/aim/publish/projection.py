"""What a data set publishes: the SELECT that gives its public rows, its columns and its key.

A data set made from a source publishes the source's core table through each column's privacy
class (`aim.privacy`): dropped, personal and free-text columns left out, generalized ones
generalized. Three rules need more than one value at a time, and live here:

- **Opaque ids.** When a key column is not public (a derived key: a hash of the row's content that
  hashing candidate addresses reverses; or a key classed drop), the data set publishes `record_id`
  instead, a number `ops.public_id` assigns once per record, and that is its primary key.
- **Points.** A `generalize_point` pair is published as the centre of its grid cell, and left
  empty where the cell holds fewer than `min_addresses` distinct addresses in core, so that a
  published point never stands for one address.
- **Small cells.** An aggregated data set (`small_cells:` in the inventory) publishes counts from 1
  to threshold - 1 empty, and the next smallest count of a group wherever the group's total is
  published and would give a lone suppressed cell back (complementary suppression, repeated until
  no group has one suppressed cell).
"""
from __future__ import annotations

from dataclasses import dataclass

from psycopg2 import sql

from aim import privacy, settings
from aim.publish.datasets import DatasetConfig, SmallCells
from aim.publish.formats import Column
from aim.sources import SourceConfig, load_source

RECORD_ID = "record_id"
POINT_MIN_ADDRESSES = 5


@dataclass
class Rows:
    """What a data set publishes: its SELECT, columns and key."""

    query: str
    columns: list[Column]
    key: list[str]


def key_is_public(config: SourceConfig) -> bool:
    """Whether the source's key is published as it is (every key column classed public, none derived)."""
    return not config.derived_key and all(config.column(k).privacy == "public" for k in config.key)


def published_columns(config: SourceConfig) -> list[Column]:
    """The columns a source's public data set has, in order: `record_id` first when its key is not
    public, then each column its privacy class publishes."""
    columns = [] if key_is_public(config) else [
        Column(RECORD_ID, "bigint", "Opaque id of the record: stable from one release to the next, not derived "
               "from the record's content")]
    return columns + [Column(c.name, "double precision" if c.privacy == "generalize_point" else c.type,
                             c.description) for c in config.columns if privacy.published(c)]


def _assign_record_ids(cur, config: SourceConfig, natural_key: sql.Composable) -> None:
    cur.execute(sql.SQL("""
        INSERT INTO ops.public_id (source, natural_key)
        SELECT {source}, k FROM (SELECT DISTINCT {natural_key} AS k FROM {core} AS c) AS keys
        WHERE NOT EXISTS (SELECT FROM ops.public_id p WHERE p.source = {source} AND p.natural_key = keys.k)
        ORDER BY k
        ON CONFLICT DO NOTHING""").format(
        source=sql.Literal(config.source), natural_key=natural_key, core=sql.Identifier(*config.core_table)))


def _point_cells(config: SourceConfig) -> tuple[sql.Composable, sql.Composable]:
    """The join giving each row its point cell's count of distinct addresses, and the condition under
    which the cell is published."""
    x, y = [c for c in config.columns if c.privacy == "generalize_point"]
    address = next(c for c in config.columns if c.privacy == "generalize_address")
    grid = sql.Literal(x.grid)

    def cell(alias: str, column) -> sql.Composable:
        return sql.SQL("floor({}.{} / {})").format(sql.Identifier(alias), sql.Identifier(column.name), grid)

    join = sql.SQL("""
        LEFT JOIN (SELECT {ax} AS cell_x, {ay} AS cell_y, count(DISTINCT upper(btrim(a.{address}))) AS addresses
                   FROM {core} AS a GROUP BY 1, 2) AS cells
               ON cells.cell_x = {cx} AND cells.cell_y = {cy}""").format(
        ax=cell("a", x), ay=cell("a", y), cx=cell("c", x), cy=cell("c", y),
        address=sql.Identifier(address.name), core=sql.Identifier(*config.core_table))
    return join, sql.SQL("cells.addresses >= {}").format(sql.Literal(x.min_addresses or POINT_MIN_ADDRESSES))


def public_projection(conn, config: SourceConfig) -> Rows:
    """The public SELECT of a source's core table, each column through its privacy class; assigns
    (and commits) `record_id`s to records that have none yet when the key is not public."""
    selected, joins = [], []
    if key_is_public(config):
        order = [sql.SQL("c.{}").format(sql.Identifier(k)) for k in config.key]
        key = list(config.key)
    else:
        natural_key = sql.SQL("jsonb_build_array({})::text").format(
            sql.SQL(", ").join(sql.SQL("c.{}").format(sql.Identifier(k)) for k in config.key))
        with conn.cursor() as cur:
            _assign_record_ids(cur, config, natural_key)
        conn.commit()  # the files are written from a read-only snapshot, which must see the ids
        joins.append(sql.SQL("JOIN ops.public_id AS p ON p.source = {} AND p.natural_key = {}").format(
            sql.Literal(config.source), natural_key))
        selected.append(sql.SQL("p.record_id AS {}").format(sql.Identifier(RECORD_ID)))
        order, key = [sql.SQL("p.record_id")], [RECORD_ID]
    point_published = None
    if any(c.privacy == "generalize_point" for c in config.columns):
        join, point_published = _point_cells(config)
        joins.append(join)
    for column in config.columns:
        if not privacy.published(column):
            continue
        value = privacy.published_value(column, sql.SQL("c.{}").format(sql.Identifier(column.name)))
        if column.privacy == "generalize_point":
            value = sql.SQL("CASE WHEN {} THEN {} END").format(point_published, value)
        selected.append(sql.SQL("{} AS {}").format(value, sql.Identifier(column.name)))
    query = sql.SQL("SELECT {} FROM {} AS c {} ORDER BY {}").format(
        sql.SQL(", ").join(selected), sql.Identifier(*config.core_table), sql.SQL(" ").join(joins),
        sql.SQL(", ").join(order))
    return Rows(query.as_string(conn), published_columns(config), key)


def _group_join(group: list[str]) -> sql.Composable:
    if not group:
        return sql.SQL("TRUE")
    return sql.SQL(" AND ").join(sql.SQL("t.{c} IS NOT DISTINCT FROM g.{c}").format(c=sql.Identifier(c)) for c in group)


def _suppress_complements(cur, table: sql.Identifier, column: str, flag: sql.Identifier, group: list[str],
                          key: list[str]) -> int:
    """One round for one group: in each group with exactly one suppressed cell, suppress its smallest
    other cell (non-zero first). Returns the cells suppressed."""
    group_sql = sql.SQL(", ").join(sql.Identifier(c) for c in group) if group else sql.SQL("()")
    select_group = sql.SQL(", ").join(sql.Identifier(c) for c in group) if group else sql.SQL("1 AS whole")
    value = sql.SQL("t.{}").format(sql.Identifier(column))
    cur.execute(sql.SQL("""
        WITH lone AS (SELECT {select_group} FROM {table} GROUP BY {group} HAVING count(*) FILTER (WHERE {flag}) = 1),
             pick AS (SELECT DISTINCT ON ({distinct}) t.ctid AS cell
                      FROM {table} AS t JOIN lone AS g ON {joined}
                      WHERE NOT t.{flag} AND {value} IS NOT NULL
                      ORDER BY {distinct}, ({value} = 0), {value}, {key})
        UPDATE {table} AS t SET {flag} = TRUE FROM pick WHERE t.ctid = pick.cell""").format(
        select_group=select_group, table=table, group=group_sql, flag=flag, joined=_group_join(group),
        distinct=sql.SQL(", ").join(sql.SQL("g.{}").format(sql.Identifier(c)) for c in group) if group
        else sql.SQL("g.whole"),
        value=value, key=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(k)) for k in key)))
    return cur.rowcount


def suppress_small_cells(conn, dataset_id: str, rows: Rows, cells: SmallCells) -> Rows:
    """`rows` with small counts (and their complements) published empty: the cells are computed into
    a temporary table of this session (committed, so that the read-only snapshot that writes the
    files sees it), which the returned SELECT reads."""
    table = sql.Identifier("small_cells_" + dataset_id.replace("-", "_"))
    flags = {c: sql.Identifier(f"suppressed_{c}") for c in cells.columns}
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{t}; CREATE TEMP TABLE {t} AS "
                            "SELECT q.*, {flags} FROM ({q}) AS q").format(
            t=table, q=sql.SQL(rows.query),
            flags=sql.SQL(", ").join(sql.SQL("coalesce(q.{c} > 0 AND q.{c} < {n}, FALSE) AS {f}").format(
                c=sql.Identifier(c), n=sql.Literal(cells.threshold), f=f) for c, f in flags.items())))
        for column, flag in flags.items():
            # rounds only add suppressed cells, so they end: at the latest when every cell is suppressed
            while sum(_suppress_complements(cur, table, column, flag, group, rows.key)
                      for group in cells.published_totals):
                pass
    conn.commit()
    selected = [sql.SQL("CASE WHEN {f} THEN NULL ELSE {c} END AS {c}").format(f=flags[c.name], c=sql.Identifier(c.name))
                if c.name in flags else sql.Identifier(c.name) for c in rows.columns]
    query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
        sql.SQL(", ").join(selected), table, sql.SQL(", ").join(sql.Identifier(k) for k in rows.key))
    columns = [Column(c.name, c.type, f"{c.description} {cells.explained()}".strip()) if c.name in flags else c
               for c in rows.columns]
    return Rows(query.as_string(conn), columns, rows.key)


def dataset_rows(conn, dataset: DatasetConfig) -> Rows:
    """A data set's rows: its source's public projection, or its SQL file; small cells suppressed."""
    if dataset.source:
        rows = public_projection(conn, load_source(dataset.source))
    else:
        query = (settings.sql_dir() / dataset.query).read_text(encoding="utf-8").strip().rstrip(";")
        rows = Rows(query, [Column(c.name, c.type, c.description) for c in dataset.columns], list(dataset.key))
    return suppress_small_cells(conn, dataset.id, rows, dataset.small_cells) if dataset.small_cells else rows
