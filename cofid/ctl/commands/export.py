"""cofictl export: a batch's answers, transcripts or trades as CSV or JSON lines.

1. GetBatch: whether the batch is Completed (else refused unless --partial) and its
   number of calls (sum of call_status_counts), for the progress line and a final check.
2. ListCalls{batch_id, full: true} page by page, following next_page_token: the calls
   come in call id order with their transcripts, trades and answers. Each page's rows are
   written and flushed before the next page is asked for, so memory holds one page (at
   most PAGE_SIZE calls, and the daemon caps a reply at about 3 MiB), never the batch.

Row order: calls in call id order (the order the daemon registered them, which ListCalls
pages by; sorting by audio name would need the whole batch in memory), and within a call
the order GetCall gives (segments, extracted then mapped trades, questions).

With -o the rows go to FILE.partial, renamed to FILE only when every page arrived and the
number of calls matches GetBatch's count (a Completed batch's calls do not change); on any
error the partial file is removed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cofid.ctl import output as out
from cofid.ctl.commands import MakeParser, SubParsers
from cofid.ctl.connect import EXIT_OK, EXIT_TASK_FAILED, EXIT_USAGE, Connection, CtlError
from cofid.ctl.escape import csv_row, terminal_text
from protos.cofi.v1 import cofi_pb2 as pb

COLUMNS = {
    "answers": ["batch_id", "call_id", "audio_name", "call_status", "lang", "question_id",
                "question", "answer", "source", "evidence"],
    "transcripts": ["batch_id", "call_id", "audio_name", "lang", "segment", "start", "end",
                    "speaker", "text"],
    "trades": ["batch_id", "call_id", "audio_name", "kind", "trade_index", "trade_id",
               "symbol", "side", "quantity", "price", "order_type", "trade_time", "evidence"],
}
PAGE_SIZE = 100


def rows_of(c: pb.Call, what: str) -> Iterator[dict[str, Any]]:
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


def shown(row: dict[str, Any]) -> dict[str, Any]:
    return {k: terminal_text(v) for k, v in row.items()}


def iter_calls(conn: Connection, batch_id: int) -> Iterator[list[pb.Call]]:
    """The batch's calls, full, one ListCalls page at a time (call id order)."""
    token = ""
    while True:
        reply = conn.call("ListCalls", pb.ListCallsRequest(
            batch_id=batch_id, page_size=PAGE_SIZE, page_token=token, full=True))
        yield list(reply.calls)
        token = reply.next_page_token
        if not token:
            return


def export_format(args: argparse.Namespace) -> str:
    """--format, or JSON lines under the global --json (which never means CSV)."""
    if args.json and args.format == "csv":
        raise CtlError("--json and --format csv contradict each other; choose one", EXIT_USAGE)
    return args.format or ("jsonl" if args.json else "csv")


def cmd_export(conn: Connection, args: argparse.Namespace) -> int:
    args.format = export_format(args)
    batch = conn.call("GetBatch", pb.GetBatchRequest(batch_id=args.batch))
    expected = sum(batch.call_status_counts.values())
    completed = batch.summary.status == "Completed"
    if not completed:
        if not args.partial:
            raise CtlError(f"batch {args.batch} is {batch.summary.status}, not Completed; "
                           f"export it when it is, or pass --partial", EXIT_USAGE)
        out.say(f"warning: batch {args.batch} is {batch.summary.status}; exporting the calls' "
                f"results so far")
    out.say(f"batch {args.batch}: {expected} call(s)")
    target = Path(args.output) if args.output and args.output != "-" else None
    tmp = target.with_name(target.name + ".partial") if target else None
    f = open(tmp, "w", encoding="utf-8", newline="") if tmp else sys.stdout  # noqa: SIM115
    exported = rows = 0
    ok = False
    try:
        writer = None
        # Formula-safe cells always (cofid.ctl.escape.csv_cell); on a terminal, control
        # characters shown escaped too (a file keeps them: they are data).
        on_tty = tmp is None and sys.stdout.isatty()
        if args.format == "csv":
            writer = csv.DictWriter(f, COLUMNS[args.what], lineterminator="\n")
            writer.writeheader()
        bars = out.Progress(enabled=True, every_s=10.0)
        with bars:
            for page in iter_calls(conn, args.batch):
                for c in page:
                    for r in rows_of(c, args.what):
                        if writer is not None:
                            writer.writerow(csv_row(r if not on_tty else shown(r)))
                        else:
                            out.print_jsonl(r, file=f)
                        rows += 1
                exported += len(page)
                f.flush()
                total = max(expected, exported)
                bars.update("export", exported, total,
                            f"{exported}/{total} calls, {rows} rows", final=False)
            bars.update("export", exported, max(expected, exported),
                        f"{exported} calls, {rows} rows", final=True)
        ok = exported == expected or not completed
    finally:
        if tmp is not None and target is not None:  # tmp exists only beside a target
            f.close()
            if ok:
                os.replace(tmp, target)
            else:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
    if not ok:
        raise CtlError(f"incomplete: listed {exported} of {expected} calls of batch "
                       f"{args.batch} (did the batch change during the export?)",
                       EXIT_TASK_FAILED)
    out.say(f"exported {rows} {args.what} row(s) of {exported} call(s)"
            + (f" to {target}" if target else ""))
    return EXIT_OK


def register(sub: SubParsers, common: argparse.ArgumentParser, make: MakeParser) -> None:
    p = make(sub, "export", "a batch's answers, transcripts or trades as CSV or JSON lines",
             """examples:
  cofictl export --batch 42 --what answers --format csv -o batch42-answers.csv
  cofictl export --batch 42 --what transcripts --format jsonl | gzip > t42.jsonl.gz
  cofictl export --batch 42 --what trades --format csv

Streams a page of calls at a time (ListCalls), in call id order; with -o the file
appears only when the export is complete. Exit 1 when the calls listed do not add up to
the batch's call count. --json (before or after the subcommand) selects JSON lines.""",
             common)
    p.add_argument("--batch", type=int, required=True, metavar="ID")
    p.add_argument("--what", choices=sorted(COLUMNS), required=True)
    p.add_argument("--format", choices=("csv", "jsonl"), default=None,
                   help="csv (the default; cells that a spreadsheet would run as a formula "
                        "get a leading ') or jsonl (also what the global --json selects)")
    p.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    p.add_argument("--partial", action="store_true",
                   help="allow a batch that is not Completed yet (its results so far)")
    p.set_defaults(func=cmd_export)
