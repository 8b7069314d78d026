-- Most frequent image labels: how many analysed images carried each label.
-- Locally, labels come only from what the local detectors see (Person, Text, ...).
-- Table: magpie_events. Dialect: Athena (Trino); runs as is in DuckDB locally.
SELECT
  labels.name AS label,
  count(*) AS images,
  round(avg(labels.confidence), 1) AS avg_confidence
FROM magpie_events
CROSS JOIN UNNEST(detail.analysis.images) AS t(images)
CROSS JOIN UNNEST(images.analysis.labels) AS t(labels)
WHERE "detail-type" = 'MESSAGE_ANALYSED'
GROUP BY labels.name
ORDER BY images DESC, label
LIMIT 50
