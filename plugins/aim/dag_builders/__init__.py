"""Every DAG the platform runs is built here, on the shared defaults of `aim.dag_builders.defaults`.

| module      | DAGs                                                                              |
| ----------- | --------------------------------------------------------------------------------- |
| `ingest`    | `ingest_<source>`, one per source file in `dags/sources/`                        |
| `measures`  | `aim_measures`, on the core assets of the sources the measures read               |
| `publish`   | `publish_open_data`, publication's one owner: on its inputs' assets, and daily    |
| `review`    | `quarantine_review`, triggered by hand to release or discard a quarantined batch  |
| `freshness` | `watch_freshness`, hourly: each source against its freshness promise              |

The files in `dags/` only call these builders. Nothing here opens a connection while a DAG file is
parsed.
"""
