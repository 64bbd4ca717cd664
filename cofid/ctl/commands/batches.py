"""cofictl batches, batch, call: read-only views (role viewer)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from datetime import date

from cofid.ctl import output as out
from cofid.ctl.commands import MakeParser, SubParsers
from cofid.ctl.connect import EXIT_OK, EXIT_USAGE, Connection, CtlError
from cofid.ctl.escape import terminal_text as terminal
from cofid.ctl.paging import paged
from protos.cofi.v1 import cofi_pb2 as pb


def _date(value: str, flag: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError:
        raise CtlError(f"{flag}: {value!r} is not a date YYYY-MM-DD", EXIT_USAGE) from None
    return value


def iter_batches(conn: Connection, date_from: str | None, date_to: str | None,
                 limit: int) -> Iterator[pb.BatchSummary]:
    """Newest first, a page at a time; at most `limit` (0: all)."""
    req = pb.ListBatchesRequest()
    if date_from:
        req.date_from = date_from
    if date_to:
        req.date_to = date_to
    return paged(conn, "ListBatches", req, "batches", limit)


def cmd_batches(conn: Connection, args: argparse.Namespace) -> int:
    if args.date and args.since:
        raise CtlError("--date and --since exclude each other", EXIT_USAGE)
    d = _date(args.date, "--date") if args.date else None
    since = _date(args.since, "--since") if args.since else None
    rows = iter_batches(conn, d or since, d, args.limit)
    if args.json:
        out.print_json({"batches": [out.to_dict(b) for b in rows]})
        return EXIT_OK
    out.table(["id", "date", "no", "status", "source", "files", "created", "completed"],
              [(b.batch_id, b.batch_date, b.batch_number, b.status, b.source, b.total_files,
                out.ts_text(b.created_at), out.ts_text(b.completed_at)) for b in rows])
    return EXIT_OK


def cmd_batch(conn: Connection, args: argparse.Namespace) -> int:
    b = conn.call("GetBatch", pb.GetBatchRequest(batch_id=args.batch_id))
    if args.json:
        out.print_json(out.to_dict(b))
        return EXIT_OK
    s = b.summary
    out.fields([("batch", s.batch_id), ("date", f"{s.batch_date} #{s.batch_number}"),
                ("status", s.status), ("source", s.source + (f" {b.source_dir}"
                                                             if b.source_dir else "")),
                ("files", s.total_files), ("process", b.process_id),
                ("category mapping", b.category_mapping_id),
                ("created", out.ts_text(s.created_at)),
                ("completed", out.ts_text(s.completed_at) or "-")])
    print()
    out.table(["stage", "status", "total", "done", "failed", "skipped", "rate/min"],
              [(st.stage, st.status, st.total, st.done, st.failed, st.skipped,
                f"{st.files_per_minute:.1f}") for st in b.stages])
    if b.call_status_counts:
        print()
        out.table(["call status", "calls"], sorted(b.call_status_counts.items()))
    if s.verdict_counts:
        print()
        out.table(["verdict", "trades"], verdict_rows(s.verdict_counts))
    return EXIT_OK


VERDICT_ORDER = ("confirmed", "mismatch", "no_call", "call_unusable", "pending")


def verdict_rows(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """The verdict counts in the README's order, unknown verdicts after, by name."""
    known = [(v, counts[v]) for v in VERDICT_ORDER if v in counts]
    return known + sorted((terminal(k), n) for k, n in counts.items() if k not in VERDICT_ORDER)


def cmd_call(conn: Connection, args: argparse.Namespace) -> int:
    c = conn.call("GetCall", pb.GetCallRequest(audio_name=args.audio, batch_id=args.batch))
    if args.json:
        out.print_json(out.to_dict(c))
        return EXIT_OK
    pairs = [("call", c.call_id), ("audio", c.audio_name), ("batch", c.batch_id),
             ("status", c.status), ("language", f"{c.lang} ({c.language_id})"),
             ("duration", f"{c.audio_duration:.1f} s"), ("gpu", c.gpu_ip or "-")]
    if c.failed_stage:
        pairs.append(("failed", f"{c.failed_stage}: {c.failure_reason}"))
    out.fields(pairs)
    print(f"\ntranscript ({len(c.transcript)} segments):")
    for seg in c.transcript:
        who = f" {terminal(seg.speaker)}:" if seg.speaker else ""
        print(f"  [{seg.start:7.1f} – {seg.end:7.1f}]{who} {terminal(seg.text)}")
    print(f"\nextracted trades ({len(c.extracted_trades)}):")
    if c.extracted_trades:
        out.table(["#", "trade id", "symbol", "side", "qty", "price", "type", "evidence"],
                  [(x.trade_index, x.trade_id, x.symbol, x.side, x.quantity, x.price,
                    x.order_type, x.evidence) for x in c.extracted_trades], max_width=50)
    print(f"\nmapped trades ({len(c.mapped_trades)}):")
    if c.mapped_trades:
        out.table(["trade id", "symbol", "side", "qty", "price", "time"],
                  [(x.trade_id, x.symbol, x.side, x.quantity, x.price,
                    out.ts_text(x.trade_time)) for x in c.mapped_trades])
    print(f"\naudit answers ({len(c.audit_answers)}):")
    if c.audit_answers:
        out.table(["id", "question", "answer", "source", "evidence"],
                  [(a.question_id, a.question, a.answer, a.source, a.evidence)
                   for a in c.audit_answers], max_width=50)
    return EXIT_OK


def register(sub: SubParsers, common: argparse.ArgumentParser, make: MakeParser) -> None:
    p = make(sub, "batches", "list batches, newest first",
             """examples:
  cofictl batches
  cofictl batches --date 2026-11-22
  cofictl batches --since 2026-11-01 --limit 0 --json""", common)
    p.add_argument("--date", help="only batches of this date (YYYY-MM-DD)")
    p.add_argument("--since", help="only batches of this date or later (YYYY-MM-DD)")
    p.add_argument("--limit", type=int, default=50, help="at most this many (0: all; default 50)")
    p.set_defaults(func=cmd_batches)

    p = make(sub, "batch", "one batch: stage table (status, done, failed, rate) and call counts",
             """examples:
  cofictl batch 42
  cofictl batch 42 --json | jq '.stages[] | select(.failed > 0)'""", common)
    p.add_argument("batch_id", type=int, metavar="ID")
    p.set_defaults(func=cmd_batch)

    p = make(sub, "call", "one call: language, duration, status, transcript, trades, answers",
             """examples:
  cofictl call 20240611_101502_AG17_C4411.wav
  cofictl call 20240611_101502_AG17_C4411.wav --batch 42 --json""", common)
    p.add_argument("audio", help="call.audioName")
    p.add_argument("--batch", type=int, default=0,
                   help="the call of this batch (default: the latest batch holding it)")
    p.set_defaults(func=cmd_call)
