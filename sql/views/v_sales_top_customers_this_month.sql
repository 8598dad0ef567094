-- Sales: the top customers of the latest month, by MRR (ranking = 'revenue') and by usage of each meter (ranking = 'usage').
SELECT month, ranking, meter_name, rank, subscription_key, plan_id, value
FROM sales_top_customers
WHERE month = (SELECT max(month) FROM sales_top_customers)
