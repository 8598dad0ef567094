-- Sales and customer success: usage per product and event property value over the last 30 days of data (top values per key, the rest as '(other)', events without the key as '(none)').
WITH latest AS (SELECT max(day) AS last_day FROM usage_by_property),
window_usage AS (
  SELECT u.plan_id, u.meter_name, u.dimension, u.property_key, u.property_value,
         sum(u.events) AS events, sum(u.quantity) AS quantity
  FROM usage_by_property u CROSS JOIN latest l
  WHERE u.day > date_sub(l.last_day, 30)
  GROUP BY u.plan_id, u.meter_name, u.dimension, u.property_key, u.property_value
)
SELECT
  plan_id, meter_name, dimension, property_key, property_value, events, quantity,
  round(try_divide(quantity, sum(quantity) OVER (PARTITION BY plan_id, meter_name, dimension, property_key)), 6)
    AS share_of_product_quantity
FROM window_usage
