"""The store on SQLite and a real MariaDB: bulk ops, group commit, event ids, numbering."""

from datetime import date

import sqlalchemy as sa
import trio

from cofid.domain.events import Event
from cofid.domain.ops import Insert, WriteSet
from cofid.engine.bus import EventBus, EventFilter, replay
from cofid.engine.writer import Writer
from cofid.store import repo
from cofid.store import tables as t
from cofid.store.db import Database
from cofid.store.migrate import upgrade
from cofid.store.writes import EventIds, commit_group, execute_ops


async def open_db(url: str) -> Database:
    db = Database(url, pool_size=4)
    await db.run(upgrade, db.engine)
    return db


def new_batch(conn, n=None) -> int:
    return repo.create_batch(conn, batch_date=date(2026, 11, 22), source="batch", source_dir=None,
                             process_id=1, category_mapping_id=1, pipeline={}, batch_number=n)


async def test_distribute_writes_every_row_in_one_go(db_url):
    db = await open_db(db_url)
    bid = await db.write(new_batch)
    files = [(f"f{i:03}.wav", f"/x/f{i:03}.wav", f"gpu-{i % 2}") for i in range(250)]
    await db.write(lambda c: repo.distribute(c, bid, files, process_id=1, category_mapping_id=1))
    states = await db.read(lambda c: repo.load_files(c, bid))
    assert [s.audio_name for s in states] == [f[0] for f in files]
    assert {s.call_status for s in states} == {"Pending"} and {s.lang for s in states} == {"unknown"}
    page = await db.read(lambda c: repo.load_files(c, bid, after_fd_id=states[99].fd_id, limit=10))
    assert [s.audio_name for s in page] == [f[0] for f in files[100:110]]
    row = await db.read(lambda c: repo.get_batch(c, bid))
    # batchStatus.status is the service's walk (cofid.service.batches.walk_status), not
    # the store's: the store writes the stage's own status only.
    assert (row.totalFiles, row.dbInsertionStatus, row.status) == (250, "Complete", "Pending")
    db.dispose()


async def test_merged_ops_keep_each_write_sets_order(db_url):
    db = await open_db(db_url)
    bid = await db.write(new_batch)
    await db.write(lambda c: repo.distribute(c, bid, [("a.wav", "/a", "g"), ("b.wav", "/b", "g")],
                                             process_id=1, category_mapping_id=1))
    states = await db.read(lambda c: repo.load_files(c, bid))
    sets = []
    for s in states:
        ws = WriteSet()
        ws.delete("transcript", "call_id", s.call_id)
        ws.insert("transcript", *({"call_id": s.call_id, "segment_index": i, "start_time": i,
                                   "end_time": i + 1, "text": f"{s.audio_name} {i}"} for i in range(3)))
        ws.update("call", "id", s.call_id, status="TranscriptDone")
        ws.update("file_distribution", "id", s.fd_id, stt_done=1)
        sets.append(ws)
    ops = [op for ws in sets for op in ws.ops]
    await db.write(lambda c: execute_ops(c, ops))
    await db.write(lambda c: execute_ops(c, ops))  # a re-run replaces, never duplicates
    rows = await db.read(lambda c: c.execute(sa.select(t.transcript.c.text).order_by(
        t.transcript.c.callId, t.transcript.c.segmentIndex)).scalars().all())
    assert rows == [f"a.wav {i}" for i in range(3)] + [f"b.wav {i}" for i in range(3)]
    after = await db.read(lambda c: repo.load_files(c, bid))
    assert [(s.call_status, s.stt_done) for s in after] == [("TranscriptDone", True)] * 2
    db.dispose()


async def test_writer_isolates_a_bad_write_set_and_numbers_events_in_commit_order(db_url):
    db = await open_db(db_url)
    bid = await db.write(new_batch)
    bus = EventBus()
    seen = []
    bus.listeners.append(lambda e: seen.append(e.id))
    writer = Writer(db, bus)
    await writer.start()
    good = [Insert("processing_logs", ({"batch_id": bid, "stage_name": "lid", "status": "success",
                                        "attempt": 1},))]
    bad = [Insert("call", ({"batch_id": bid, "audio_name": "dup.wav"}, {"batch_id": bid, "audio_name": "dup.wav"}))]
    results = {}
    async with trio.open_nursery() as n:
        n.start_soon(writer.run)

        async def submit(name, ops):
            try:
                await writer.commit(ops, [Event(batch_id=bid, stage="lid", event_type="info")])
                results[name] = "ok"
            except Exception as exc:  # noqa: BLE001
                results[name] = type(exc).__name__

        async with trio.open_nursery() as m:
            for i in range(20):
                m.start_soon(submit, f"good{i}", good)
            m.start_soon(submit, "bad", bad)
        await writer.drain()
    assert results.pop("bad") == "IntegrityError"
    assert set(results.values()) == {"ok"} and len(results) == 20
    assert seen == sorted(seen) and len(seen) == 20
    logs = await db.read(lambda c: c.execute(sa.select(sa.func.count()).select_from(t.processing_logs)).scalar())
    assert logs == 20
    replayed = await replay(db, EventFilter(batch_id=bid), 0, bus.last_id)
    assert [e.id for e in replayed] == seen
    db.dispose()


async def test_writer_drained_with_work_queued_commits_every_item(db_url):
    """Issue 19: drain() while items wait in the queue; run() must commit them all (it
    used to raise trio.EndOfChannel while gathering the last group, losing it)."""
    db = await open_db(db_url)
    bid = await db.write(new_batch)
    bus = EventBus()
    writer = Writer(db, bus, max_group=500)
    await writer.start()
    for i in range(3):
        await writer.post(
            [Insert("processing_logs", ({"batch_id": bid, "stage_name": "lid", "status": "retry",
                                         "attempt": i + 1},))],
            [Event(batch_id=bid, stage="lid", event_type="info")],
        )
    await writer.drain()
    await writer.run()  # everything is queued already; returns once it is committed
    assert writer.items_committed == 3
    logs = await db.read(lambda c: c.execute(
        sa.select(t.processing_logs.c.attempt).where(t.processing_logs.c.batch_id == bid)
        .order_by(t.processing_logs.c.id)).scalars().all())
    assert logs == [1, 2, 3]
    replayed = await replay(db, EventFilter(batch_id=bid), 0, 10**9)
    assert len(replayed) == 3 and bus.last_id == replayed[-1].id
    db.dispose()


class _Pending:
    """A queued unit of a group, as the writer holds it (cofid.store.writes.PendingWrite)."""

    def __init__(self, ops, events):
        self.ops, self.events, self.step, self.result, self.after = ops, events, None, [], None


async def test_a_group_retried_after_its_commit_went_through_is_not_written_twice(db_url):
    """Database.run runs a group again when the connection dropped around its COMMIT: if
    the COMMIT had gone through (its first event is in the log as it was written), the
    retry writes nothing; if it had not (ids of an attempt that rolled back), the group is
    written afresh with new ids."""
    db = await open_db(db_url)
    bid = await db.write(new_batch)

    def group(attempt):
        return [_Pending([Insert("processing_logs", ({"batch_id": bid, "stage_name": "lid",
                                                      "status": "success", "attempt": attempt},))],
                         [Event(batch_id=bid, stage="lid", event_type="info", file_name=f"a{attempt}.wav"),
                          Event(batch_id=bid, stage="lid", event_type="file_complete")])]

    def logs():
        with db.engine.connect() as conn:
            return conn.execute(
                sa.select(t.processing_logs.c.attempt).where(t.processing_logs.c.batch_id == bid)
                .order_by(t.processing_logs.c.id)).scalars().all()

    ids = EventIds()
    done = group(1)
    commit_group(db.engine, done, ids)
    first = [e.id for e in done[0].events]
    assert all(first) and ids.last_id == first[-1]
    commit_group(db.engine, done, ids)  # the retry of a group that is durable
    assert [e.id for e in done[0].events] == first and logs() == [1]

    undone = group(2)
    undone[0].events[0].id = first[-1] + 1000  # an id handed out by an attempt rolled back
    commit_group(db.engine, undone, ids)
    again = [e.id for e in undone[0].events]
    assert again == [first[-1] + 1, first[-1] + 2] and logs() == [1, 2]
    replayed = await replay(db, EventFilter(batch_id=bid), 0, 10**9)
    assert [e.id for e in replayed] == first + again
    db.dispose()


async def test_concurrent_batch_creation_gets_distinct_numbers(db_url):
    db = await open_db(db_url)

    async def create():
        for attempt in range(50):
            try:
                return await db.write(new_batch)
            except sa.exc.IntegrityError:
                await trio.sleep(0.001 * attempt)
        raise AssertionError("no number")

    ids = []

    async def one():
        ids.append(await create())

    async with trio.open_nursery() as n:
        for _ in range(8):
            n.start_soon(one)
    numbers = await db.read(lambda c: c.execute(sa.select(t.batch_status.c.batchNumber)).scalars().all())
    assert sorted(numbers) == list(range(1, 9))
    db.dispose()
