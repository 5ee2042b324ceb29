-- Completeness of a measure's periods: for each row of measure_period (periods of one type,
-- %(period_type)s), from the coverage of the sources the measure reads (%(sources)s).
-- complete: every source is complete for the period; no data: some source has nothing for it (or
-- no coverage at all); provisional otherwise. Days covered and settled are the least of the sources'.
CREATE TEMP TABLE measure_completeness ON COMMIT DROP AS
SELECT p.period_id,
       mp.period_start,
       mp.period_end,
       CASE WHEN count(spc.source) < cardinality(%(sources)s::text[]) OR bool_or(spc.completeness = 'no data')
                 THEN 'no data'
            WHEN bool_and(spc.completeness = 'complete') THEN 'complete'
            ELSE 'provisional' END              AS completeness,
       (mp.period_end - mp.period_start + 1)    AS days_in_period,
       coalesce(min(spc.days_covered), 0)       AS days_covered,
       coalesce(min(spc.days_settled), 0)       AS days_settled
FROM measure_period mp
JOIN core.aim_period p ON p.period_type = %(period_type)s AND p.period_start = mp.period_start
LEFT JOIN core.source_period_coverage spc
       ON spc.period_id = p.period_id AND spc.source = ANY(%(sources)s::text[])
GROUP BY p.period_id, mp.period_start, mp.period_end;
