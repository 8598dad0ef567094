-- Customer success: subscriptions whose included quantity runs out (or already ran out) in the current billing cycle at their run-rate (sort by run_out_date).
SELECT
  subscription_key, plan_id, renewal_interval, meter_name, dimension,
  cycle_start, cycle_end, included_quantity, used_quantity, remaining_quantity,
  round(try_divide(used_quantity, included_quantity) * 100, 2) AS used_percent,
  projected_usage, projected_overage, run_out_date, overage_quantity, days_left, as_of
FROM cs_current_cycle
WHERE NOT included_infinite
  AND (run_out_date IS NOT NULL OR overage_quantity > 0)
