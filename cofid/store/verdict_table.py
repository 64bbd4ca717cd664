"""Draft: the additive `tradeVerdict` table (issue 18), one row per trade per batch.

Not registered yet: the lead moves it into cofid/store/tables.py (or imports this module
from there before SEED_TABLES / the field maps are built, so `table_of("trade_verdict")`
knows it), adds it to sql/mysql/schema.sql (`cofid db ddl`) and bumps SCHEMA_VERSION with
a migration. It is declared on tables.metadata, so importing this module adds it to
every `metadata.create_all`.

Columns mirror cofid.domain.verdicts.Verdict: `fields` is Verdict.fields_json() (per
field booked / heard / agree / note), `evidence` is Verdict.evidence_json() (segments
with start and end seconds). `audioName` is null for no_call (and for pending before
triaging). `decidedAt` is UTC, with milliseconds on MySQL like the other timestamps; the
writer sets it (naive UTC, as everywhere in the store): the server default is only a
backstop, since CURRENT_TIMESTAMP follows the session's time zone.
The unique (batchId, tradeId) key makes the write an upsert: recomputing on reaudit or
after a crash replaces the row instead of adding one.
"""

from __future__ import annotations

import sqlalchemy as sa

from cofid.store.column_types import Millis
from cofid.store.column_types import now_default as _now
from cofid.store.tables import metadata

VERDICT_VALUES = ("confirmed", "mismatch", "no_call", "call_unusable", "pending")

trade_verdict = sa.Table(
    "tradeVerdict",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batchId", sa.Integer, sa.ForeignKey("batchStatus.id"), nullable=False),
    sa.Column("tradeId", sa.String(64), nullable=False),
    sa.Column("audioName", sa.String(255), nullable=True),
    # A string, like call.status: readers filter on it and new values need no DDL.
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("decidedAt", Millis, nullable=False, server_default=_now()),
    sa.UniqueConstraint("batchId", "tradeId", name="uq_tv_batch_trade"),
    # ListTradeVerdicts pages a batch by verdict; the TUI drills from a call to its trades.
    sa.Index("ix_tv_batch_verdict", "batchId", "verdict", "tradeId"),
    sa.Index("ix_tv_audio", "batchId", "audioName"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
    mysql_collate="utf8mb4_bin",
)
