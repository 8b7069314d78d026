-- Sentiment per day: analysed messages per UTC day (of analysis), by overall sentiment.
-- Reads only MESSAGE_ANALYSED from magpie.analysis, its TextSentiment as a string: any other
-- value (or a detail that is not an object) is counted in `unreadable`, never an error.
-- Table: magpie_events_json. Dialect: Athena (Trino). Locally DuckDB runs the same text with
-- from_iso8601_timestamp and json_extract_scalar defined as macros (see local/magpie/reports.py).
WITH analysed AS (
  SELECT
    CAST(from_iso8601_timestamp(time) AS DATE) AS day,
    json_extract_scalar(detail, '$.Analysis.TextSentiment') AS sentiment,
    json_extract(detail, '$.Analysis.TextSentiment') IS NOT NULL AS has_sentiment
  FROM magpie_events_json
  WHERE "detail-type" = 'MESSAGE_ANALYSED' AND source = 'magpie.analysis'
)
SELECT
  day,
  count(*) AS messages,
  count_if(sentiment = 'POSITIVE') AS positive,
  count_if(sentiment = 'NEGATIVE') AS negative,
  count_if(sentiment = 'NEUTRAL') AS neutral,
  count_if(sentiment = 'MIXED') AS mixed,
  count_if(NOT has_sentiment) AS unknown,
  count_if(has_sentiment AND coalesce(sentiment NOT IN ('POSITIVE', 'NEGATIVE', 'NEUTRAL', 'MIXED'), true)) AS unreadable
FROM analysed
GROUP BY 1
ORDER BY 1
