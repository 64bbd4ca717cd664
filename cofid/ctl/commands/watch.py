"""cofictl watch: a live tail of WatchEvents that survives daemon restarts.

The cursor is the id of the last event printed (or, before the first event, the
last_event_id of the first heartbeat: every matching event up to it was already sent).
When the stream breaks (daemon stopping, restarting, unreachable, fell behind) cofictl
reconnects with exponential backoff (0.2 s doubling to 5 s) and asks for
``from_event_id = cursor``: the daemon replays what was committed meanwhile, then goes
live — so nothing is printed twice and nothing is skipped. Events with an id at or
below the cursor are dropped as a second guard.
"""

from __future__ import annotations

import argparse
import time

import grpc

from cofid.ctl import output as out
from cofid.ctl.commands import MakeParser, SubParsers
from cofid.ctl.connect import EXIT_OK, EXIT_UNREACHABLE, Connection, CtlError
from cofid.ctl.escape import terminal_text
from protos.cofi.v1 import cofi_pb2 as pb

RETRY_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
               grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED,
               grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)
STAGES = ("file_distribution", "callmetadata", "trademetadata", "denoise", "ivr", "lid",
          "triaging", "stt", "llm1", "llm2", "reaudit", "pipeline")


def event_line(e: pb.Event) -> str:
    prog = ""
    if e.HasField("total_files"):
        prog = f"{e.processed_files if e.HasField('processed_files') else 0}/{e.total_files}"
    parts = [f"{e.id:>8}", out.ts_text(e.timestamp), f"batch={e.batch_id}",
             f"{terminal_text(e.stage):<17}", f"{terminal_text(e.event_type):<14}",
             f"{terminal_text(e.status):<10}"]
    tail = " ".join(x for x in (e.file_name, prog, e.gpu_ip and f"gpu={e.gpu_ip}",
                                e.error_message and f"error={e.error_message}") if x)
    # One event, one line: a newline or an escape sequence in a name is shown escaped.
    return " ".join(parts) + (" " + terminal_text(tail) if tail else "")


def cmd_watch(conn: Connection, args: argparse.Namespace) -> int:
    stages = [s.strip() for x in args.stage or [] for s in x.split(",") if s.strip()]
    cursor: int | None = args.from_event_id
    printed = 0
    delay = 0.2
    down_since: float | None = None
    try:
        while True:
            # batched: several events per message, far cheaper for the daemon to send.
            req = pb.WatchRequest(batch_id=args.batch, stages=stages, errors_only=args.errors,
                                  batched=True)
            if cursor is not None:
                req.from_event_id = cursor
            it = conn.stream("WatchEvents", req)
            first = True
            try:
                for m in it:
                    if first:
                        where = "live" if cursor is None else f"after event {cursor}"
                        out.say(f"watching {conn.target} ({where})")
                        first, delay, down_since = False, 0.2, None
                    kind = m.WhichOneof("msg")
                    if kind in ("event", "events"):
                        for e in [m.event] if kind == "event" else m.events.events:
                            if cursor is not None and e.id <= cursor:
                                continue
                            if args.json:
                                out.print_jsonl(out.to_dict(e))
                            else:
                                print(event_line(e), flush=True)
                            cursor = e.id
                            printed += 1
                            if args.count and printed >= args.count:
                                it.cancel()
                                return EXIT_OK
                    elif kind == "heartbeat":
                        if cursor is None:
                            cursor = m.heartbeat.last_event_id
                    else:
                        out.say(f"notice {m.notice.code}: {m.notice.message}")
                why = "the stream ended"
            except grpc.RpcError as e:
                if e.code() not in RETRY_CODES:
                    raise conn.error(e) from None
                why = f"{e.code().name}: {e.details()}"
            finally:
                it.cancel()
            now = time.monotonic()
            down_since = down_since if down_since is not None else now
            if args.retry_for and now - down_since > args.retry_for:
                raise CtlError(f"UNAVAILABLE: gave up after {args.retry_for:.0f} s without "
                               f"cofid at {conn.target} ({why})", EXIT_UNREACHABLE,
                               "UNAVAILABLE")
            resume = "live" if cursor is None else f"after event {cursor}"
            if cursor is None:
                out.say("warning: no cursor yet, events during the outage may be missed")
            out.say(f"connection lost ({why}); reconnecting in {delay:.1f} s ({resume})")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
            conn.open()
    except KeyboardInterrupt:
        out.say(f"stopped after {printed} event(s)"
                + (f"; resume with --from-event-id {cursor}" if cursor is not None else ""))
        return EXIT_OK


def register(sub: SubParsers, common: argparse.ArgumentParser, make: MakeParser) -> None:
    p = make(sub, "watch", "live tail of the event stream (survives daemon restarts)",
             """examples:
  cofictl watch
  cofictl watch --batch 42 --stage stt,llm2
  cofictl watch --errors --json | jq -r .error_message
  cofictl watch --from-event-id 0 --batch 42 --json > batch42-events.jsonl

Ctrl-C ends it (exit 0) and prints the id to resume from.""", common)
    p.add_argument("--batch", type=int, default=0, metavar="ID",
                   help="only events of this batch (default: all, reaudit events included)")
    p.add_argument("--stage", action="append", metavar="S",
                   help=f"only these stages (repeat or comma-separate): {', '.join(STAGES)}")
    p.add_argument("--errors", action="store_true",
                   help="only errors (event type error or status failed)")
    p.add_argument("--from-event-id", type=int, default=None, metavar="N",
                   help="first replay retained events after N (0: all), then go live "
                        "(default: live only)")
    p.add_argument("--count", type=int, default=0, metavar="N",
                   help="stop after N events (default: run until interrupted)")
    p.add_argument("--retry-for", type=float, default=600.0, metavar="SECONDS",
                   help="give up (exit 3) after this long without the daemon (0: never; "
                        "default 600)")
    p.set_defaults(func=cmd_watch)
