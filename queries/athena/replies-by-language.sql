-- Replies by language: for each language messages were written in, how many replies went
-- out in which language, and whether that was the writer's own (docs/LANGUAGES.md).
-- A message's language is its MESSAGE_ANALYSED's (X's `lang` when X gave one, else the
-- analysis's detection), cut to its primary subtag ("pt-BR" -> "pt"); none is `und`. A
-- reply's is SEND_TWEET's `Language`; a reply from before replies carried one is
-- `(unknown)`. Each message counts once, however often its events were delivered.
-- Table: magpie_events_json. Dialect: Athena (Trino). Locally DuckDB runs the same text with
-- json_extract_scalar defined as a macro (see local/magpie/reports.py).
WITH replies AS (
  SELECT
    json_extract_scalar(detail, '$.MessageId') AS message_id,
    json_extract_scalar(detail, '$.Kind') AS kind,
    max(json_extract_scalar(detail, '$.Language')) AS reply_language
  FROM magpie_events_json
  WHERE "detail-type" = 'SEND_TWEET' AND source = 'magpie.responders'
  GROUP BY 1, 2
),
messages AS (
  SELECT
    json_extract_scalar(detail, '$.MessageId') AS message_id,
    json_extract_scalar(detail, '$.Kind') AS kind,
    max(lower(split_part(coalesce(
      json_extract_scalar(detail, '$.Analysis.Language'),
      json_extract_scalar(detail, '$.Language')
    ), '-', 1))) AS message_language
  FROM magpie_events_json
  WHERE "detail-type" = 'MESSAGE_ANALYSED' AND source = 'magpie.analysis'
  GROUP BY 1, 2
)
SELECT
  coalesce(nullif(messages.message_language, ''), 'und') AS message_language,
  coalesce(replies.reply_language, '(unknown)') AS reply_language,
  count(*) AS replies,
  coalesce(messages.message_language = replies.reply_language, false) AS in_own_language
FROM replies
LEFT JOIN messages
  ON messages.message_id = replies.message_id AND messages.kind = replies.kind
WHERE replies.message_id IS NOT NULL
GROUP BY 1, 2, 4
ORDER BY replies DESC, message_language, reply_language
