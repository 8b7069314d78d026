-- X spend per day: what X bills for the messages answered each UTC day (their deliveries and replies), priced when sent.
-- XCostUsd is TWEET_SENT's price from chalicelib/x_prices.json; dry-run replies (the local outbox) cost nothing
-- and are shown apart. budget_skipped counts replies the daily X budget (X_DAILY_BUDGET_USD) stopped.
-- Table: magpie_events_json. Dialect: Athena (Trino). Locally DuckDB runs the same text with
-- from_iso8601_timestamp and json_extract_scalar defined as macros (see local/magpie/reports.py).
WITH outcomes AS (
  SELECT
    CAST(from_iso8601_timestamp(time) AS DATE) AS day,
    "detail-type" AS outcome,
    coalesce(json_extract_scalar(detail, '$.DryRun') = 'true', false) AS dry_run,
    coalesce(TRY_CAST(json_extract_scalar(detail, '$.XCostUsd') AS DOUBLE), 0) AS usd,
    json_extract_scalar(detail, '$.Reason') AS reason
  FROM magpie_events_json
  WHERE source = 'magpie.egress' AND "detail-type" IN ('TWEET_SENT', 'REPLY_SKIPPED')
)
SELECT
  day,
  count_if(outcome = 'TWEET_SENT' AND NOT dry_run) AS replies,
  round(sum(CASE WHEN outcome = 'TWEET_SENT' AND NOT dry_run THEN usd ELSE 0 END), 3) AS x_spend_usd,
  count_if(outcome = 'TWEET_SENT' AND dry_run) AS dry_run_replies,
  round(sum(CASE WHEN outcome = 'TWEET_SENT' AND dry_run THEN usd ELSE 0 END), 3) AS dry_run_usd,
  count_if(outcome = 'REPLY_SKIPPED' AND reason = 'budget') AS budget_skipped
FROM outcomes
GROUP BY 1
ORDER BY 1
