-- Operations: events per day and message type over all partitions, with how many were quarantined.
SELECT
  day,
  message_type,
  sum(events) AS events,
  sum(quarantined_events) AS quarantined_events,
  count(DISTINCT partition_id) AS partitions
FROM ops_event_totals_daily
GROUP BY day, message_type
