"""A batch directory whose every trade verdict is known in advance (the verdict tests).

`write_verdict_batch(dir)` writes calls named for cofid.backends.fake.default_script (the
name decides the language, duration, segment count and failures; the fake transcript
says "I want to buy {q} shares of INFY at market price", reads it back, and from the
fifth segment on has the client's "Yes, I confirm."), WAV bytes the fake backends never
decode, and the two CSVs. Each trade is booked 20 s into its call (inside its window).

  v00_conf.wav     7 segments, q=250: TC1 INFY BUY 250               -> confirmed
  v00_qty.wav      5 segments, q=200: TQ1 INFY BUY 2000              -> mismatch (quantity)
  v03_unconf.wav   4 segments, q=350: TU1 INFY BUY 350               -> mismatch (never "yes")
  v00_two.wav      5 segments, q=200: TW1 INFY BUY 200, TW2 TCS SELL -> confirmed, mismatch
  v05_flaky.wav    7 segments, q=300, fails each stage's first try: TF1 -> confirmed
  v10_short.wav    2.5 s: TS1                                         -> call_unusable
  v11_fr.wav       an unsupported language: TL1                      -> call_unusable
  v12_corrupt.wav  not audio, fails denoise: TX1                     -> call_unusable
  v13_none.wav     a call without trades                             (no row)
  TN1              a client who never called                         -> no_call
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path

from cofid.backends.fake import default_script
from cofid.testing.batches import _wav_bytes

DAY = datetime(2026, 1, 5, 4, 0, 0)
TRADE_OFFSET_S = 20

# name -> trades (id, symbol, side, quantity, price)
CALLS: dict[str, tuple[tuple[str, str, str, int, str], ...]] = {
    "v00_conf.wav": (("TC1", "INFY", "BUY", 250, "1500"),),
    "v00_qty.wav": (("TQ1", "INFY", "BUY", 2000, "1500"),),
    "v03_unconf.wav": (("TU1", "INFY", "BUY", 350, "1500"),),
    "v00_two.wav": (("TW1", "INFY", "BUY", 200, "1500"), ("TW2", "TCS", "SELL", 10, "3400")),
    "v05_flaky.wav": (("TF1", "Infosys", "BUY", 300, "1500"),),
    "v10_short.wav": (("TS1", "INFY", "BUY", 100, "1500"),),
    "v11_fr.wav": (("TL1", "INFY", "BUY", 100, "1500"),),
    "v12_corrupt.wav": (("TX1", "INFY", "BUY", 100, "1500"),),
    "v13_none.wav": (),
}
NO_CALL_TRADES = (("TN1", "CNONE", "ITC", "BUY", 1, "450"),)


def write_verdict_batch(directory: Path) -> list[str]:
    """Write the batch into `directory` (created); the audio names, sorted."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    calls, trades = io.StringIO(), io.StringIO()
    cw, tw = csv.writer(calls, lineterminator="\n"), csv.writer(trades, lineterminator="\n")
    cw.writerow(["audioName", "clientCode", "agentId", "callStartTime", "callEndTime"])
    tw.writerow(["tradeId", "clientCode", "symbol", "side", "quantity", "price", "tradeTime"])
    for i, (name, booked) in enumerate(sorted(CALLS.items())):
        fc = default_script(name)
        client = f"C{i:03d}"
        start = DAY + timedelta(minutes=10 * i)
        end = start + timedelta(seconds=max(1, round(fc.duration_s)))
        cw.writerow([name, client, "AG01", _t(start), _t(end)])
        if fc.corrupt:
            (d / name).write_bytes(b"this is not audio \x00\x01\x02" * 4)
        else:
            (d / name).write_bytes(_wav_bytes(i))
        at = start + timedelta(seconds=min(TRADE_OFFSET_S, max(0, round(fc.duration_s) - 1)))
        for tid, sym, side, qty, price in booked:
            tw.writerow([tid, client, sym, side, qty, price, _t(at)])
    for tid, client, sym, side, qty, price in NO_CALL_TRADES:
        tw.writerow([tid, client, sym, side, qty, price, _t(DAY + timedelta(minutes=3))])
    (d / "callMetadata.csv").write_text(calls.getvalue(), encoding="utf-8")
    (d / "tradeMetadata.csv").write_text(trades.getvalue(), encoding="utf-8")
    return sorted(CALLS)


def _t(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S")
