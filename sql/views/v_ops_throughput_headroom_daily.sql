-- Operations: per day, the busiest minute and second against the Event Hubs capacity, and the headroom left (negative: throttling was likely).
SELECT
  CAST(period_start AS DATE) AS day,
  events,
  peak_minute_events,
  peak_events_per_second,
  peak_second_events,
  capacity_events_per_second,
  headroom_percent,
  second_headroom_percent
FROM ops_throughput
WHERE grain = 'day'
