"""Row operations as plain data: what a stage result asks the store to write.

Stages stay pure by returning these instead of touching a session. Tables and columns are
named by their snake_case field names ("file_distribution", "call_id", "stt_done"), never
the seed's spelling: cofid/store/writes.py translates with the map in cofid/store/tables.py.
The store executes the operations of many file results in one transaction
(group commit), in three phases — every Delete, then every Insert (merged into one
multi-row statement per table), then every Update (merged into one statement per table,
key column and values) — which keeps each file's own order (old rows out, new rows in,
then its flags and status) while turning thousands of statements into a handful.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Insert:
    table: str
    rows: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Update:
    """UPDATE table SET values WHERE key_column = key_value."""

    table: str
    key_column: str
    key_value: Any
    values: dict[str, Any]


@dataclass(frozen=True)
class Delete:
    """DELETE FROM table WHERE key_column = key_value."""

    table: str
    key_column: str
    key_value: Any


Op = Insert | Update | Delete


@dataclass
class WriteSet:
    """The operations of one unit that must commit atomically (one file's stage result)."""

    ops: list[Op] = field(default_factory=list)

    def insert(self, table: str, *rows: dict[str, Any]) -> None:
        if rows:
            self.ops.append(Insert(table, tuple(rows)))

    def update(self, table: str, key_column: str, key_value: Any, **values: Any) -> None:
        self.ops.append(Update(table, key_column, key_value, values))

    def delete(self, table: str, key_column: str, key_value: Any) -> None:
        self.ops.append(Delete(table, key_column, key_value))

    def replace(self, table: str, key_column: str, key_value: Any, *rows: dict[str, Any]) -> None:
        """The rows of `table` whose `key_column` is `key_value` become `rows` (old rows
        out, new ones in): how a re-run stage result never lands twice."""
        self.delete(table, key_column, key_value)
        self.insert(table, *rows)

    def extend(self, other: WriteSet) -> None:
        self.ops.extend(other.ops)


@dataclass
class MergedOps:
    """Ops merged for the three phases: deletes by (table, key column) → keys, inserts by
    table → rows, updates by (table, key column, sorted values) → keys; each dict keeps
    the order its keys first appeared in."""

    deletes: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    inserts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    updates: dict[tuple[str, str, tuple[tuple[str, Any], ...]], list[Any]] = field(
        default_factory=dict
    )


def merge_ops(ops: Iterable[Op]) -> MergedOps:
    """The ops of one or many write sets, merged for the three phases (module docstring)."""
    m = MergedOps()
    for op in ops:
        if isinstance(op, Delete):
            m.deletes.setdefault((op.table, op.key_column), []).append(op.key_value)
        elif isinstance(op, Insert):
            m.inserts.setdefault(op.table, []).extend(op.rows)
        else:
            key = (op.table, op.key_column, tuple(sorted(op.values.items())))
            m.updates.setdefault(key, []).append(op.key_value)
    return m
