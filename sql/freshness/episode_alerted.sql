-- Whether IT operations was already alerted that %(source)s is stale in its current stale episode:
-- some check after its last check that was not stale delivered the alert to at least one channel.
-- (Checks are ordered by check_id: the clock may give several checks the same checked_at.)
SELECT EXISTS (
    SELECT FROM ops.freshness_check c
    WHERE c.source = %(source)s
      AND cardinality(c.alert_channels) > 0
      AND c.check_id > coalesce((SELECT max(n.check_id) FROM ops.freshness_check n
                                 WHERE n.source = %(source)s AND n.status <> 'stale'), 0)
) AS alerted;
