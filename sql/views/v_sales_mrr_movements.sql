-- Sales: MRR and its movements (new, expansion, contraction, churn) per month, all plans together.
SELECT
  month,
  currency,
  sum(active_subscriptions) AS active_subscriptions,
  sum(mrr) AS mrr,
  sum(arr) AS arr,
  sum(new_mrr) AS new_mrr,
  sum(expansion_mrr) AS expansion_mrr,
  sum(contraction_mrr) AS contraction_mrr,
  sum(churned_mrr) AS churned_mrr,
  sum(net_new_mrr) AS net_new_mrr,
  sum(new_subscriptions) AS new_subscriptions,
  sum(churned_subscriptions) AS churned_subscriptions
FROM sales_mrr
GROUP BY month, currency
