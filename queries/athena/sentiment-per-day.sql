-- Sentiment per day: analysed messages per UTC day (of analysis), by overall sentiment.
-- Table: magpie_events. Dialect: Athena (Trino). Locally DuckDB runs the same text with
-- from_iso8601_timestamp defined as a macro (see local/magpie/reports.py).
SELECT
  CAST(from_iso8601_timestamp(time) AS DATE) AS day,
  count(*) AS messages,
  count_if(detail.analysis.textsentiment = 'POSITIVE') AS positive,
  count_if(detail.analysis.textsentiment = 'NEGATIVE') AS negative,
  count_if(detail.analysis.textsentiment = 'NEUTRAL') AS neutral,
  count_if(detail.analysis.textsentiment = 'MIXED') AS mixed,
  count_if(detail.analysis.textsentiment IS NULL) AS unknown
FROM magpie_events
WHERE "detail-type" = 'MESSAGE_ANALYSED'
GROUP BY 1
ORDER BY 1
