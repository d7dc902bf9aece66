"""Every bound crongraph puts on a request, with the reason for each, in one place.

Requests are checked against these before anything is written (pydantic constraints in schemas.py, the JSON
depth check in serde.py, time zones and schedules in schedules/expression.py), so that a refused request changes
nothing and nothing a client can store breaks a later read.

The nesting limit lives in serde.py beside the serializer it protects (parsing and serializing share it); the
rest are here.
"""

from __future__ import annotations

from crongraph import serde
from crongraph.schedules import expression

# ---- JSON nesting ----------------------------------------------------------------------------------------
# One limit for parsing and serializing, defined beside the serializer (serde.py): a body may nest
# MAX_JSON_DEPTH levels and every read route's envelope fits in the rest of orjson's SERIALIZE_DEPTH.
MAX_JSON_DEPTH = serde.MAX_REQUEST_DEPTH
SERIALIZE_DEPTH = serde.SERIALIZE_DEPTH

# ---- integers ------------------------------------------------------------------------------------------------
# Offsets reach SQL as 64-bit integers; 2**53 also stays exact in JavaScript clients.
MAX_OFFSET = 2**53
# Pages are read into memory whole.
MAX_LIMIT = 1000
# LangGraph's recursion limit and other counters: a 32-bit range is more than any run takes, and every value
# must stay within 64 bits or the answer (and the stored run) could not be serialized.
MAX_COUNTER = 2**31 - 1
# Nesting of store namespaces: LangGraph's store slices tuples with it.
MAX_NAMESPACE_LABELS = 64

# ---- strings ---------------------------------------------------------------------------------------------------
# Schedules and time zones: defined beside the parser that enforces them (schedules/expression.py, which stays
# pure): a schedule is at most 1 KiB (parsing is linear and runs on the event loop: 4 MB took 2.7 s; no number in
# 1 KiB reaches Python's 4,300-digit int limit); a zone name at most 64 characters and an IANA database name.
MAX_SCHEDULE_CHARS = expression.MAX_SCHEDULE_CHARS
MAX_TIMEZONE_CHARS = expression.MAX_TIMEZONE_CHARS
# Ids in bodies (assistant ids are a UUID or a graph name, thread ids a UUID), graph ids, node names.
MAX_ID_CHARS = 256
# Store keys and namespace labels are SQL text keys in LangGraph's store.
MAX_KEY_CHARS = 1024
MAX_LABEL_CHARS = 256
# Metadata keys become JSON paths in filters and column names in dashboards.
MAX_METADATA_KEY_CHARS = 256
# Assistant names and short texts; descriptions are free text.
MAX_NAME_CHARS = 1024
MAX_TEXT_CHARS = 64 * 1024
# Webhook URLs (the reference allows long signed URLs).
MAX_URL_CHARS = 65536
# Items of lists a request may give (ids to prune, tags, select fields, interrupt nodes).
MAX_LIST_ITEMS = 10_000

# ---- dates ---------------------------------------------------------------------------------------------------
# Dates are stored in UTC; an offset may not push one out of Python's year 1..9999 (see schemas.utc_datetime).
# Time-to-lives: a hundred years, in minutes (longer overflows date arithmetic and means "forever" anyway).
MAX_TTL_MINUTES = 100 * 366 * 24 * 60
# Delays: a century in seconds, so that now + delay is always a date the database can hold.
MAX_DELAY_SECONDS = 100 * 365 * 86400
