"""cofid.store.raw_sql writes exactly what SQLAlchemy's own statements wrote: the same
ops through the raw statements and through SQLAlchemy Core (the executor as it was before,
kept here as the reference) leave equal rows, value for value, on SQLite and MariaDB."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
import trio

from cofid.domain.events import Event
from cofid.domain.ops import Delete, Insert, Op, WriteSet
from cofid.store import raw_sql, repo
from cofid.store import tables as t
from cofid.store.db import Database, create_engine
from cofid.store.migrate import upgrade
from cofid.store.writes import execute_ops as raw_execute_ops
from cofid.store.writes import insert_events, to_seed_op

CLOCK = {"createdAt", "updatedAt", "created_at", "storedAt"}


def sa_execute_seed_ops(conn, ops: list[Op]) -> None:
    """The SQLAlchemy Core executor raw_sql replaced (same phases, same merging)."""
    deletes: dict[tuple[str, str], list[Any]] = {}
    inserts: dict[str, list[dict[str, Any]]] = {}
    updates: dict[tuple[str, str, tuple], list[Any]] = {}
    for op in ops:
        if isinstance(op, Delete):
            deletes.setdefault((op.table, op.key_column), []).append(op.key_value)
        elif isinstance(op, Insert):
            inserts.setdefault(op.table, []).extend(op.rows)
        else:
            updates.setdefault((op.table, op.key_column, tuple(sorted(op.values.items()))),
                               []).append(op.key_value)
    for (table, col), keys in deletes.items():
        tbl = t.TABLES_BY_NAME[table]
        conn.execute(sa.delete(tbl).where(tbl.c[col].in_(keys)))
    for table, rows in inserts.items():
        groups: dict[tuple, list] = {}
        for r in rows:
            groups.setdefault(tuple(r), []).append(r)
        for g in groups.values():
            conn.execute(sa.insert(t.TABLES_BY_NAME[table]), g)
    for (table, col, pairs), keys in updates.items():
        tbl = t.TABLES_BY_NAME[table]
        if len(keys) == 1:
            stmt = sa.update(tbl).where(tbl.c[col] == sa.bindparam("_key")).values(
                {c: sa.bindparam(c) for c, _v in pairs})
            conn.execute(stmt, [{"_key": keys[0], **dict(pairs)}])
        else:
            conn.execute(sa.update(tbl).where(tbl.c[col].in_(keys)).values(dict(pairs)))


def sa_insert_events(conn, events: list[Event]) -> None:
    tbl = t.batch_execution_log
    for e in events:
        row = t.to_columns("batch_execution_log", e.row())
        del row["id"]
        e.id = int(conn.execute(sa.insert(tbl).values(row)).inserted_primary_key[0])


def write_sets(calls: list[tuple[int, int]]) -> list[Op]:
    ops: list[Op] = []
    for n, (fd_id, call_id) in enumerate(calls):
        ws = WriteSet()
        ws.replace("transcript", "call_id", call_id, *(
            {"call_id": call_id, "segment_index": i, "start_time": i * 1.5, "end_time": i + 1.25,
             "text": f"seg {i} ‘quoted’ ✓", "speaker": None if i % 2 else "agent"}
            for i in range(4)))
        ws.replace("call_conversation", "call_id", call_id, {
            "call_id": call_id, "trade_index": 0, "trade_id": "T1", "symbol": "INFY",
            "side": "buy", "quantity": Decimal("100"), "price": Decimal("1500.125"),
            "order_type": None, "evidence": "bought"})
        ws.insert("processing_logs", {
            "batch_id": 1, "call_id": call_id, "file_name": f"f{n}.wav", "stage_name": "stt",
            "status": "success", "attempt": 1, "error_message": None,
            "details": {"gpu": "g0"} if n % 2 else None, "duration_ms": 12})
        ws.update("call", "id", call_id, status="TranscriptDone")  # merged: same values
        ws.update("call", "id", call_id, lang="en", language_id=1, audio_duration=10.0 + n)
        if n == 1:  # the same row twice with other values: the last one stays
            ws.update("call", "id", call_id, lang="hi", language_id=2, audio_duration=99.5)
        ws.update("file_distribution", "id", fd_id, stt_done=1)
        ops += ws.ops
    return ops


def events(n: int) -> list[Event]:
    return [Event(batch_id=1, stage="stt", event_type="file_complete", status="success",
                  file_name=f"f{i}.wav", payload={"a": i} if i % 2 else None,
                  metadata=None if i % 3 else {"k": [1, 2]},
                  timestamp=datetime(2026, 12, 3, 12, 0, 0, 1000 * i)) for i in range(n)]


def dump(engine) -> dict[str, list[tuple]]:
    out = {}
    q = engine.dialect.identifier_preparer.quote
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for tbl in t.metadata.sorted_tables:
            if tbl.name == "schemaVersion":
                continue
            cols = [c.name for c in tbl.columns]
            cur.execute(f"SELECT {', '.join(q(c) for c in cols)} FROM {q(tbl.name)} "
                        f"ORDER BY {', '.join(q(c.name) for c in tbl.primary_key)}")
            out[tbl.name] = [tuple((v is not None) if c in CLOCK else v
                                   for c, v in zip(cols, r, strict=True)) for r in cur.fetchall()]
    finally:
        raw.close()
    return out


def _distributed(url: str, files: int) -> tuple[sa.engine.Engine, list[tuple[int, int]]]:
    """A fresh schema at `url` with one batch of `files` calls: the engine and the
    calls' (file_distribution id, call id)."""
    engine = create_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        bid = repo.create_batch(conn, batch_date=date(2026, 12, 3), source="batch",
                                source_dir=None, process_id=1, category_mapping_id=1,
                                pipeline={}, batch_number=None)
        repo.distribute(conn, bid, [(f"f{i}.wav", f"/x/f{i}.wav", "g0") for i in range(files)],
                        process_id=1, category_mapping_id=1)
    with engine.connect() as conn:
        return engine, [(s.fd_id, s.call_id) for s in repo.load_files(conn, bid)]


def fill(url: str, *, raw: bool) -> tuple[dict[str, list[tuple]], list[int]]:
    engine, calls = _distributed(url, 5)
    evs = events(7)
    # Twice: the second time the replace deletes what the first one wrote.
    for _ in range(2):
        with engine.begin() as conn:
            if raw:
                raw_execute_ops(conn, write_sets(calls))
                insert_events(conn, evs)
            else:
                sa_execute_seed_ops(conn, [to_seed_op(op) for op in write_sets(calls)])
                sa_insert_events(conn, evs)
    ids = [e.id for e in evs]
    out = dump(engine)
    engine.dispose()
    return out, ids


def test_raw_statements_write_what_sqlalchemy_wrote(tmp_path, request):
    urls = [(f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}")]
    server = request.getfixturevalue("mariadb")
    urls.append((server.create_database("raw_a"), server.create_database("raw_b")))
    for a_url, b_url in urls:
        a, a_ids = fill(a_url, raw=False)
        b, b_ids = fill(b_url, raw=True)
        assert a == b
        assert a_ids == b_ids == list(range(8, 15))  # the second round's ids, in order
        assert len(b["transcript"]) == 20 and len(b["batchExecutionLog"]) == 14
        langs = [(r[t.call.c.keys().index("lang")], r[t.call.c.keys().index("audioDuration")])
                 for r in b["call"]]
        assert langs == [("en", 10.0), ("hi", 99.5), ("en", 12.0), ("en", 13.0), ("en", 14.0)]
        # JSON None stays what SQLAlchemy made of it, a dict its JSON text
        details = sorted((r[t.processing_logs.c.keys().index("details")] for r in b["processing_logs"]),
                         key=repr)
        assert details[0] == details[1]


def test_insert_returning_ids_follow_row_order_across_chunks(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)
    evs = events(raw_sql.RETURNING_CHUNK + 3)
    with engine.begin() as conn:
        insert_events(conn, evs)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.batch_execution_log.c.id, t.batch_execution_log.c.fileName)
                            .order_by(t.batch_execution_log.c.id)).all()
    assert [(e.id, e.file_name) for e in evs] == [(r.id, r.fileName) for r in rows]
    engine.dispose()


def test_group_commit_numbers_events_in_commit_order(tmp_path):
    async def main() -> list[int]:
        db = Database(f"sqlite:///{tmp_path / 'd.db'}")
        await db.run(upgrade, db.engine)
        evs = events(5)
        await db.write(lambda c: insert_events(c, evs))
        db.dispose()
        return [e.id for e in evs]

    assert trio.run(main) == [1, 2, 3, 4, 5]


def test_distribution_streamed_in_chunks_writes_what_insert_rows_wrote(db_url):
    """repo.distribute streams its rows (raw_sql.insert_stream, CHUNK at a time): over
    two chunk boundaries it leaves what SQLAlchemy's insert of the whole list left, and
    every call row has the one clock reading of the transaction."""
    n = 2 * raw_sql.CHUNK + 7
    files = [(f"f{i:05d}.wav", f"/x/f{i:05d}.wav", f"g{i % 3}") for i in range(n)]
    engine = create_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        ids = [repo.create_batch(conn, batch_date=date(2026, 12, 3), source="batch",
                                 source_dir=f"/b{k}", process_id=1, category_mapping_id=1,
                                 pipeline={}, batch_number=None) for k in range(2)]
        repo.distribute(conn, ids[0], files, process_id=3, category_mapping_id=4)
        conn.execute(sa.insert(t.file_distribution), [
            {"batchId": ids[1], "file": f, "filePath": p, "gpuIp": g} for f, p, g in files])
        conn.execute(sa.insert(t.call), [
            {"batchId": ids[1], "audioName": f, "status": "Pending", "lang": "unknown",
             "audioDuration": 0, "processId": 3, "categoryMappingId": 4} for f, _p, _g in files])
    fd, c = t.file_distribution, t.call
    with engine.connect() as conn:
        def rows(tbl, bid):
            cols = [x for x in tbl.columns if x.name not in ("id", "batchId", *CLOCK)]
            return conn.execute(sa.select(*cols).where(tbl.c.batchId == bid)
                                .order_by(tbl.c.id)).all()

        for tbl in (fd, c):
            assert rows(tbl, ids[0]) == rows(tbl, ids[1])
        assert len(rows(c, ids[0])) == n
        assert [r.file for r in rows(fd, ids[0])] == [f for f, _p, _g in files]
        clocks = conn.execute(sa.select(sa.func.count(sa.distinct(c.c.createdAt)),
                                        sa.func.count(sa.distinct(c.c.updatedAt)))
                              .where(c.c.batchId == ids[0])).one()
    assert tuple(clocks) == (1, 1)
    engine.dispose()


def test_pieces_are_powers_of_two_that_add_up() -> None:
    for most in (1, 2, 8, 512):
        for n in [*range(0, 40), 511, 512, 513, 1023, 1500, 5000]:
            sizes = list(raw_sql.pieces(n, most))
            assert sum(sizes) == n
            assert all(s <= most and s & (s - 1) == 0 for s in sizes)
            assert sizes == sorted(sizes, reverse=True)
            assert len([s for s in sizes if s < most]) <= most.bit_length()


def test_many_rows_in_multi_row_statements_write_what_sqlalchemy_wrote(tmp_path, request):
    """Row counts over and between the statement sizes, with a parameter limit small
    enough to force many statements (SQLite) — the rows, their order (ids) and the
    per-row UPDATE ... CASE values equal SQLAlchemy Core's, on SQLite and MariaDB."""
    server = request.getfixturevalue("mariadb")
    for limit in (None, 40):
        urls = [(f"sqlite:///{tmp_path / f'a{limit}.db'}", f"sqlite:///{tmp_path / f'b{limit}.db'}"),
                (server.create_database("many_a"), server.create_database("many_b"))]
        for a_url, b_url in urls:
            a = _many(a_url, raw=False, limit=None)
            b = _many(b_url, raw=True, limit=limit)
            assert a == b
            assert len(b["transcript"]) == 37 * 29
            ids = [r[0] for r in b["transcript"]]
            assert ids == sorted(ids) and len(set(ids)) == len(ids)


def _many(url: str, *, raw: bool, limit: int | None) -> dict[str, list[tuple]]:
    engine, calls = _distributed(url, 37)
    ops: list[Op] = []
    for n, (_fd, call_id) in enumerate(calls):
        ws = WriteSet()
        ws.insert("transcript", *({"call_id": call_id, "segment_index": i, "start_time": i * 1.0,
                                   "end_time": i + 0.5, "text": f"{n}:{i}"} for i in range(29)))
        ws.update("call", "id", call_id, lang="en", language_id=1, audio_duration=n + 0.25)
        ops += ws.ops
    sh = raw_sql.shapes(engine.dialect)
    saved = sh._variables
    try:
        if limit is not None and sh.multi_row:
            sh._variables = limit  # 40 parameters: 4 transcript rows a statement
        with engine.begin() as conn:
            if raw:
                raw_execute_ops(conn, ops)
            else:
                sa_execute_seed_ops(conn, [to_seed_op(op) for op in ops])
    finally:
        sh._variables = saved
    out = dump(engine)
    engine.dispose()
    return out
