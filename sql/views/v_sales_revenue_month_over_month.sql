-- Sales: revenue by product (plan and dimension) this month versus last month. "This month" is the latest month in the table (the report clock's month, month to date).
WITH latest AS (
  SELECT max(month) AS this_month FROM sales_revenue_by_product_monthly
),
products AS (
  SELECT DISTINCT r.plan_id, r.dimension, r.currency
  FROM sales_revenue_by_product_monthly r CROSS JOIN latest l
  WHERE r.month IN (l.this_month, add_months(l.this_month, -1))
)
SELECT
  l.this_month AS month,
  p.plan_id,
  p.dimension,
  p.currency,
  coalesce(cur.gross_revenue, 0) AS gross_revenue,
  coalesce(prev.gross_revenue, 0) AS previous_gross_revenue,
  coalesce(cur.gross_revenue, 0) - coalesce(prev.gross_revenue, 0) AS gross_revenue_change,
  round(try_divide(coalesce(cur.gross_revenue, 0) - prev.gross_revenue, prev.gross_revenue) * 100, 2) AS growth_percent,
  coalesce(cur.net_revenue, 0) AS net_revenue,
  coalesce(prev.net_revenue, 0) AS previous_net_revenue,
  coalesce(cur.overage_quantity, 0) AS overage_quantity,
  coalesce(prev.overage_quantity, 0) AS previous_overage_quantity
FROM products p
CROSS JOIN latest l
LEFT JOIN sales_revenue_by_product_monthly cur
  ON cur.month = l.this_month AND cur.plan_id = p.plan_id AND cur.dimension = p.dimension
LEFT JOIN sales_revenue_by_product_monthly prev
  ON prev.month = add_months(l.this_month, -1) AND prev.plan_id = p.plan_id AND prev.dimension = p.dimension
