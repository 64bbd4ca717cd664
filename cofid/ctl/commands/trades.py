"""cofictl trades: a batch's verdicts per booked trade (ListTradeVerdicts; role viewer).

Text (a table), --json (one document, exact values) or --format csv (one row per trade,
each field's booked / heard / agree in columns). Every page is asked for in turn
(ListTradeVerdicts, 500 a page) and printed as it comes. Nothing from the daemon reaches
the terminal or a spreadsheet unescaped (cofid/ctl/escape.py): CSV cells get both
escapes (a CSV on stdout is on a terminal too); --json keeps the exact values, its
strings JSON-escaped (cofid/ctl/json_safe.py).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator

from cofid.ctl import output as out
from cofid.ctl.commands import MakeParser, SubParsers
from cofid.ctl.connect import EXIT_OK, EXIT_USAGE, Connection, CtlError
from cofid.ctl.escape import csv_cell
from cofid.ctl.escape import terminal_text as terminal
from cofid.ctl.json_safe import json_text
from cofid.ctl.paging import paged
from protos.cofi.v1 import cofi_pb2 as pb

VERDICTS = ("confirmed", "mismatch", "no_call", "call_unusable", "pending")
NEEDS_A_PERSON = ("mismatch", "no_call", "call_unusable")
FIELDS = ("symbol", "side", "quantity", "price", "order_type")
CSV_COLUMNS = (
    ["batch_id", "trade_id", "verdict", "audio_name", "call_id", "decided_at", "reason"]
    + [f"{f}_{part}" for f in FIELDS for part in ("booked", "heard", "agree")]
    + ["evidence"]
)


def iter_verdicts(
    conn: Connection, batch_id: int, verdicts: list[str]
) -> Iterator[pb.TradeVerdict]:
    req = pb.ListTradeVerdictsRequest(batch_id=batch_id, verdicts=verdicts)
    return paged(conn, "ListTradeVerdicts", req, "verdicts")


def evidence_text(v: pb.TradeVerdict) -> str:
    return " | ".join(f"[{s.start:.1f}-{s.end:.1f}] {s.text}" for s in v.evidence)


def csv_row(v: pb.TradeVerdict) -> list[str]:
    by_name = {f.field: f for f in v.fields}
    cells: list[object] = [
        v.batch_id,
        v.trade_id,
        v.verdict,
        v.audio_name,
        v.call_id or "",
        out.ts_text(v.decided_at),
        v.reason,
    ]
    for name in FIELDS:
        f = by_name.get(name)
        if f is None:
            cells += ["", "", ""]
        else:
            cells += [
                f.booked if f.HasField("booked") else "",
                f.heard if f.HasField("heard") else "",
                "yes" if f.agree else "no",
            ]
    cells.append(evidence_text(v))
    return [csv_cell(terminal(c)) for c in cells]


def disagreeing(v: pb.TradeVerdict) -> str:
    return ", ".join(f.field for f in v.fields if not f.agree)


def cmd_trades(conn: Connection, args: argparse.Namespace) -> int:
    if args.json and args.format != "text":
        raise CtlError("--json and --format exclude each other", EXIT_USAGE)
    wanted = list(NEEDS_A_PERSON) if args.needs_person else (args.verdict or [])
    rows = iter_verdicts(conn, args.batch, wanted)
    if args.json:
        doc = {"batch_id": args.batch, "verdicts": [out.to_dict(v) for v in rows]}
        sys.stdout.write(json_text(doc) + "\n")
        return EXIT_OK
    if args.format == "csv":
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for v in rows:
            w.writerow(csv_row(v))
        sys.stdout.flush()
        return EXIT_OK
    out.table(
        ["trade id", "verdict", "call", "fields off", "reason"],
        [
            (
                terminal(v.trade_id),
                v.verdict,
                terminal(v.audio_name) or "-",
                disagreeing(v) or "-",
                terminal(v.reason),
            )
            for v in rows
        ],
        max_width=70,
    )
    return EXIT_OK


def register(sub: SubParsers, common: argparse.ArgumentParser, make: MakeParser) -> None:
    p = make(
        sub,
        "trades",
        "a batch's verdict per booked trade (confirmed, mismatch, ...)",
        """examples:
  cofictl trades --batch 42
  cofictl trades --batch 42 --verdict mismatch --verdict no_call
  cofictl trades --batch 42 --needs-person --format csv > to-review.csv
  cofictl trades --batch 42 --json | jq '.verdicts[] | select(.verdict == "mismatch")'

Verdicts: confirmed, mismatch, no_call, call_unusable, pending (README "Verdicts").
CSV cells that a spreadsheet would take for a formula start with an apostrophe;
control characters in text and CSV print as escapes (\\x1b, \\n). --json holds the
exact values.""",
        common,
    )
    p.add_argument("--batch", type=int, required=True, metavar="ID")
    p.add_argument(
        "--verdict",
        action="append",
        choices=VERDICTS,
        metavar="VERDICT",
        help="only this verdict (repeatable): " + ", ".join(VERDICTS),
    )
    p.add_argument("--needs-person", action="store_true", help="only " + ", ".join(NEEDS_A_PERSON))
    p.add_argument("--format", choices=("text", "csv"), default="text")
    p.set_defaults(func=cmd_trades)
