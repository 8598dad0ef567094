-- Customer success: one subscription's daily consumption per meter, with what its current cycle includes (filter on subscription_key).
SELECT
  d.day, d.subscription_key, d.plan_id, d.meter_name, d.dimension, d.events, d.quantity,
  c.cycle_start AS current_cycle_start, c.included_quantity AS current_cycle_included_quantity
FROM cs_consumption_daily d
LEFT JOIN cs_current_cycle c
  ON c.subscription_key = d.subscription_key AND c.meter_name = d.meter_name
