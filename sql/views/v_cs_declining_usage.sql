-- Customer success: active subscriptions whose usage events in the last 4 weeks fell against the 4 weeks before (a churn warning sign) (sort by usage_trend_percent).
SELECT
  subscription_key, plan_id, renewal_interval, offer_type, tenure_days, next_renewal_date, last_activity,
  usage_events_last_4_weeks, usage_events_prior_4_weeks, usage_trend_percent, as_of
FROM cs_subscription_summary
WHERE status = 'active'
  AND usage_trend_percent < 0
