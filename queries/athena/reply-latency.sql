-- Reply latency (received to sent), p50 and p95 in seconds.
-- Joined on MessageId (and Kind):
--   *_seconds:             Magpie's own, MESSAGE_RECEIVED envelope time -> TWEET_SENT time
--   *_since_post_seconds:  the author's wait, the post's ReceivedAt (X's created_at;
--                          the envelope time when absent) -> TWEET_SENT time
-- TWEET_SENT time is its SentAt, else its envelope time.
-- Table: magpie_events. Dialect: Athena (Trino), where approx_percentile is approximate.
-- Locally DuckDB runs the same text with from_iso8601_timestamp and approx_percentile
-- defined as macros (exact quantile_disc; see local/magpie/reports.py).
WITH received AS (
  SELECT
    detail.messageid AS message_id,
    detail.kind AS kind,
    min(from_iso8601_timestamp(time)) AS received_at,
    min(from_iso8601_timestamp(coalesce(detail.receivedat, time))) AS posted_at
  FROM magpie_events
  WHERE "detail-type" = 'MESSAGE_RECEIVED'
  GROUP BY detail.messageid, detail.kind
),
sent AS (
  SELECT
    detail.messageid AS message_id,
    detail.kind AS kind,
    min(from_iso8601_timestamp(coalesce(detail.sentat, time))) AS sent_at
  FROM magpie_events
  WHERE "detail-type" = 'TWEET_SENT'
  GROUP BY detail.messageid, detail.kind
),
latency AS (
  SELECT
    date_diff('millisecond', received.received_at, sent.sent_at) AS magpie_ms,
    date_diff('millisecond', received.posted_at, sent.sent_at) AS since_post_ms
  FROM received
  JOIN sent ON sent.message_id = received.message_id AND sent.kind = received.kind
)
SELECT
  count(*) AS replies,
  approx_percentile(magpie_ms, 0.5) / 1000.0 AS p50_seconds,
  approx_percentile(magpie_ms, 0.95) / 1000.0 AS p95_seconds,
  approx_percentile(since_post_ms, 0.5) / 1000.0 AS p50_since_post_seconds,
  approx_percentile(since_post_ms, 0.95) / 1000.0 AS p95_since_post_seconds
FROM latency
