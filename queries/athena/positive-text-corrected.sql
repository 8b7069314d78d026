-- Select all Positive Text, corrected: every positive message once, with or without images.
-- The reference's version cross-joined the images, which dropped text-only messages.
-- Table: "analysed-messages-table". Dialect: Athena (Trino); runs as is in DuckDB locally.
SELECT time, detail.author, detail.analysis.textsentiment, detail.text
FROM "analysed-messages-table"
WHERE "detail-type" = 'MESSAGE_ANALYSED' AND detail.analysis.textsentiment='POSITIVE'
ORDER BY time DESC
