-- Select all Positive Text: the reference's third query, unchanged and WRONG (see below).
-- Its CROSS JOIN UNNEST(images) keeps only messages with at least one image (dropping
-- every text-only message) and repeats a message once per image. Kept for comparison;
-- use positive-text-corrected.
-- Table: "analysed-messages-table". Dialect: Athena (Trino); runs as is in DuckDB locally.
SELECT time, detail.author, detail.analysis.textsentiment, detail.text
FROM "analysed-messages-table"
CROSS JOIN UNNEST(detail.analysis.images) as t(images)
WHERE "detail-type" = 'MESSAGE_ANALYSED' AND detail.analysis.textsentiment='POSITIVE'
ORDER BY time DESC
