"""A small, real batch for the demo and the tests: synthesized calls plus the two CSVs.

Speech comes from espeak-ng (Debian package ``espeak-ng``), so the calls are real audio that
Whisper can identify and transcribe, yet the batch is deterministic and builds in seconds.
Calls are mono at 8 kHz or 16 kHz like phone recordings, with a little seeded noise.

The batch holds English trade calls (agent and client in different voices, with the
recording disclosure, client identification, order read-back and confirmation), a Hindi call
in Devanagari, a romanized Hinglish call, a call that opens with an IVR prompt and DTMF
tones, a call under 5 s, a German call (unsupported language) and a call without trades.
Its trades give every verdict the demo shows (cofid.domain.verdicts): Tata Motors read
back and confirmed (confirmed), HDFC Bank booked at ten times the quantity said (mismatch), a
second Infosys trade booked hours after its call and a client who never called (no_call),
and the German call's trade (call_unusable).
The IVR prompt is also written to ``ivr_prompts/`` beside the batch (not inside it: the
batch watcher would take it for a call) for the IVR engine's known-prompt library.

    python -m cofid.demo.sample_batch DIR     # writes DIR, prints the manifest as JSON
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

ESPEAK = "espeak-ng"
CALL_METADATA_CSV = "callMetadata.csv"
TRADE_METADATA_CSV = "tradeMetadata.csv"
IVR_PROMPTS_DIRNAME = "ivr_prompts"
IVR_PROMPT_FILE = "welcome_menu.wav"

AGENT = "en+m3"
CLIENT = "en+f2"
IVR_VOICE = "en+f4"
_TURN_GAP_S = 0.45
_DTMF_GAP_S = 0.08
_NOISE_RMS = 0.004  # about -48 dBFS: a quiet line, well under the speech

IVR_PROMPT_TEXT = (
    "Welcome to Sunrise Securities. Calls are recorded for quality and training. "
    "For trading, press 1. For account services, press 2."
)

# Standard DTMF keypad: (low group Hz, high group Hz).
DTMF_FREQUENCIES: dict[str, tuple[int, int]] = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633),
}  # fmt: skip


@dataclass(frozen=True)
class Trade:
    trade_id: str
    symbol: str
    side: str
    quantity: int
    price: float
    # Where in the call window the trade was booked (0..1); > 1 falls after the call.
    at_fraction: float = 0.8


@dataclass(frozen=True)
class CallSpec:
    name: str
    sr: int
    language: str
    client_code: str
    agent_id: str
    turns: tuple[tuple[str, str], ...]  # (espeak voice, text)
    trades: tuple[Trade, ...] = ()
    ivr_digits: str = ""  # non-empty: the call opens with the IVR prompt and these keys
    branch: str = "Mumbai"
    extra_trades: tuple[Trade, ...] = ()  # same client, booked outside the call window


def _english_trade_turns(
    client_name: str, client_code: str, side: str, quantity: int, company: str, price: int
) -> tuple[tuple[str, str], ...]:
    verb = "buy" if side == "BUY" else "sell"
    return (
        (AGENT, "Good morning. This call is being recorded for quality and compliance "
                "purposes."),
        (AGENT, f"Am I speaking with {client_name}? Please confirm your client code."),
        (CLIENT, f"Yes, this is {client_name}. My client code is "
                 f"{' '.join(client_code)}."),
        (CLIENT, f"I would like to {verb} {quantity} shares of {company} at "
                 f"{price} rupees."),
        (AGENT, f"Let me read back your order. {verb.capitalize()} {quantity} shares of "
                f"{company} at {price} rupees per share, limit order, for today. "
                f"Do you confirm?"),
        (CLIENT, "Yes, I confirm."),
        (AGENT, "Thank you. Your order has been placed. Have a nice day."),
    )  # fmt: skip


CALLS: tuple[CallSpec, ...] = (
    CallSpec(
        name="call_en_infosys.wav",
        sr=16000,
        language="en",
        client_code="C1001",
        agent_id="AG01",
        turns=_english_trade_turns("Rahul Sharma", "C1001", "BUY", 100, "Infosys", 1500),
        trades=(Trade("T9001", "INFY", "BUY", 100, 1500.0),),
        extra_trades=(Trade("T9002", "INFY", "SELL", 40, 1525.0, at_fraction=40.0),),
    ),
    # The demo's confirmed trade. Whisper base (CPU int8) heard this call's "Tata Motors",
    # 75 and 450 right; it heard "Infosys" as "infos in" and, in this voice, "State Bank
    # of India" as "Montet 8", which would make a mismatch of it.
    CallSpec(
        name="call_en_tatamotors.wav",
        sr=16000,
        language="en",
        client_code="C1002",
        agent_id="AG02",
        branch="Pune",
        turns=_english_trade_turns("Priya Nair", "C1002", "SELL", 75, "Tata Motors", 450),
        trades=(Trade("T9003", "TATAMOTORS", "SELL", 75, 450.0),),
    ),
    CallSpec(
        name="call_hi_reliance_8k.wav",
        sr=8000,
        language="hi",
        client_code="C1003",
        agent_id="AG03",
        branch="Delhi",
        turns=(
            ("hi", "नमस्ते, यह कॉल गुणवत्ता के लिए रिकॉर्ड की जा रही है।"),
            ("hi", "क्या मेरी बात अमित वर्मा जी से हो रही है?"),
            ("hi+f2", "जी हाँ, मैं अमित वर्मा बोल रहा हूँ।"),
            ("hi+f2", "मुझे रिलायंस के बीस शेयर खरीदने हैं, दो हज़ार चार सौ रुपये पर।"),
            (
                "hi",
                "आपका ऑर्डर है, रिलायंस के बीस शेयर, दो हज़ार चार सौ रुपये प्रति शेयर पर "
                "खरीदना। क्या आप पुष्टि करते हैं?",
            ),
            ("hi+f2", "हाँ, मैं पुष्टि करता हूँ।"),
            ("hi", "धन्यवाद, आपका ऑर्डर लगा दिया गया है।"),
        ),
        trades=(Trade("T9004", "RELIANCE", "BUY", 20, 2400.0),),
    ),
    CallSpec(
        name="call_hinglish_wipro.wav",
        sr=16000,
        language="hinglish",
        client_code="C1004",
        agent_id="AG01",
        turns=(
            (AGENT, "Namaste sir, yeh call quality ke liye record ho rahi hai."),
            (AGENT, "Kya meri baat Suresh Patel ji se ho rahi hai?"),
            (CLIENT, "Haan ji, main Suresh Patel bol raha hoon."),
            (
                CLIENT,
                "Mujhe Wipro ke teen sau shares buy karne hain, four hundred fifty rupees pe.",
            ),
            (
                AGENT,
                "Theek hai sir, Wipro ke three hundred shares, four hundred fifty rupees "
                "pe buy karna hai. Kya aap confirm karte hain?",
            ),
            (CLIENT, "Haan ji, main confirm karta hoon."),
        ),
        trades=(Trade("T9005", "WIPRO", "BUY", 300, 450.0),),
    ),
    CallSpec(
        name="call_ivr_hdfc_8k.wav",
        sr=8000,
        language="en",
        client_code="C1005",
        agent_id="AG04",
        ivr_digits="1",
        turns=_english_trade_turns("Neha Gupta", "C1005", "BUY", 200, "HDFC Bank", 1600),
        # The demo's mismatch: the client asks for 200 shares, the trade file books 2000
        # (a mismatch whatever else Whisper mishears in this 8 kHz IVR call).
        trades=(Trade("T9006", "HDFCBANK", "BUY", 2000, 1600.0),),
    ),
    CallSpec(
        name="call_en_balance_no_trade.wav",
        sr=16000,
        language="en",
        client_code="C1006",
        agent_id="AG02",
        branch="Pune",
        turns=(
            (
                AGENT,
                "Good afternoon. This call is being recorded for quality and compliance "
                "purposes. How may I help you?",
            ),
            (CLIENT, "Hello, I only want to know the balance in my trading account."),
            (
                AGENT,
                "Your available margin is twenty five thousand rupees. Is there anything else?",
            ),
            (CLIENT, "No, that is all. Thank you."),
        ),
    ),
    CallSpec(
        name="call_short_8k.wav",
        sr=8000,
        language="en",
        client_code="C1007",
        agent_id="AG03",
        branch="Delhi",
        turns=((CLIENT, "Hello? Sorry, wrong number."),),
    ),
    CallSpec(
        name="call_de_other.wav",
        sr=16000,
        language="other",
        client_code="C1008",
        agent_id="AG04",
        turns=(
            ("de", "Guten Tag. Dieses Gespräch wird aufgezeichnet."),
            (
                "de+f2",
                "Ich möchte hundert Aktien von Siemens zum Preis von zweihundert Euro kaufen.",
            ),
            (
                "de",
                "Ich wiederhole: hundert Aktien Siemens zu zweihundert Euro. Bestätigen "
                "Sie den Auftrag?",
            ),
            ("de+f2", "Ja, ich bestätige."),
        ),
        trades=(Trade("T9007", "SIEMENS", "BUY", 100, 200.0),),
    ),
)

# A trade of a client who has no call in the batch: triaging must leave it unmapped.
ORPHAN_TRADES: tuple[tuple[str, Trade], ...] = (("C1999", Trade("T9008", "ITC", "BUY", 10, 430.0)),)

_BATCH_DAY = datetime(2024, 5, 6, 10, 0, 0)


def synthesize(text: str, voice: str, sr: int) -> np.ndarray:
    """Speak `text` with espeak-ng and return mono float32 samples at `sr`."""
    if shutil.which(ESPEAK) is None:
        raise RuntimeError("espeak-ng is not installed (Debian package 'espeak-ng')")
    with tempfile.TemporaryDirectory(prefix="cofi-tts-") as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run(
            [ESPEAK, "-v", voice, "-s", "160", "-w", str(out), text],
            check=True,
            capture_output=True,
        )
        samples, native_sr = sf.read(str(out), dtype="float32", always_2d=False)
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    return soxr.resample(samples, native_sr, sr).astype(np.float32)


def dtmf_signal(
    digits: str, sr: int, *, tone_s: float = 0.12, gap_s: float = 0.08, level: float = 0.25
) -> np.ndarray:
    """Key presses as a phone sends them: two sines per digit, silence between digits."""
    tone_n, gap_n = int(tone_s * sr), int(gap_s * sr)
    t = np.arange(tone_n) / sr
    pieces: list[np.ndarray] = []
    for digit in digits:
        low, high = DTMF_FREQUENCIES[digit.upper()]
        pieces.append(level * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t)) / 2)
        pieces.append(np.zeros(gap_n))
    return np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)


def silence(seconds: float, sr: int) -> np.ndarray:
    return np.zeros(int(round(seconds * sr)), dtype=np.float32)


def ivr_prompt(sr: int) -> np.ndarray:
    return synthesize(IVR_PROMPT_TEXT, IVR_VOICE, sr)


def _render_call(spec: CallSpec, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The call's samples and where its IVR part ends (0 without IVR)."""
    pieces = [silence(0.3, spec.sr)]
    ivr_end = 0.0
    if spec.ivr_digits:
        pieces += [ivr_prompt(spec.sr), silence(0.6, spec.sr)]
        pieces += [dtmf_signal(spec.ivr_digits, spec.sr, gap_s=_DTMF_GAP_S)]
        # The IVR ends with the last key's tone, before the gap dtmf_signal appends.
        ivr_end = sum(len(p) for p in pieces) / spec.sr - _DTMF_GAP_S
        pieces += [silence(0.8, spec.sr)]
    for voice, text in spec.turns:
        pieces += [synthesize(text, voice, spec.sr), silence(_TURN_GAP_S, spec.sr)]
    samples = np.concatenate(pieces)
    samples = samples + rng.normal(0.0, _NOISE_RMS, samples.shape).astype(np.float32)
    peak = float(np.max(np.abs(samples)))
    if peak > 0.95:
        samples *= 0.95 / peak
    return samples.astype(np.float32), ivr_end


def _write_pcm16(path: Path, samples: np.ndarray, sr: int) -> None:
    sf.write(str(path), np.clip(samples, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def make_sample_batch(directory: Path, *, seed: int = 7) -> dict:
    """Write the demo batch into `directory`; return the manifest.

    The manifest maps each audio name to ``{"language", "has_trade", "is_short",
    "has_ivr", "duration_s", "sample_rate", "ivr_end_s", "client_code"}`` and holds
    ``"ivr_prompts_dir"``: the directory beside the batch with the known IVR prompt.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    prompts_dir = directory.parent / IVR_PROMPTS_DIRNAME
    prompts_dir.mkdir(parents=True, exist_ok=True)
    _write_pcm16(prompts_dir / IVR_PROMPT_FILE, ivr_prompt(8000), 8000)

    manifest: dict = {"ivr_prompts_dir": str(prompts_dir)}
    call_rows: list[dict[str, str]] = []
    trade_rows: list[dict[str, str]] = []
    for index, spec in enumerate(CALLS):
        rng = np.random.default_rng([seed, index])
        samples, ivr_end = _render_call(spec, rng)
        _write_pcm16(directory / spec.name, samples, spec.sr)
        duration = len(samples) / spec.sr
        start = _BATCH_DAY + timedelta(minutes=7 * index)
        end = start + timedelta(seconds=int(np.ceil(duration)))
        call_rows.append({
            "audioName": spec.name, "clientCode": spec.client_code, "agentId": spec.agent_id,
            "callStartTime": _stamp(start), "callEndTime": _stamp(end), "branch": spec.branch,
        })  # fmt: skip
        for trade in spec.trades + spec.extra_trades:
            booked = start + timedelta(seconds=int(duration * trade.at_fraction))
            trade_rows.append(_trade_row(spec.client_code, trade, booked))
        manifest[spec.name] = {
            "language": spec.language,
            "has_trade": bool(spec.trades),
            "is_short": duration < 5.0,
            "has_ivr": bool(spec.ivr_digits),
            "ivr_end_s": round(ivr_end, 3),
            "duration_s": round(duration, 3),
            "sample_rate": spec.sr,
            "client_code": spec.client_code,
        }
    for client_code, trade in ORPHAN_TRADES:
        trade_rows.append(_trade_row(client_code, trade, _BATCH_DAY + timedelta(hours=3)))

    _write_csv(directory / CALL_METADATA_CSV, call_rows)
    _write_csv(directory / TRADE_METADATA_CSV, trade_rows)
    return manifest


def _trade_row(client_code: str, trade: Trade, booked: datetime) -> dict[str, str]:
    return {
        "tradeId": trade.trade_id, "clientCode": client_code, "symbol": trade.symbol,
        "side": trade.side, "quantity": str(trade.quantity), "price": f"{trade.price:.2f}",
        "tradeTime": _stamp(booked),
    }  # fmt: skip


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cofid.demo.sample_batch",
        description="Write the demo batch (synthesized calls and CSVs) into DIR.",
    )
    parser.add_argument("directory", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(json.dumps(make_sample_batch(args.directory, seed=args.seed), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
