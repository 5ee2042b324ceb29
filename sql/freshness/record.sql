-- Record one freshness check of one source (aim.freshness.check_freshness); its id.
INSERT INTO ops.freshness_check (checked_at, run_id, source, data_as_of, as_of_basis, age_days, max_age_days,
                                 last_success_at, status, message, alert_channels)
VALUES (%(checked_at)s, %(run_id)s, %(source)s, %(data_as_of)s, %(as_of_basis)s, %(age_days)s, %(max_age_days)s,
        %(last_success_at)s, %(status)s, %(message)s, %(alert_channels)s)
RETURNING check_id;
