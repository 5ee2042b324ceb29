"""`python -m aim.check [--warehouse URL] [FILE ...]`: check source configurations, their suites and
the open data inventory before deploying.

With no file, checks every configuration in the sources folder. For each, prints what the
platform will do with the source, its suite and the checks generated from its configuration, or
every problem with the file and field. A suite may name only the source's columns: in `column`,
`column_list`, `column_A`/`column_B`, `column_set`, and in the SQL of its row queries.

Then the data set inventory (`dags/datasets/`): a data set made from a source must name a
configured source, and list (if it lists any) only columns the source publishes.

With a warehouse (`--warehouse URL`, else `AIM_WAREHOUSE_URL`), the suites' row queries run there,
read-only, on an empty batch with the source's columns (a column the source lacks, or SQL that
does not run, is found now rather than on the first batch), and a released data set whose source
has never merged a batch is a problem. Without one, the row queries' identifiers are read from
their text instead (best effort). Exit status 1 when anything has a problem.
"""
from __future__ import annotations

import argparse
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from aim import settings
from aim.dag_builders.ingest import dag_id_for
from aim.generated_checks import SuiteError, generated_expectations, read_suite, repeats_generated, watermark_rule
from aim.sources import SourceConfig, SourceConfigError, load_source_config, source_config_paths
from aim.tables import BATCH_COLUMN, ORIGIN_COLUMN

PLATFORM_COLUMNS = (BATCH_COLUMN, ORIGIN_COLUMN)  # every staged batch has them
_COLUMN_ARGUMENTS = ("column", "column_A", "column_B")
_COLUMN_LIST_ARGUMENTS = ("column_list", "column_set")


def describe(config: SourceConfig) -> list[str]:
    """Plain-language lines saying what the platform will do with a valid source."""
    reads = config.source_kind.describe(config)
    key = ", ".join(config.key)
    return [
        f"DAG {dag_id_for(config)}, kind {config.kind}, schedule {config.schedule}, owner {config.owner}",
        f"{reads} through connection {config.connection_id}",
        f"lands in staging.{config.source}, merges into core.{config.source} on ({key})",
    ]


# ---- suites -----------------------------------------------------------------------------------

# Words of PostgreSQL's SQL that are not column names, for reading a row query without a warehouse.
_SQL_WORDS = frozenset("""
    all and any array as asc at between both by case cast collate current_date current_time
    current_timestamp desc distinct double else end escape except exists false filter first from
    full group having ilike in inner intersect interval is isnull join last lateral leading left
    like limit localtime localtimestamp not notnull null nulls of offset on or order outer
    over partition precision right row rows select similar some symmetric then time timestamp
    to trailing true union unknown using varying when where window with without zone
""".split())
_CLAUSE_WORDS = frozenset("fetch for natural cross".split())  # may follow {batch} but are no alias
_SQL_TOKEN = re.compile(
    r"""(?P<string>[EeBbXxUu]?&?'(?:[^']|'')*')|"(?P<quoted>(?:[^"]|"")+)"|(?P<word>[A-Za-z_][A-Za-z0-9_$]*)"""
    r"""|(?P<cast>::)|(?P<dot>\.)|(?P<open>\()|(?P<space>\s+)|(?P<other>.)""",
    re.S,
)


def identifiers_in(query: str) -> set[str]:
    """The column names a row query reads, as far as its text tells (no database): every name
    that is not an SQL word, a function, a type after `::`, a qualifier before `.`, or an alias.
    `{batch}` is the batch's table; a word right after it (or after AS) is an alias."""
    batch = "aim_check_batch_"  # stands for {batch}: not a column
    tokens = [(m.lastgroup, m.group(m.lastgroup)) for m in _SQL_TOKEN.finditer(query.replace("{batch}", f" {batch} "))]
    tokens = [t for t in tokens if t[0] != "space"]
    names: set[str] = set()
    for i, (kind, text) in enumerate(tokens):
        if kind not in ("word", "quoted") or text == batch:
            continue
        before = tokens[i - 1] if i else ("", "")
        after = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "word" and text.lower() in _SQL_WORDS:
            continue
        if before[0] == "cast" or after[0] in ("open", "dot"):  # a type, a function, a schema or an alias
            continue
        if i >= 2 and before[0] == "open" and tokens[i - 2][1].lower() in ("extract", "date_part"):
            continue  # extract(year FROM …): a field, not a column
        if before[1] == batch or (before[0] == "word" and before[1].lower() == "as"):  # an alias
            continue
        names.add(text.replace('""', '"') if kind == "quoted" else text.lower())
    return names


def _rule_name(expectation: dict) -> str:
    return expectation.get("description") or expectation["type"]


def suite_column_problems(config: SourceConfig, expectations: list[dict], *, by_text: bool) -> list[str]:
    """Columns the suite's expectations name that the source does not have: in their column
    arguments and, with `by_text`, in their row queries as read from the text (`identifiers_in`)."""
    known = set(config.column_names) | set(PLATFORM_COLUMNS)
    problems = []
    for e in expectations:
        kwargs = e.get("kwargs") or {}
        named = [kwargs[a] for a in _COLUMN_ARGUMENTS if isinstance(kwargs.get(a), str)]
        named += [c for a in _COLUMN_LIST_ARGUMENTS for c in (kwargs.get(a) or []) if isinstance(c, str)]
        query = kwargs.get("unexpected_rows_query")
        if by_text and isinstance(query, str):
            named += sorted(identifiers_in(query))
        unknown = sorted(set(named) - known)
        if unknown:
            problems.append(f"{e['type']} ({_rule_name(e)}) names columns the source does not have: {unknown}")
    return problems


_ALIASED_BATCH = re.compile(r"\{batch\}\s+(?:as\s+)?([a-z_][a-z0-9_]*)", re.I)


def query_text_problems(expectations: list[dict]) -> list[str]:
    """Row queries the platform cannot run as written: GX fills `{batch}` with `str.format`, so
    any other brace (a regex quantifier such as `{3}`) must be doubled; and `{batch}` becomes an
    aliased subquery (in the gate and in GX), so it cannot take an alias of its own."""
    problems = []
    for e in expectations:
        query = (e.get("kwargs") or {}).get("unexpected_rows_query")
        if not isinstance(query, str):
            continue
        try:
            query.format(batch="batch")
        except (KeyError, IndexError, ValueError) as err:
            problems.append(f"row query ({_rule_name(e)}) has braces other than {{batch}} ({err!r}), which GX "
                            "cannot format: write [0-9][0-9][0-9] for [0-9]{{3}}")
        alias = _ALIASED_BATCH.search(query)
        if alias and alias.group(1).lower() not in _SQL_WORDS | _CLAUSE_WORDS:
            problems.append(f"row query ({_rule_name(e)}) gives {{batch}} an alias ({alias.group(1)}); it is already "
                            "an aliased subquery: name its columns unqualified")
    return problems


def _probe_batch(config: SourceConfig) -> str:
    """An empty batch with the staging table's columns, for running a row query without rows."""
    from psycopg2 import sql  # noqa: PLC0415

    columns = [sql.SQL("NULL::text AS {}").format(sql.Identifier(c)) for c in (*config.column_names, *PLATFORM_COLUMNS)]
    return sql.SQL("(SELECT {} WHERE false) AS batch").format(sql.SQL(", ").join(columns))


def query_run_problems(cur, config: SourceConfig, expectations: list[dict]) -> list[str]:
    """Row queries that do not run in the warehouse on an empty batch of the source (a column the
    source lacks, a function the warehouse lacks, bad SQL), each with PostgreSQL's reason."""
    import psycopg2  # noqa: PLC0415

    batch = _probe_batch(config).as_string(cur)
    problems = []
    for e in expectations:
        query = (e.get("kwargs") or {}).get("unexpected_rows_query")
        if not isinstance(query, str):
            continue
        cur.execute("SAVEPOINT aim_check")
        try:
            cur.execute(f"SELECT count(*) FROM ({query.replace('{batch}', batch)}) AS probe")  # no parameters: % as written
        except psycopg2.Error as err:
            cur.execute("ROLLBACK TO SAVEPOINT aim_check")
            reason = (err.pgerror or str(err)).strip().splitlines()[0]
            problems.append(f"row query ({_rule_name(e)}) does not run in the warehouse: {reason}")
        else:
            cur.execute("RELEASE SAVEPOINT aim_check")
    return problems


def check_suite(config: SourceConfig, cur=None) -> list[str]:
    """Lines about the source's suite and the checks generated for it; raises ValueError naming
    every problem (a suite that does not load, columns the source does not have, row queries
    that do not run on the warehouse behind `cur`, when given)."""
    from aim.quality import load_suite  # imports great_expectations: only when checking

    path = settings.expectations_dir() / config.expectation_suite
    if not path.is_file():
        raise ValueError(f"suite {path} does not exist")
    try:
        load_suite(path)  # every expectation must be one GX can build
        raw = read_suite(path)["expectations"]
    except SuiteError as err:
        raise ValueError(str(err)) from err
    problems = suite_column_problems(config, raw, by_text=cur is None) + query_text_problems(raw)
    if cur is not None:
        problems += query_run_problems(cur, config, raw)
    if problems:
        raise ValueError(f"suite {path.name}: " + "\n  ".join(problems))
    severities = [e.get("severity", "critical") for e in raw]
    generated = generated_expectations(config)
    casts = [c.name for c in config.columns if c.type != "text"]
    watermark = watermark_rule(config)
    lines = [
        f"suite expectations/{path.name}: {len(severities)} expectations "
        f"({severities.count('critical')} critical, {severities.count('warning')} warning)",
        f"generated from the configuration: {len(generated)} critical checks: {len(config.columns)} columns exist; "
        f"key ({', '.join(config.key)}) not null and unique; {len(casts)} typed columns cast (rows that do not are "
        "set aside)"
        + (f"; {watermark['description']} ("
           + ("such rows are set aside" if watermark["meta"].get("reject_rows") else "else the batch fails") + ")"
           if watermark else ""),
        "suite columns are the source's "
        + ("(row queries run on an empty batch in the warehouse)" if cur is not None
           else "(row queries read as text: no warehouse to run them on)"),
    ]
    repeated = repeats_generated(config, raw)
    if repeated:
        lines.append(f"note: {len(repeated)} suite expectation(s) repeat generated checks and can go: "
                     + "; ".join(f"{e['type']} ({_rule_name(e) if e.get('description') else e['kwargs']})"
                                 for e in repeated))
    return lines


# ---- the data set inventory -------------------------------------------------------------------

def _published_columns(config: SourceConfig) -> dict[str, str]:
    """The columns a source's public data set has, with their types."""
    from aim.publish.projection import published_columns  # noqa: PLC0415

    return {c.name: c.type for c in published_columns(config)}


def dataset_problems(dataset, sources: dict[str, SourceConfig | None]) -> list[str]:
    """What is wrong with one data set of the inventory against the configured sources (name ->
    configuration, None when its file does not validate)."""
    problems = []
    if dataset.source:
        if dataset.source not in sources:
            return [f"source {dataset.source!r} is not a configured source "
                    f"(no {settings.sources_dir() / (dataset.source + '.yaml')})"]
        config = sources[dataset.source]
        if config is None:
            return []  # the source file's own problem is reported with it
        published = _published_columns(config)
        for column in dataset.columns:
            if column.name not in published:
                problems.append(f"column {column.name!r} is not a column source {dataset.source} publishes "
                                f"({sorted(published)})")
            elif "type" in column.model_fields_set and column.type != published[column.name]:
                problems.append(f"column {column.name!r} is {column.type} here, {published[column.name]} "
                                f"in source {dataset.source}")
        names = set(published)
        if dataset.small_cells:
            unknown = sorted({c for c in dataset.small_cells.columns + [g for group in dataset.small_cells.published_totals
                                                                       for g in group] if c not in published})
            if unknown:
                problems.append(f"small_cells names columns source {dataset.source} does not publish: {unknown}")
    else:
        if dataset.query and not (settings.sql_dir() / dataset.query).is_file():
            problems.append(f"query {dataset.query} is not a file under {settings.sql_dir()}")
        names = {c.name for c in dataset.columns}
    if dataset.temporal_column and dataset.temporal_column not in names:
        problems.append(f"temporal_column {dataset.temporal_column!r} is not one of the data set's columns")
    missing_key = [k for k in dataset.key if k not in names]
    if missing_key:
        problems.append(f"key {missing_key} names columns the data set does not have")
    return problems


def never_loaded(cur, sources: list[str]) -> list[str]:
    """Of `sources`, those with no merged batch in the warehouse's `ops.batch`."""
    cur.execute("SELECT DISTINCT source FROM ops.batch WHERE status = 'merged' AND source = ANY(%s)", (sources,))
    loaded = {r[0] for r in cur.fetchall()}
    return [s for s in sources if s not in loaded]


def check_inventory(sources: dict[str, SourceConfig | None], cur=None) -> tuple[list[str], dict[Path, list[str]]]:
    """Lines about the data set inventory, and the problems of each inventory file."""
    from aim.publish.datasets import DatasetConfigError, load_dataset  # noqa: PLC0415

    folder = settings.datasets_dir()
    problems: dict[Path, list[str]] = {}
    datasets = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            datasets.append((path, load_dataset(path)))
        except DatasetConfigError as err:
            problems[path] = [str(err)]
            continue
        found = dataset_problems(datasets[-1][1], sources)
        if found:
            problems[path] = found
    from_source = [d for _, d in datasets if d.source]
    lines = [f"{len(datasets)} data sets checked: the {len(from_source)} made from a source name a configured source "
             "and only columns it publishes; keys, temporal columns and query files exist"]
    released = sorted({d.source for _, d in datasets if d.released and d.source in sources})
    if cur is None:
        lines.append("released data sets' sources have loaded: not checked (no warehouse: --warehouse URL or "
                     "AIM_WAREHOUSE_URL)")
        return lines, problems
    import psycopg2  # noqa: PLC0415

    cur.execute("SAVEPOINT aim_check")
    try:
        empty = set(never_loaded(cur, released))
    except psycopg2.Error as err:
        cur.execute("ROLLBACK TO SAVEPOINT aim_check")
        problems.setdefault(folder, []).append(
            f"cannot read the warehouse's ops.batch (is it migrated?): {(err.pgerror or str(err)).strip()}")
        return lines, problems
    for path, d in datasets:
        if d.released and d.source in empty:
            problems.setdefault(path, []).append(
                f"released ({d.release_status}), but source {d.source} has never merged a batch into the warehouse"
            )
    loaded = [s for s in released if s not in empty]
    lines.append(f"released data sets' sources that have merged a batch: {', '.join(loaded) or 'none'}"
                 + (f"; never: {', '.join(sorted(empty))}" if empty else ""))
    return lines, problems


# ---- the command ------------------------------------------------------------------------------

class WarehouseUnreachable(RuntimeError):
    """The warehouse named for the check does not answer."""


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def _warehouse(url: str | None) -> Iterator:
    """A cursor in a read-only transaction on the warehouse (nothing a check runs can change it,
    and it is rolled back), or None without a URL; `WarehouseUnreachable` when it does not answer."""
    if not url:
        yield None
        return
    import psycopg2  # noqa: PLC0415
    import sqlalchemy as sa  # noqa: PLC0415

    from aim import db  # noqa: PLC0415

    eng = db.engine(url)
    try:
        try:
            conn = eng.raw_connection()
        except (sa.exc.DBAPIError, psycopg2.Error) as err:
            reason = str(getattr(err, "orig", err)).strip().replace("\n", " ")
            raise WarehouseUnreachable(f"cannot connect to {_safe(url)}: {reason}") from err
        try:
            with conn.driver_connection.cursor() as cur:
                cur.execute("SET TRANSACTION READ ONLY")
                cur.execute("SET LOCAL statement_timeout = '60s'")
                yield cur
        finally:
            conn.driver_connection.rollback()
            conn.close()
    finally:
        eng.dispose()


def _warehouse_url(flag: str | None) -> str | None:
    if flag:
        return flag
    try:
        return settings.warehouse_url()
    except RuntimeError:  # not configured: the checks that need it are skipped, and say so
        return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m aim.check", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="source configuration files (default: all)")
    parser.add_argument("--warehouse", metavar="URL", help="warehouse URL (default: AIM_WAREHOUSE_URL)")
    args = parser.parse_args(argv)
    url = _warehouse_url(args.warehouse)
    try:
        with _warehouse(url) as cur:
            if url:
                print(f"warehouse {_safe(url)}: row queries and loaded sources checked there, read-only")
            return _check(args.files or source_config_paths(settings.sources_dir()), cur)
    except WarehouseUnreachable as err:
        print(f"warehouse: PROBLEM\n  {err}\n  nothing was checked (without --warehouse and AIM_WAREHOUSE_URL, "
              "the files are checked alone)")
        return 1


def _check(paths: list[Path], cur) -> int:
    """Print what each source, its suite and the inventory say; the number of problems found."""
    configured = source_config_paths(settings.sources_dir())
    sources: dict[str, SourceConfig | None] = {p.stem: None for p in configured}
    problems = 0
    for path in paths:
        try:
            config = load_source_config(path)
            sources[config.source] = config
            lines = [*describe(config), *check_suite(config, cur)]
        except (SourceConfigError, ValueError) as err:
            problems += 1
            print(f"{path}: PROBLEM\n  {err}")
            continue
        print(f"{path}: ok")
        for line in lines:
            print(f"  {line}")
    for path in configured:  # the other configured sources, for their data sets' columns
        if sources.get(path.stem) is None:
            try:
                sources[path.stem] = load_source_config(path)
            except SourceConfigError:
                pass  # not a file being checked here: its data sets' columns are not judged
    lines, inventory_problems = check_inventory(sources, cur)
    print(f"{settings.datasets_dir()}: {'PROBLEM' if inventory_problems else 'ok'}")
    for line in lines:
        print(f"  {line}")
    for path, found in inventory_problems.items():
        problems += 1
        print(f"{path}: PROBLEM")
        for problem in found:
            print(f"  {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
