-- People recognised: sightings, messages and last seen per known person.
-- A known person is a Rekognition celebrity, or a match in the local known-faces gallery.
-- Table: magpie_events. Dialect: Athena (Trino); runs as is in DuckDB locally.
SELECT
  celebrityfaces.name AS person,
  count(*) AS sightings,
  count(DISTINCT detail.messageid) AS messages,
  round(avg(celebrityfaces.matchconfidence), 1) AS avg_match_confidence,
  max(time) AS last_seen
FROM magpie_events
CROSS JOIN UNNEST(detail.analysis.images) AS t(images)
CROSS JOIN UNNEST(images.analysis.celebrityfaces) AS t(celebrityfaces)
WHERE "detail-type" = 'MESSAGE_ANALYSED'
GROUP BY celebrityfaces.name
ORDER BY sightings DESC, person
