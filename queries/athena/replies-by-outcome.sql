-- Replies sent, skipped and failed, with their reasons.
-- SENT_DRY_RUN is a reply written to the local outbox instead of posted.
-- Table: magpie_events. Dialect: Athena (Trino); runs as is in DuckDB locally.
SELECT outcome, reason, count(*) AS replies
FROM (
  SELECT CASE WHEN detail.dryrun THEN 'SENT_DRY_RUN' ELSE 'SENT' END AS outcome,
         CAST(NULL AS VARCHAR) AS reason
  FROM magpie_events
  WHERE "detail-type" = 'TWEET_SENT'
  UNION ALL
  SELECT 'SKIPPED', detail.reason
  FROM magpie_events
  WHERE "detail-type" = 'REPLY_SKIPPED'
  UNION ALL
  SELECT 'FAILED', detail.reason
  FROM magpie_events
  WHERE "detail-type" = 'TWEET_FAILED'
) AS outcomes
GROUP BY outcome, reason
ORDER BY outcome, replies DESC, reason
