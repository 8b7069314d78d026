"""Where each bus event lands in the data lake: Magpie's own events, or X's raw items.

Ingress keeps every item of a delivery as a raw TWITTER_* event whose detail is the item as
X sent it, so whoever signs a delivery chooses its keys. A typed table over those records
can be made unreadable by one item whose key clashes with a Magpie field (a PascalCase
`StatusCode` holding "abc"): Athena's JSON SerDe and DuckDB both fail the whole query on a
value that does not cast. So the raw items are written under their own prefix, `x-raw/`,
with a table of their own that keeps each detail as JSON text, and Magpie's own events
(built from typed models, their keys ours) keep the lake's root, where the typed tables
read. The two patterns are exact complements on `detail-type`: every event lands once.

The AWS stack (infra/magpie_stack/lake.py: one Firehose stream and rule per route) and the
local runtime (magpie/runtime.py: one lake target per route) both read these.
"""

from __future__ import annotations

from typing import Any

from chalicelib.events import TWITTER_DETAIL_TYPES

# The raw items' folder under the lake root (an S3 prefix on AWS, a directory locally).
RAW_X_PREFIX = "x-raw/"

RAW_X_PATTERN: dict[str, Any] = {"detail-type": list(TWITTER_DETAIL_TYPES)}
MAGPIE_EVENTS_PATTERN: dict[str, Any] = {
    "detail-type": [{"anything-but": list(TWITTER_DETAIL_TYPES)}]
}
