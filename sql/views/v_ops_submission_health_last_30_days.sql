-- Operations: health of submissions to the Marketplace Metering API over the last 30 days of usage hours, per status (Accepted, Duplicate, Expired, rejected statuses, Pending).
WITH latest AS (SELECT max(day) AS last_day FROM ops_submission_health_daily),
recent AS (
  SELECT h.status, sum(h.submissions) AS submissions, sum(h.usage_hours) AS usage_hours,
         sum(h.quantity) AS quantity, sum(h.value) AS value, max(h.currency) AS currency
  FROM ops_submission_health_daily h CROSS JOIN latest l
  WHERE h.day > date_sub(l.last_day, 30)
  GROUP BY h.status
)
SELECT
  status, submissions, usage_hours, quantity, value, currency,
  round(try_divide(usage_hours, sum(usage_hours) OVER ()) * 100, 2) AS share_of_usage_hours_percent
FROM recent
