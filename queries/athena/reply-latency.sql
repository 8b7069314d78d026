-- Reply latency (received to sent) in seconds: mean, p95 and max, and the author's wait.
-- Joined on MessageId (and Kind):
--   *_seconds:             Magpie's own, MESSAGE_RECEIVED envelope time -> TWEET_SENT time
--   *_since_post_seconds:  the author's wait, the post's ReceivedAt (X's created_at;
--                          the envelope time when absent) -> TWEET_SENT time, over the posts
--                          that reached Magpie within a day of being written
--   delivered_late:        replies to posts that reached Magpie over a day after they were
--                          written (a backlog X redelivered, or old samples): counted here
--                          and kept out of the author's wait, where they would swamp it
-- TWEET_SENT time is its SentAt, else its envelope time.
-- Envelope times are whole seconds, so most replies differ from their message by 0 or 1 s:
-- a median of such differences says 0 s. The mean of differences of times cut to the second
-- is not biased by the cut, so the typical latency is the mean; p95 and max show the tail.
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
    CASE
      WHEN date_diff('millisecond', received.posted_at, received.received_at) <= 86400000
      THEN date_diff('millisecond', received.posted_at, sent.sent_at)
    END AS since_post_ms
  FROM received
  JOIN sent ON sent.message_id = received.message_id AND sent.kind = received.kind
)
SELECT
  count(*) AS replies,
  round(avg(magpie_ms) / 1000.0, 3) AS mean_seconds,
  approx_percentile(magpie_ms, 0.95) / 1000.0 AS p95_seconds,
  max(magpie_ms) / 1000.0 AS max_seconds,
  round(avg(since_post_ms) / 1000.0, 3) AS mean_since_post_seconds,
  approx_percentile(since_post_ms, 0.95) / 1000.0 AS p95_since_post_seconds,
  count_if(since_post_ms IS NULL) AS delivered_late
FROM latency
