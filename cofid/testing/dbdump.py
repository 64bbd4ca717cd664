"""The normalized dump of a database (`cofid.store.dump`), re-exported for tests: what a
crashed-and-resumed run and an uninterrupted one must agree on."""

from cofid.store.dump import (
    KEPT_EVENT_TYPES,
    KEPT_LOG_STATUSES,
    TIMESTAMP_COLUMNS,
    Dump,
    diff_dumps,
    dump_connection,
    normalized_dump,
)

__all__ = ["KEPT_EVENT_TYPES", "KEPT_LOG_STATUSES", "TIMESTAMP_COLUMNS", "Dump", "diff_dumps",
           "dump_connection", "normalized_dump"]
