-- Operations: how far behind each Event Hubs partition's data is (sort by lag_minutes).
SELECT event_hub, partition_id, events, latest_enqueued_time, latest_sequence_number, last_ingested_at, as_of, lag_minutes
FROM ops_data_freshness
