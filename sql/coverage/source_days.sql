-- Coverage of one source, day by day, from its first day with data through today (Milwaukee).
-- Filled in by aim.measures.coverage: {table} is the source's core table, {day} the local date
-- (for a monthly source: the first day of the month) that places a row, from the source's
-- `coverage.date_column`. Parameters: cadence ('daily' or 'monthly'), quiet_days, lag_days.
--
-- covered: the source delivered rows placed on the day (monthly: on the day's month), or the day
--          lies in a gap of at most quiet_days days between days with rows. Rows dated after
--          today cover nothing.
-- settled: covered, and the run of covered days it belongs to goes on for lag_days days after
--          it: the source kept delivering while the day's late records could still arrive.
CREATE TEMP TABLE coverage_days ON COMMIT DROP AS
WITH today AS (
    SELECT ops.local_now()::date AS today
), row_days AS (
    SELECT {day} AS day, count(*) AS source_rows
    FROM {table}, today
    WHERE {day} <= today.today
    GROUP BY 1
), calendar AS (
    SELECT d::date AS day
    FROM (SELECT min(day) AS first_day FROM row_days) first, today,
         generate_series(first.first_day, today.today, interval '1 day') AS d
), marked AS (
    SELECT c.day,
           coalesce(r.source_rows, 0) AS source_rows,
           CASE WHEN %(cadence)s = 'monthly'
                THEN EXISTS (SELECT FROM row_days m WHERE m.day = date_trunc('month', c.day)::date)
                ELSE r.day IS NOT NULL END AS has_rows
    FROM calendar c
    LEFT JOIN row_days r ON r.day = c.day
), gaps AS (
    SELECT day, source_rows, has_rows,
           max(day) FILTER (WHERE has_rows) OVER (ORDER BY day) AS previous_with_rows,
           min(day) FILTER (WHERE has_rows) OVER (ORDER BY day ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)
               AS next_with_rows
    FROM marked
), covered AS (
    SELECT day, source_rows,
           has_rows OR coalesce(next_with_rows - previous_with_rows - 1 <= %(quiet_days)s, false) AS covered
    FROM gaps
), runs AS (
    SELECT day, source_rows, covered,
           day - (row_number() OVER (PARTITION BY covered ORDER BY day))::int AS run
    FROM covered
)
SELECT day, source_rows, covered,
       covered AND max(day) OVER (PARTITION BY covered, run) - day >= %(lag_days)s AS settled
FROM runs;
