-- Select all Celebrities: the reference's first Athena query, text unchanged.
-- Table: "analysed-messages-table". Dialect: Athena (Trino); runs as is in DuckDB locally.
SELECT time, detail.author, celebrityfaces.name
FROM "analysed-messages-table"
CROSS JOIN UNNEST(detail.analysis.images) as t(images)
CROSS JOIN UNNEST(images.analysis.celebrityfaces) as t(celebrityfaces)
WHERE "detail-type" = 'MESSAGE_ANALYSED'
ORDER BY time DESC
