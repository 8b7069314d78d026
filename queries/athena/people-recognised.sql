-- People recognised: sightings, messages and last seen per known person.
-- A known person is a Rekognition celebrity, or a match in the local known-faces gallery.
-- Reads only MESSAGE_ANALYSED from magpie.analysis; a face whose Name is not a string or
-- whose MatchConfidence is not a number is counted in the `(unreadable)` row.
-- Table: magpie_events_json. Dialect: Athena (Trino). Locally DuckDB runs the same text with
-- json_extract_scalar defined as a macro and ARRAY(JSON) spelt JSON[] (see local/magpie/reports.py).
WITH faces AS (
  SELECT
    time,
    json_extract_scalar(detail, '$.MessageId') AS message_id,
    json_extract_scalar(face, '$.Name') AS name,
    TRY_CAST(json_extract_scalar(face, '$.MatchConfidence') AS DOUBLE) AS confidence
  FROM magpie_events_json
  CROSS JOIN UNNEST(TRY_CAST(json_extract(detail, '$.Analysis.Images') AS ARRAY(JSON))) AS t(image)
  CROSS JOIN UNNEST(
    TRY_CAST(json_extract(image, '$.Analysis.CelebrityFaces') AS ARRAY(JSON))
  ) AS f(face)
  WHERE "detail-type" = 'MESSAGE_ANALYSED' AND source = 'magpie.analysis'
)
SELECT
  CASE WHEN name IS NULL OR confidence IS NULL THEN '(unreadable)' ELSE name END AS person,
  count(*) AS sightings,
  count(DISTINCT message_id) AS messages,
  round(avg(confidence), 1) AS avg_match_confidence,
  max(time) AS last_seen
FROM faces
GROUP BY 1
ORDER BY sightings DESC, person
