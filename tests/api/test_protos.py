"""The cofi.v1 contract: generated modules import, are reproducible, and match the spec."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor

from protos.cofi.v1 import cofi_pb2, cofi_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
V1 = ROOT / "protos" / "cofi" / "v1"
SCRIPT = ROOT / "scripts" / "gen_protos.sh"

SERVICE = cofi_pb2.DESCRIPTOR.services_by_name["Cofi"]

# method -> (request, response, client streaming, server streaming)
RPCS = {
    "StartBatch": ("StartBatchRequest", "TaskRef", False, False),
    "UploadAudit": ("UploadRequest", "UploadReply", True, False),
    "Reaudit": ("ReauditRequest", "ReauditReply", False, False),
    "GetTask": ("GetTaskRequest", "Task", False, False),
    "CancelTask": ("CancelTaskRequest", "Task", False, False),
    "ListBatches": ("ListBatchesRequest", "ListBatchesReply", False, False),
    "GetBatch": ("GetBatchRequest", "Batch", False, False),
    "GetCall": ("GetCallRequest", "Call", False, False),
    "ListCalls": ("ListCallsRequest", "ListCallsReply", False, False),
    "WatchEvents": ("WatchRequest", "WatchMessage", False, True),
    "ListGpus": ("ListGpusRequest", "ListGpusReply", False, False),
    "ListTasks": ("ListTasksRequest", "ListTasksReply", False, False),
    "ResumeTask": ("ResumeTaskRequest", "TaskRef", False, False),
    "ListTradeVerdicts": ("ListTradeVerdictsRequest", "ListTradeVerdictsReply", False, False),
    "GetEvidence": ("GetEvidenceRequest", "EvidenceChunk", False, True),
}

# Field numbers as released. Existing numbers never change (clients depend on them);
# new fields may be added, so this is checked as a subset.
FIELD_NUMBERS = {
    "StartBatchRequest": "directory=1 process_id=2 category_mapping_id=3",
    "TaskRef": "task_id=1 state=2 batch_id=3",
    "UploadRequest": "header=1 chunk=2",
    "UploadHeader": "process_id=1 category_mapping_id=2 files=3 replace=4",
    "UploadFile": "name=1 size_bytes=2 sha256=3",
    "UploadChunk": "file_index=1 data=2 offset=3",
    "UploadReply": "status=1 task_id=2 batch_id=3 stored_names=4",
    "ReauditRequest": "audio_names=1 stages=2",
    "ReauditReply": "task_id=1 unknown_audio_names=2 matched_calls=3",
    "GetTaskRequest": "task_id=1",
    "CancelTaskRequest": "task_id=1",
    "Task": "task_id=1 kind=2 state=3 batch_id=4 created_at=5 updated_at=6 stages=20 "
    "failures=21 error=30 request_json=31",
    "StageProgress": "stage=1 status=2 total=3 done=4 failed=5 skipped=6",
    "FileFailure": "audio_name=1 stage=2 error=3",
    "ListBatchesRequest": "date_from=1 date_to=2 page_size=3 page_token=4",
    "ListBatchesReply": "batches=1 next_page_token=2",
    "BatchSummary": "batch_id=1 batch_date=2 batch_number=3 status=4 source=5 total_files=6 "
    "created_at=7 completed_at=8 verdict_counts=20",
    "GetBatchRequest": "batch_id=1",
    "Batch": "summary=1 process_id=2 category_mapping_id=3 source_dir=4 stages=20 "
    "call_status_counts=21 last_file_finished_at=22",
    "StageState": "stage=1 status=2 total=3 done=4 failed=5 skipped=6 files_per_minute=7 "
    "disabled=8 retries=9 measured_files_per_minute=10",
    "GetCallRequest": "audio_name=1 batch_id=2",
    "ListCallsRequest": "batch_id=1 page_size=2 page_token=3 statuses=4 full=5",
    "ListCallsReply": "calls=1 next_page_token=2",
    "Call": "call_id=1 batch_id=2 audio_name=3 status=4 lang=5 language_id=6 audio_duration=7 "
    "gpu_ip=8 failed_stage=9 failure_reason=10 transcript=40 extracted_trades=41 "
    "mapped_trades=42 audit_answers=43",
    "TranscriptSegment": "index=1 start=2 end=3 text=4 speaker=5",
    "ExtractedTrade": "trade_index=1 trade_id=2 symbol=3 side=4 quantity=5 price=6 "
    "order_type=7 evidence=8",
    "MappedTrade": "trade_id=1 symbol=2 side=3 quantity=4 price=5 trade_time=6",
    "AuditAnswer": "question_id=1 question=2 answer=3 evidence=4 source=5",
    "WatchRequest": "batch_id=1 stages=2 event_types=3 from_event_id=4 errors_only=5",
    "WatchMessage": "event=1 heartbeat=2 notice=3",
    "Heartbeat": "last_event_id=1 server_time=2",
    "Notice": "code=1 message=2",
    "Event": "id=1 batch_id=2 timestamp=3 stage=4 event_type=5 file_name=6 gpu_ip=7 payload=8 "
    "response=9 status=10 error_message=11 total_files=12 processed_files=13 metadata_json=14",
    "ListGpusRequest": "",
    "ListGpusReply": "gpus=1",
    "GpuState": "name=1 url=2 healthy=3 slots=4 slots_in_use=5 files_assigned=6 files_done=7 "
    "latency_ms_p50=8 latency_ms_p95=9 consecutive_failures=10 requests_failed=11 "
    "error_rate=12",
    "ListTradeVerdictsRequest": "batch_id=1 verdicts=2 page_size=3 page_token=4",
    "ListTradeVerdictsReply": "verdicts=1 next_page_token=2",
    "TradeVerdict": "batch_id=1 trade_id=2 audio_name=3 call_id=4 verdict=5 reason=6 "
    "decided_at=7 fields=20 evidence=21",
    "VerdictField": "field=1 booked=2 heard=3 agree=4 note=5",
    "EvidenceSegment": "start=1 end=2 text=3",
    "GetEvidenceRequest": "trade_id=1 batch_id=2",
    "EvidenceChunk": "header=1 data=2",
    "EvidenceHeader": "batch_id=1 trade_id=2 audio_name=3 verdict=4 files=20",
    "EvidenceFile": "name=1 size_bytes=2 sha256=3",
    "EvidenceData": "file_index=1 offset=2 data=3",
}

# Fields whose absence means something (proto3 `optional`).
OPTIONAL_FIELDS = {
    ("StartBatchRequest", "process_id"),
    ("StartBatchRequest", "category_mapping_id"),
    ("UploadHeader", "process_id"),
    ("UploadHeader", "category_mapping_id"),
    ("UploadFile", "sha256"),
    ("ListBatchesRequest", "date_from"),
    ("ListBatchesRequest", "date_to"),
    ("WatchRequest", "from_event_id"),
    ("Event", "total_files"),
    ("Event", "processed_files"),
    ("VerdictField", "booked"),
    ("VerdictField", "heard"),
}

TIMESTAMP_FIELDS = {
    ("Task", "created_at"),
    ("Task", "updated_at"),
    ("BatchSummary", "created_at"),
    ("BatchSummary", "completed_at"),
    ("Heartbeat", "server_time"),
    ("Event", "timestamp"),
    ("MappedTrade", "trade_time"),
}


def _generated(directory: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in sorted(directory.iterdir())
        if p.name.endswith(("_pb2.py", "_pb2_grpc.py", "_pb2.pyi"))
    }


def _message(name: str):
    return cofi_pb2.DESCRIPTOR.message_types_by_name[name]


# --- import -----------------------------------------------------------------------------


def test_generated_modules_import() -> None:
    assert cofi_pb2.DESCRIPTOR.package == "cofi.v1"
    assert cofi_pb2.DESCRIPTOR.name == "cofi/v1/cofi.proto"
    for name in ("CofiStub", "CofiServicer", "add_CofiServicer_to_server"):
        assert hasattr(cofi_pb2_grpc, name)
    # the stub binds every RPC on a channel
    channel = grpc.insecure_channel("127.0.0.1:1")
    try:
        stub = cofi_pb2_grpc.CofiStub(channel)
        for method in RPCS:
            assert callable(getattr(stub, method))
    finally:
        channel.close()


def test_generated_imports_are_package_absolute() -> None:
    for name, text in _generated(V1).items():
        body = text.decode()
        assert not re.search(r"^(from|import) cofi\.", body, re.MULTILINE), name
    assert b"from protos.cofi.v1 import cofi_pb2" in (V1 / "cofi_pb2_grpc.py").read_bytes()


@pytest.mark.parametrize("layout", ["repo_root_on_path", "copied_as_installed"])
def test_imports_work_outside_the_checkout(tmp_path: Path, layout: str) -> None:
    """From the repo root on sys.path, and from a copy of the package laid out as an
    installed distribution (site-packages/protos/...), in a fresh interpreter."""
    if layout == "repo_root_on_path":
        path_entry = ROOT
    else:
        path_entry = tmp_path / "site"
        shutil.copytree(
            ROOT / "protos",
            path_entry / "protos",
            ignore=shutil.ignore_patterns("__pycache__", "*.proto"),
        )
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from protos.cofi.v1 import cofi_pb2, cofi_pb2_grpc;"
        "import pathlib;"
        "assert pathlib.Path(cofi_pb2_grpc.__file__).is_relative_to(sys.argv[1]), "
        "cofi_pb2_grpc.__file__;"
        "print(cofi_pb2_grpc.CofiStub.__name__, len(cofi_pb2.DESCRIPTOR.message_types_by_name))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(path_entry)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "CofiStub"


# --- reproducible -----------------------------------------------------------------------


def test_regenerating_gives_identical_files(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHON=sys.executable)
    out = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    fresh = _generated(tmp_path / "cofi" / "v1")
    committed = _generated(V1)
    assert sorted(fresh) == sorted(committed) == ["cofi_pb2.py", "cofi_pb2.pyi", "cofi_pb2_grpc.py"]
    for name in committed:
        assert fresh[name] == committed[name], f"{name} is stale: run `make protos`"


def test_every_proto_file_is_generated() -> None:
    protos = sorted(p.stem for p in V1.glob("*.proto"))
    assert protos
    for stem in protos:
        for suffix in ("_pb2.py", "_pb2_grpc.py", "_pb2.pyi"):
            assert (V1 / f"{stem}{suffix}").is_file()


# --- the contract -----------------------------------------------------------------------


def test_every_rpc_exists_with_its_shape() -> None:
    methods = {m.name: m for m in SERVICE.methods}
    assert set(methods) == set(RPCS)
    for name, (req, resp, client_streaming, server_streaming) in RPCS.items():
        m = methods[name]
        assert m.input_type.full_name == f"cofi.v1.{req}", name
        assert m.output_type.full_name == f"cofi.v1.{resp}", name
        assert m.client_streaming is client_streaming, name
        assert m.server_streaming is server_streaming, name
        # and the generated servicer has a handler stub for it
        assert hasattr(cofi_pb2_grpc.CofiServicer, name)


def test_field_numbers_are_stable() -> None:
    for message, spec in FIELD_NUMBERS.items():
        desc = _message(message)
        actual = {f.name: f.number for f in desc.fields}
        for item in spec.split():
            field, number = item.split("=")
            assert actual.get(field) == int(number), f"{message}.{field}"


def test_no_field_number_reused() -> None:
    for desc in cofi_pb2.DESCRIPTOR.message_types_by_name.values():
        numbers = [f.number for f in desc.fields]
        assert len(numbers) == len(set(numbers)), desc.name


def test_optional_fields_track_presence() -> None:
    for message, field in OPTIONAL_FIELDS:
        f = _message(message).fields_by_name[field]
        assert f.has_presence, f"{message}.{field} should be proto3 optional"
    req = cofi_pb2.StartBatchRequest(directory="/data/b1")
    assert not req.HasField("process_id")
    req.process_id = 0
    assert req.HasField("process_id")
    assert not cofi_pb2.WatchRequest().HasField("from_event_id")
    assert cofi_pb2.WatchRequest(from_event_id=0).HasField("from_event_id")


def test_timestamps() -> None:
    for message, field in TIMESTAMP_FIELDS:
        f = _message(message).fields_by_name[field]
        assert f.message_type.full_name == timestamp_pb2.Timestamp.DESCRIPTOR.full_name


def test_oneofs() -> None:
    up = _message("UploadRequest")
    assert [f.name for f in up.oneofs_by_name["msg"].fields] == ["header", "chunk"]
    watch = _message("WatchMessage")
    assert [f.name for f in watch.oneofs_by_name["msg"].fields] == ["event", "heartbeat", "notice", "events"]
    m = cofi_pb2.WatchMessage(notice=cofi_pb2.Notice(code="fell_behind", message="x"))
    assert m.WhichOneof("msg") == "notice"
    m.heartbeat.last_event_id = 7
    assert m.WhichOneof("msg") == "heartbeat"


def test_batch_call_status_counts_is_a_map() -> None:
    f = _message("Batch").fields_by_name["call_status_counts"]
    assert f.message_type.GetOptions().map_entry
    assert f.message_type.fields_by_name["value"].type == FieldDescriptor.TYPE_INT64
    b = cofi_pb2.Batch()
    b.call_status_counts["Complete"] = 3
    assert cofi_pb2.Batch.FromString(b.SerializeToString()).call_status_counts == {"Complete": 3}


def test_messages_round_trip() -> None:
    call = cofi_pb2.Call(
        call_id=1,
        batch_id=2,
        audio_name="a.wav",
        status="Complete",
        lang="hinglish",
        language_id=3,
        audio_duration=42.5,
        transcript=[cofi_pb2.TranscriptSegment(index=0, start=0.0, end=1.5, text="hello")],
        extracted_trades=[
            cofi_pb2.ExtractedTrade(
                trade_index=0, symbol="INFY", side="BUY", quantity="100", price="1500.5"
            )
        ],
        mapped_trades=[cofi_pb2.MappedTrade(trade_id="T1", symbol="INFY")],
        audit_answers=[cofi_pb2.AuditAnswer(question_id="q1", answer="Yes", source="llm2")],
    )
    assert cofi_pb2.Call.FromString(call.SerializeToString()) == call
    chunk = cofi_pb2.UploadRequest(
        chunk=cofi_pb2.UploadChunk(file_index=1, data=b"\0" * 10, offset=1024)
    )
    assert cofi_pb2.UploadRequest.FromString(chunk.SerializeToString()) == chunk


def test_every_rpc_documents_role_and_errors() -> None:
    text = (V1 / "cofi.proto").read_text(encoding="utf-8")
    for name in RPCS:
        match = re.search(r"((?:[ \t]*//[^\n]*\n)+)[ \t]*rpc " + name + r"\(", text)
        assert match, f"rpc {name} has no comment"
        comment = match.group(1)
        assert "Role:" in comment, name
        assert "Error" in comment, name
    for code in (
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "UNAUTHENTICATED",
        "PERMISSION_DENIED",
    ):
        assert code in text, code
