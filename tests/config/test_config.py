import json
import subprocess
import sys

import pytest

from cofid.config import ConfigError, effective_config, load_config, parse_config
from cofid.store.tables import SCHEMA_VERSION


def run_cofid(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cofid.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=60)


def test_no_file_gives_the_embedded_default():
    cfg = load_config(None)
    assert cfg.database_url.startswith("sqlite:///") and cfg.database_url.endswith("var/cofi.db")
    assert (cfg.backends.lid, cfg.backends.stt, cfg.backends.chat) == ("cpu", "cpu", "rules")
    assert cfg.stages.min_duration_s == 5.0
    assert cfg.stages.allowed_languages == ("en", "hi", "hinglish")
    qs = cfg.question_set(1, 1)
    assert qs is not None and len(qs.questions) >= 8


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[database]\npool_size = 'five'\n", "database.pool_size: expected an integer, got 'five'"),
        ("[databse]\nurl = ''\n", "databse: unknown key"),
        ("[stages]\nmin_duration = 3\n", "stages.min_duration: unknown key"),
        ("[[gpus]]\nname = 'a'\nslots = 2\n", "gpus[0].url: required key is missing"),
        ("[[gpus]]\nname = 'a'\nurl = 'ftp://x'\n", "gpus[0].url: 'ftp://x' is not allowed"),
        ("[[gpus]]\nname = 'a'\nurl = 'http://x'\nslots = 0\n", "gpus[0].slots: 0 is not allowed (an integer from 1 to 64)"),
        ("[stages]\nallowed_languages = ['en', 'fr']\n", "stages.allowed_languages[1]: 'fr' is not allowed"),
        ("[backends]\nstt = 'remote'\n", "backends.stt: 'remote' needs at least one [[gpus]]"),
        ("[backends]\nlid = 'gpu'\n", "backends.lid: 'gpu' is not allowed (one of cpu, remote, fake)"),
        ("[stages.retry]\nattempts = 0\n", "stages.retry.attempts: 0 is not allowed"),
        ("[stages]\ndefault_zone = 'Mars/Base'\n", "stages.default_zone: 'Mars/Base' is not allowed"),
        ("[grpc]\nlisten = ['nowhere']\n", "grpc.listen[0]: 'nowhere' is not allowed"),
        ("[[grpc.tokens]]\nname = 'ops'\nrole = 'admin'\ntoken = 's'\n", "grpc.tokens[0].role: 'admin' is not allowed"),
        ("[pipelines.batch]\nllm1 = 'yes'\n", "pipelines.batch.llm1: expected true or false, got 'yes'"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(tmp_path, toml, expected):
    p = tmp_path / "cofid.toml"
    p.write_text(toml)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert expected in str(e.value)
    r = run_cofid("--config", str(p), "check-config")
    assert r.returncode == 2
    assert expected in r.stderr


def test_not_toml_is_refused(tmp_path):
    p = tmp_path / "cofid.toml"
    p.write_text("[database\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(p)


def test_question_sets_and_defaults_must_agree():
    with pytest.raises(ConfigError, match="audit.default_process_id"):
        parse_config({"audit": {"default_process_id": 9, "question_sets": [{
            "process_id": 1, "category_mapping_id": 1, "questions": [
                {"id": "T1", "text": "Instrument?", "kind": "trade_instrument"},
                {"id": "T2", "text": "Side and quantity?", "kind": "trade_side_quantity"},
                {"id": "T3", "text": "Price?", "kind": "trade_price"},
            ]}]}})


def test_check_config_prints_the_embedded_default_with_secrets_masked(tmp_path):
    r = run_cofid("check-config", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout.split("\n", 1)[1])
    assert body["backends"]["lid"] == "cpu"
    assert body["grpc"]["listen"] == ["unix:var/cofid.sock", "127.0.0.1:50051"]
    p = tmp_path / "cofid.toml"
    p.write_text(
        "[database]\nurl = 'mysql+pymysql://cofi:hunter2@db/cofi'\n"
        "[[grpc.tokens]]\nname = 'ops'\nrole = 'operator'\ntoken = 'sekret-token'\n"
        "[[gpus]]\nname = 'g1'\nurl = 'http://10.0.0.5:8000'\napi_key = 'key-123'\n"
    )
    r = run_cofid("--config", str(p), "check-config")
    assert r.returncode == 0, r.stderr
    assert "hunter2" not in r.stdout and "sekret-token" not in r.stdout and "key-123" not in r.stdout
    body = json.loads(r.stdout.split("\n", 1)[1])
    assert body["database"]["url"] == "mysql+pymysql://cofi:****@db/cofi"
    assert body["grpc"]["tokens"][0]["token"] == "****"


def test_effective_config_lists_the_default_question_set():
    out = effective_config(load_config(None))
    ids = [q["id"] for q in out["audit"]["question_sets"][0]["questions"]]
    assert ids[:3] == ["TRD_INSTRUMENT", "TRD_SIDE_QTY", "TRD_PRICE"]


def test_db_upgrade_command_is_idempotent(tmp_path):
    p = tmp_path / "cofid.toml"
    p.write_text(f"[paths]\ndata = '{tmp_path / 'data'}'\n")
    first = run_cofid("--config", str(p), "db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"schema: applied {list(range(1, SCHEMA_VERSION + 1))}"
    second = run_cofid("--config", str(p), "db", "upgrade")
    assert second.stdout.strip() == "schema: up to date"


def test_db_upgrade_on_mariadb(tmp_path, mariadb):
    url = mariadb.create_database()
    p = tmp_path / "cofid.toml"
    p.write_text(f"[database]\nurl = '{url}'\n[paths]\ndata = '{tmp_path}'\n")
    applied = f"schema: applied {list(range(1, SCHEMA_VERSION + 1))}"
    assert run_cofid("--config", str(p), "db", "upgrade").stdout.strip() == applied
    assert run_cofid("--config", str(p), "db", "upgrade").stdout.strip() == "schema: up to date"


def test_db_upgrade_reports_an_unreachable_database(tmp_path):
    p = tmp_path / "cofid.toml"
    p.write_text(f"[database]\nurl = 'mysql+pymysql://root@/x?unix_socket={tmp_path}/none.sock'\n"
                 f"connect_timeout_s = 1\n[paths]\ndata = '{tmp_path}'\n")
    r = run_cofid("--config", str(p), "db", "upgrade")
    assert r.returncode == 1
    assert "database unreachable" in r.stderr
