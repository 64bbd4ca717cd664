"""cofictl export: a batch's answers, transcripts or trades as CSV or JSON lines.

cofi.v1 has no RPC that lists the calls of a batch (GetBatch gives only counts per call
status, GetCall needs a name). The workaround used here:

1. GetBatch: the number of calls (sum of call_status_counts) and whether it is Completed.
2. WatchEvents{batch_id, event_types: file_start/file_complete/error, from_event_id: 0}
   replays the batch's retained batchExecutionLog rows; every per-file event names its
   audio file. The names (only the names) are collected and sorted; the
   first Heartbeat marks the end of the replay (heartbeats flow only once no event does).
3. GetCall(name, batch_id) one call at a time; each call's rows are written and
   flushed before the next is fetched, so memory holds one call plus the name list.

Limits of the workaround, checked rather than assumed: events older than the daemon's
retention are gone (a "gap" notice), and a call that never reached a per-file stage
leaves no event. Either way fewer calls are found than GetBatch counts: the export
then ends with exit 1 ("incomplete") and, with -o, leaves no file behind. The RPC to
add is described in docs/operator-walkthrough.md (ListCalls, paged by call id).
"""

from __future__ import annotations

import contextlib
import csv
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc

from cofid import ctl_output as out
from cofid.ctl_connect import EXIT_OK, EXIT_TASK_FAILED, EXIT_USAGE, Connection, CtlError
from protos.cofi.v1 import cofi_pb2 as pb

COLUMNS = {
    "answers": ["batch_id", "call_id", "audio_name", "call_status", "lang", "question_id",
                "question", "answer", "source", "evidence"],
    "transcripts": ["batch_id", "call_id", "audio_name", "lang", "segment", "start", "end",
                    "speaker", "text"],
    "trades": ["batch_id", "call_id", "audio_name", "kind", "trade_index", "trade_id",
               "symbol", "side", "quantity", "price", "order_type", "trade_time", "evidence"],
}
FILE_EVENTS = ("file_start", "file_complete", "error")


def rows_of(c: pb.Call, what: str) -> Iterator[dict]:
    base = {"batch_id": c.batch_id, "call_id": c.call_id, "audio_name": c.audio_name}
    if what == "answers":
        for a in c.audit_answers:
            yield {**base, "call_status": c.status, "lang": c.lang,
                   "question_id": a.question_id, "question": a.question, "answer": a.answer,
                   "source": a.source, "evidence": a.evidence}
    elif what == "transcripts":
        for s in c.transcript:
            yield {**base, "lang": c.lang, "segment": s.index, "start": round(s.start, 3),
                   "end": round(s.end, 3), "speaker": s.speaker, "text": s.text}
    else:
        for x in c.extracted_trades:
            yield {**base, "kind": "extracted", "trade_index": x.trade_index,
                   "trade_id": x.trade_id, "symbol": x.symbol, "side": x.side,
                   "quantity": x.quantity, "price": x.price, "order_type": x.order_type,
                   "trade_time": "", "evidence": x.evidence}
        for m in c.mapped_trades:
            yield {**base, "kind": "mapped", "trade_index": "", "trade_id": m.trade_id,
                   "symbol": m.symbol, "side": m.side, "quantity": m.quantity,
                   "price": m.price, "order_type": "", "trade_time": out.ts_text(m.trade_time),
                   "evidence": ""}


def call_names(conn: Connection, batch_id: int, completed: bool) -> list[str]:
    """The batch's audio names from its replayed per-file events (see the module doc)."""
    req = pb.WatchRequest(batch_id=batch_id, event_types=FILE_EVENTS, from_event_id=0)
    names: dict[str, None] = {}
    started = time.time()
    it = conn.stream("WatchEvents", req)
    try:
        for m in it:
            kind = m.WhichOneof("msg")
            if kind == "heartbeat":
                break
            if kind == "notice":
                if m.notice.code == "gap":
                    raise CtlError(f"incomplete: the daemon no longer retains every event of "
                                   f"batch {batch_id} ({m.notice.message})", EXIT_TASK_FAILED)
                continue
            e = m.event
            if e.file_name:
                names.setdefault(e.file_name, None)
            if not completed and e.timestamp.seconds >= started:
                break  # the replay is over: this event is live (best effort)
    except grpc.RpcError as e:
        raise conn.error(e) from None
    finally:
        it.cancel()
    return sorted(names)


def cmd_export(conn: Connection, args) -> int:
    batch = conn.call("GetBatch", pb.GetBatchRequest(batch_id=args.batch))
    expected = sum(batch.call_status_counts.values())
    completed = batch.summary.status == "Completed"
    if not completed:
        if not args.partial:
            raise CtlError(f"batch {args.batch} is {batch.summary.status}, not Completed; "
                           f"export it when it is, or pass --partial", EXIT_USAGE)
        out.say(f"warning: batch {args.batch} is {batch.summary.status}; exporting the calls "
                f"so far")
    names = call_names(conn, args.batch, completed)
    out.say(f"batch {args.batch}: {expected} call(s), {len(names)} found in its events")
    target = Path(args.output) if args.output and args.output != "-" else None
    tmp = target.with_name(target.name + ".partial") if target else None
    f = open(tmp, "w", encoding="utf-8", newline="") if tmp else sys.stdout  # noqa: SIM115
    exported = rows = 0
    ok = False
    try:
        writer = None
        if args.format == "csv":
            writer = csv.DictWriter(f, COLUMNS[args.what], lineterminator="\n")
            writer.writeheader()
        bars = out.Progress(enabled=True, every_s=10.0)
        with bars:
            for i, name in enumerate(names, 1):
                try:
                    c = conn.raw("GetCall", pb.GetCallRequest(audio_name=name,
                                                              batch_id=args.batch))
                except grpc.RpcError as e:
                    if e.code() == grpc.StatusCode.NOT_FOUND:
                        continue  # a file that never became a call row
                    raise conn.error(e) from None
                for r in rows_of(c, args.what):
                    if writer is not None:
                        writer.writerow(r)
                    else:
                        out.print_jsonl(r, file=f)
                    rows += 1
                f.flush()
                exported += 1
                bars.update("export", i, len(names), f"{i}/{len(names)} calls, {rows} rows",
                            final=i == len(names))
        ok = exported >= expected
    finally:
        if tmp is not None:
            f.close()
            if ok:
                os.replace(tmp, target)
            else:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
    if not ok:
        raise CtlError(f"incomplete: exported {exported} of {expected} calls of batch "
                       f"{args.batch}; the daemon's event log does not name the others "
                       f"(cofi.v1 has no call listing RPC)", EXIT_TASK_FAILED)
    out.say(f"exported {rows} {args.what} row(s) of {exported} call(s)"
            + (f" to {target}" if target else ""))
    return EXIT_OK


def register(sub, common, make) -> None:
    p = make(sub, "export", "a batch's answers, transcripts or trades as CSV or JSON lines",
             """examples:
  cofictl export --batch 42 --what answers --format csv -o batch42-answers.csv
  cofictl export --batch 42 --what transcripts --format jsonl | gzip > t42.jsonl.gz
  cofictl export --batch 42 --what trades --format csv

Streams one call at a time; with -o the file appears only when the export is complete.
Exit 1 when not every call of the batch could be exported.""", common, json=False)
    p.add_argument("--batch", type=int, required=True, metavar="ID")
    p.add_argument("--what", choices=sorted(COLUMNS), required=True)
    p.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    p.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    p.add_argument("--partial", action="store_true",
                   help="allow a batch that is not Completed yet (best effort)")
    p.set_defaults(func=cmd_export)
