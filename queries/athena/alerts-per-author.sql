-- Alerts per author: negative messages, failed analyses and failed replies.
-- The events the alert rules fire on (ALERT_PATTERNS in chalicelib/alerts.py): a negative
-- message alerts only from a Negative score of ALERT_MIN_NEGATIVE_SCORE (0.6; a test holds
-- the two equal). A failed reply's author comes from its MESSAGE_RECEIVED.
-- Reads only those events' own fields, each as its type (TRY_CAST): an event whose message
-- id or score does not fit is left out and counted in the `(unreadable)` row.
-- Table: magpie_events_json. Dialect: Athena (Trino). Locally DuckDB runs the same text with
-- json_extract_scalar defined as a macro (see local/magpie/reports.py).
WITH events AS (
  SELECT
    "detail-type" AS detail_type,
    json_extract_scalar(detail, '$.MessageId') AS message_id,
    json_extract_scalar(detail, '$.Kind') AS kind,
    json_extract_scalar(detail, '$.Analysis.TextSentiment') AS sentiment,
    TRY_CAST(json_extract_scalar(detail, '$.Analysis.SentimentScore.Negative') AS DOUBLE)
      AS negative_score,
    json_extract(detail, '$.Analysis.SentimentScore.Negative') IS NOT NULL AS has_score
  FROM magpie_events_json
  WHERE ("detail-type" = 'MESSAGE_ANALYSED' AND source = 'magpie.analysis')
    OR ("detail-type" = 'MESSAGE_ANALYSIS_FAILED' AND source = 'magpie.analysis')
    OR ("detail-type" = 'TWEET_FAILED' AND source = 'magpie.egress')
),
alerts AS (
  SELECT
    message_id,
    kind,
    CASE
      WHEN message_id IS NULL OR kind IS NULL OR (has_score AND negative_score IS NULL)
        THEN 'UNREADABLE'
      WHEN detail_type = 'MESSAGE_ANALYSED' THEN 'NEGATIVE_MESSAGE'
      WHEN detail_type = 'MESSAGE_ANALYSIS_FAILED' THEN 'ANALYSIS_FAILED'
      ELSE 'REPLY_FAILED'
    END AS alert
  FROM events
  WHERE detail_type != 'MESSAGE_ANALYSED'
    OR (sentiment = 'NEGATIVE' AND has_score AND coalesce(negative_score >= 0.6, true))
    OR message_id IS NULL OR kind IS NULL
),
authors AS (
  SELECT
    json_extract_scalar(detail, '$.MessageId') AS message_id,
    json_extract_scalar(detail, '$.Kind') AS kind,
    max(json_extract_scalar(detail, '$.Author')) AS author
  FROM magpie_events_json
  WHERE "detail-type" = 'MESSAGE_RECEIVED' AND source = 'magpie.ingress'
  GROUP BY 1, 2
)
SELECT
  CASE WHEN alerts.alert = 'UNREADABLE' THEN '(unreadable)'
       ELSE coalesce(authors.author, '(unknown)') END AS author,
  count(*) AS alerts,
  count_if(alerts.alert = 'NEGATIVE_MESSAGE') AS negative_messages,
  count_if(alerts.alert = 'ANALYSIS_FAILED') AS analysis_failed,
  count_if(alerts.alert = 'REPLY_FAILED') AS reply_failed
FROM alerts
LEFT JOIN authors
  ON authors.message_id = alerts.message_id AND authors.kind = alerts.kind
GROUP BY 1
ORDER BY alerts DESC, author
