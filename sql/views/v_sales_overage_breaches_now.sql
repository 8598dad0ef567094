-- Sales and customer success: overage thresholds breached in the current period (day, month or billing cycle containing the report clock) (sort by consecutive_periods).
SELECT
  threshold_kind, plan_id, dimension, meter_name, subscription_key,
  period_start, period_end, value, threshold,
  round(value - threshold, 6) AS over_threshold_by,
  breach_since, consecutive_periods
FROM overage_alerts
WHERE is_current
