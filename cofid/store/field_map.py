"""The one map between the seed's names and the names the rest of cofid uses.

Code above the store names tables and columns by snake_case field names ("call_id"),
derived mechanically from the seed's names, so the map cannot drift; a clash fails at
import. cofid.store.tables builds the map over its metadata and re-exports the lookups.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa


def field_name(seed_name: str) -> str:
    """'callId' -> 'call_id', 'llm1Done' -> 'llm1_done', 'batchExecutionLog' ->
    'batch_execution_log'; a name already in snake_case is its own field name."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", seed_name).lower()


class FieldMap:
    """Field names <-> seed names for every table of one MetaData."""

    def __init__(self, metadata: sa.MetaData) -> None:
        self.tables: dict[str, sa.Table] = {}
        self.columns: dict[str, dict[str, str]] = {}
        for tbl in metadata.tables.values():
            key = field_name(tbl.name)
            if key in self.tables:
                raise AssertionError(f"two tables share the field name {key!r}")
            self.tables[key] = tbl
            cols: dict[str, str] = {}
            for col in tbl.columns:
                f = field_name(col.name)
                if f in cols:
                    raise AssertionError(f"{tbl.name}: two columns share the field name {f!r}")
                cols[f] = col.name
            self.columns[key] = cols

    def table_of(self, table_field: str) -> sa.Table:
        """The table a field name ('transcript', 'file_distribution') stands for."""
        try:
            return self.tables[table_field]
        except KeyError:
            raise KeyError(f"no table has the field name {table_field!r}") from None

    def column_of(self, table_field: str, field: str) -> sa.Column[Any]:
        """The column of `table_field` whose field name is `field`."""
        try:
            return self.table_of(table_field).c[self.columns[table_field][field]]
        except KeyError:
            raise KeyError(f"{table_field} has no column with the field name {field!r}") from None

    def to_columns(self, table_field: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """Field names -> seed column names, for an INSERT or UPDATE of `table_field`."""
        names = self.columns[table_field]
        try:
            return {names[k]: v for k, v in values.items()}
        except KeyError as e:
            raise KeyError(
                f"{table_field} has no column with the field name {e.args[0]!r}"
            ) from None


def to_fields(row: Mapping[str, Any] | sa.Row[Any]) -> dict[str, Any]:
    """A result row (seed column names) as a dict keyed by field names."""
    mapping = row._mapping if isinstance(row, sa.Row) else row
    return {field_name(str(k)): v for k, v in mapping.items()}
