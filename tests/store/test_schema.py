import re

import sqlalchemy as sa

from cofid.store import tables as t
from cofid.store.migrate import migrations, table_version, upgrade

SEED_MONITORING_QUERIES = [
    """SELECT
    id, batchDate, batchNumber, status, dbInsertionStatus, denoiseStatus, ivrStatus,
    lidStatus, sttStatus, llm1Status, llm2Status, totalFiles
FROM batchStatus
WHERE batchDate = CURDATE()
ORDER BY id DESC""",
    """SELECT file, denoiseDone, ivrDone, lidDone, sttDone, llm1Done, llm2Done
FROM fileDistribution WHERE batchId = 1 LIMIT 100""",
    """SELECT status, COUNT(*) as count FROM `call` WHERE batchId = 1 GROUP BY status""",
    """SELECT stage_name, COUNT(*) as error_count, MAX(created_at) as last_error
FROM processing_logs WHERE batch_id = '1' AND status = 'failed' GROUP BY stage_name""",
    """SELECT stage, eventType, status, COUNT(*) as count FROM batchExecutionLog
WHERE batchId = 1 GROUP BY stage, eventType, status ORDER BY stage""",
]


def test_one_migration_per_schema_version():
    # Released migrations are history (tests/store/test_upgrade_path.py keeps 0001 as
    # released and checks that all of them applied equal the definitions on MariaDB).
    found = migrations()
    assert [v for v, _ in found] == list(range(1, t.SCHEMA_VERSION + 1))
    assert [p.name for _, p in found][:4] == [
        "0001_initial.sql", "0002_trade_verdict.sql", "0003_utc_defaults_event_ids.sql",
        "0004_recording_digest_detected_language.sql"]


def test_a_migration_creates_the_tables_that_name_its_version():
    for version, path in migrations():
        created = set(re.findall(r"^CREATE TABLE `?(\w+)`?", path.read_text(), re.M))
        named = {x.name for x in t.metadata.sorted_tables if table_version(x) == version}
        assert created == named, path.name


def test_the_migrations_together_create_every_table():
    created = set()
    for _version, path in migrations():
        created |= set(re.findall(r"^CREATE TABLE `?(\w+)`?", path.read_text(), re.M))
    assert created == set(t.metadata.tables)


def test_the_seed_tables_keep_their_names():
    assert [x.name for x in t.SEED_TABLES] == [
        "batchStatus", "fileDistribution", "call", "callMetadata", "tradeMetadata",
        "tradeAudioMapping", "lidStatus", "transcript", "callConversation", "auditAnswer",
        "processing_logs", "batchExecutionLog",
    ]


def test_upgrade_creates_the_schema_once(db_url):
    engine = sa.create_engine(db_url)
    assert upgrade(engine) == list(range(1, t.SCHEMA_VERSION + 1))
    assert upgrade(engine) == []
    names = set(sa.inspect(engine).get_table_names())
    assert set(t.metadata.tables) <= names
    with engine.connect() as conn:
        versions = conn.execute(sa.select(t.schema_version.c.version)).scalars().all()
        assert sorted(versions) == list(range(1, t.SCHEMA_VERSION + 1))
    engine.dispose()


def test_upgraded_mariadb_schema_has_every_defined_column(mariadb):
    engine = sa.create_engine(mariadb.create_database())
    upgrade(engine)
    insp = sa.inspect(engine)
    for table in t.metadata.sorted_tables:
        cols = {c["name"] for c in insp.get_columns(table.name)}
        assert cols == set(table.c.keys()), table.name
    engine.dispose()


def test_seed_monitoring_queries_run_unchanged_on_mariadb(mariadb):
    engine = sa.create_engine(mariadb.create_database())
    upgrade(engine)
    with engine.connect() as conn:
        for q in SEED_MONITORING_QUERIES:
            conn.exec_driver_sql(q).fetchall()
    engine.dispose()
