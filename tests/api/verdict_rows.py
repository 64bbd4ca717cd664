"""tradeVerdict rows written straight into the store, for the tests of what reads them
(ListTradeVerdicts, GetEvidence, cofictl trades / evidence, the TUI), independent of the
pipeline that decides them.

`seed_verdicts` books five trades on an uploaded batch of two calls (p1.wav, p2.wav) and
stores one verdict of each kind, including data a terminal or a spreadsheet must not
interpret (an escape sequence in a reason, a trade id and a reason that start like
formulas).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from cofid.store import tables as t

DECIDED = datetime(2026, 1, 5, 4, 30, 0, 123000)  # naive UTC, as stored
FIELDS_OK = {
    "symbol": {"booked": "INFY", "heard": "INFY", "agree": True, "note": None},
    "side": {"booked": "BUY", "heard": "BUY", "agree": True, "note": None},
    "quantity": {"booked": 100.0, "heard": 100.0, "agree": True, "note": None},
    "price": {"booked": 1500.5, "heard": 1500.5, "agree": True, "note": None},
    "order_type": {"booked": None, "heard": "LIMIT", "agree": True, "note": "no order type booked"},
}
FIELDS_BAD = {
    **FIELDS_OK,
    "quantity": {"booked": 1000.0, "heard": 100.0, "agree": False, "note": None},
}
EVIDENCE = [
    {"start": 10.0, "end": 22.0, "text": "I would like to buy 100 shares of Infosys"},
    {"start": 32.0, "end": 34.0, "text": "Yes, I confirm."},
]
ESC_REASON = "quantity: booked 1000, heard 100 \x1b[31mRED\x1b[0m\x07"

# trade id -> (audio name or None, verdict, reason, fields, evidence)
VERDICTS: dict[str, tuple[str | None, str, str, Any, Any]] = {
    "T1": ("p1.wav", "confirmed", "read back and confirmed", FIELDS_OK, EVIDENCE),
    "T2": ("p1.wav", "mismatch", ESC_REASON, FIELDS_BAD, EVIDENCE[:1]),
    "=T3": (None, "no_call", '=HYPERLINK("http://x")', None, None),
    "T4": ("p2.wav", "call_unusable", "the call failed stage stt", None, None),
    "T5": ("p2.wav", "pending", "+LLM1 has not run", None, None),
}
TRADE_IDS = sorted(VERDICTS)  # ListTradeVerdicts order: =T3, T1, T2, T4, T5 (bytewise)


def seed_verdicts(conn: Any, batch_id: int) -> dict[str, int]:
    """Insert the trades and their verdicts; returns trade id -> tradeVerdict id."""
    calls = {
        r.audioName: r.id
        for r in conn.execute(sa.select(t.call).where(t.call.c.batchId == batch_id))
    }
    for i, (tid, (audio, *_rest)) in enumerate(VERDICTS.items()):
        conn.execute(
            sa.insert(t.trade_metadata).values(
                t.to_columns(
                    "trade_metadata",
                    {
                        "batch_id": batch_id,
                        "trade_id": tid,
                        "client_code": "C001",
                        "symbol": "INFY",
                        "side": "BUY",
                        "quantity": Decimal(1000 if tid == "T2" else 100),
                        "price": Decimal("1500.50"),
                        "trade_time": datetime(2026, 1, 5, 4, i),
                        "audio_name": audio,
                    },
                )
            )
        )
    ids = {}
    for tid, (audio, verdict, reason, fields, evidence) in VERDICTS.items():
        res = conn.execute(
            sa.insert(t.trade_verdict).values(
                t.to_columns(
                    "trade_verdict",
                    {
                        "batch_id": batch_id,
                        "trade_id": tid,
                        "audio_name": audio,
                        "call_id": calls.get(audio) if audio else None,
                        "verdict": verdict,
                        "reason": reason,
                        "fields": fields,
                        "evidence": evidence,
                        "decided_at": DECIDED,
                    },
                )
            )
        )
        ids[tid] = res.inserted_primary_key[0]
    return ids
