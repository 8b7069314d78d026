-- Alerts per author: negative messages, failed analyses and failed replies.
-- The events the alert rules fire on (ALERT_PATTERNS in chalicelib/alerts.py): a negative
-- message alerts only from a Negative score of ALERT_MIN_NEGATIVE_SCORE (0.6; a test holds
-- the two equal). A failed reply's author comes from its MESSAGE_RECEIVED.
-- Table: magpie_events. Dialect: Athena (Trino); runs as is in DuckDB locally.
WITH alerts AS (
  SELECT detail.messageid AS message_id, detail.kind AS kind, 'NEGATIVE_MESSAGE' AS alert
  FROM magpie_events
  WHERE "detail-type" = 'MESSAGE_ANALYSED' AND source = 'magpie.analysis'
    AND detail.analysis.textsentiment = 'NEGATIVE'
    AND detail.analysis.sentimentscore.negative >= 0.6
  UNION ALL
  SELECT detail.messageid, detail.kind, 'ANALYSIS_FAILED'
  FROM magpie_events
  WHERE "detail-type" = 'MESSAGE_ANALYSIS_FAILED' AND source = 'magpie.analysis'
  UNION ALL
  SELECT detail.messageid, detail.kind, 'REPLY_FAILED'
  FROM magpie_events
  WHERE "detail-type" = 'TWEET_FAILED' AND source = 'magpie.egress'
),
authors AS (
  SELECT detail.messageid AS message_id, detail.kind AS kind, max(detail.author) AS author
  FROM magpie_events
  WHERE "detail-type" = 'MESSAGE_RECEIVED'
  GROUP BY detail.messageid, detail.kind
)
SELECT
  coalesce(authors.author, '(unknown)') AS author,
  count(*) AS alerts,
  count_if(alerts.alert = 'NEGATIVE_MESSAGE') AS negative_messages,
  count_if(alerts.alert = 'ANALYSIS_FAILED') AS analysis_failed,
  count_if(alerts.alert = 'REPLY_FAILED') AS reply_failed
FROM alerts
LEFT JOIN authors
  ON authors.message_id = alerts.message_id AND authors.kind = alerts.kind
GROUP BY 1
ORDER BY alerts DESC, author
