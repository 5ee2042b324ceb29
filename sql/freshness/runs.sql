-- Per source of %(sources)s, from the run log (ops.run_log): when its last successful ingest run
-- ended (last_success_at), when its last successful run that loaded rows into core ended
-- (last_load_at: a source without coverage is as of that day), and its latest run (the DAG and run
-- an alert points to).
SELECT source,
       max(ended_at) FILTER (WHERE status = 'success')                         AS last_success_at,
       max(ended_at) FILTER (WHERE status = 'success' AND rows_loaded > 0)     AS last_load_at,
       (array_agg(dag_id ORDER BY started_at DESC, run_id DESC))[1]            AS last_dag_id,
       (array_agg(run_id ORDER BY started_at DESC, run_id DESC))[1]            AS last_run_id
FROM ops.run_log
WHERE source = ANY(%(sources)s::text[])
GROUP BY source;
