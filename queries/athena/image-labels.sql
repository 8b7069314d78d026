-- Select all Image Labels: the reference's second Athena query, text unchanged.
-- Table: "analysed-messages-table". Dialect: Athena (Trino); runs as is in DuckDB locally.
SELECT time, detail.author, detail.text, labels.name
FROM "analysed-messages-table"
CROSS JOIN UNNEST(detail.analysis.images) as t(images)
CROSS JOIN UNNEST(images.analysis.labels) as t(labels)
WHERE "detail-type" = 'MESSAGE_ANALYSED'
ORDER BY time DESC
