"""The store's names that the layers above it handle without speaking SQL.

A Connection is opaque above the store: the service composes a transaction by handing
one from store function to store function (inside Database.read / write or the writer's
run_step) and never executes anything on it. The errors are the ones callers above
react to: a concurrent insert took a unique key (retry the transaction), the database
refused or dropped the connection (report it).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["Connection", "DatabaseError", "DuplicateKey"]

# A concurrent transaction took the same unique key (a day's batchNumber): retry it.
DuplicateKey = sa.exc.IntegrityError
# The database refused the statement or the connection (see store.db.is_connection_error).
DatabaseError = sa.exc.OperationalError
