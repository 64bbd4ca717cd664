"""cofictl evidence: a trade's evidence bundle as a zip (GetEvidence; role viewer), and
the offline check of one.

Fetch: the stream's header lists every file (name, size, SHA-256); the bytes follow in
order. Each file is checked against its header entry as it arrives, the zip is written
to FILE.partial, checked again as a whole (as --verify does) and only then renamed to
FILE; on any error the partial file is removed. The daemon refuses a trade whose
recording is no longer on disk (FAILED_PRECONDITION: exit 5).

Verify (--verify FILE.zip, no daemon needed): manifest.json is read, and every file it
lists must be in the zip with that size and SHA-256, with no other file beside them.
Exit 0 when it verifies, 1 when it does not (each problem is named).

The recording's identity is checked on both paths: the recording in the zip against the
digest the manifest says was kept when it was first stored (recordingDigest). An intact
bundle of a recording altered since intake is not evidence of the original call: fetch
still writes it (someone must look at it) but says so and exits 1; --verify names it as
a problem. A recording stored before digests were kept has none to compare: said, not
failed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import grpc

from cofid.ctl import output as out
from cofid.ctl.commands import MakeParser, SubParsers
from cofid.ctl.connect import EXIT_OK, EXIT_TASK_FAILED, EXIT_USAGE, Connection, CtlError
from cofid.ctl.escape import terminal_text as terminal
from cofid.ctl.json_safe import json_text
from protos.cofi.v1 import cofi_pb2 as pb

FORMAT = "cofi-evidence/1"
MANIFEST = "manifest.json"
BLOCK = 1024 * 1024


# ---- verify ---------------------------------------------------------------------------


def _digest(zf: zipfile.ZipFile, name: str) -> tuple[int, str]:
    h, size = hashlib.sha256(), 0
    with zf.open(name) as f:
        while block := f.read(BLOCK):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


def verify_zip(path: Path) -> tuple[list[str], dict[str, Any]]:
    """(problems, manifest); no problem: the bundle verifies."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        return [f"not a readable zip: {e}"], {}
    with zf:
        members = [i.filename for i in zf.infolist() if not i.is_dir()]
        if MANIFEST not in members:
            return [f"no {MANIFEST} in the zip"], {}
        try:
            manifest = json.loads(zf.read(MANIFEST))
            listed = {
                str(f["name"]): (int(f["size_bytes"]), str(f["sha256"])) for f in manifest["files"]
            }
            recording = manifest["recording"]
        except (ValueError, KeyError, TypeError) as e:
            return [f"{MANIFEST} is not a manifest ({type(e).__name__}: {e})"], {}
        problems = []
        if manifest.get("format") != FORMAT:
            problems.append(f"format is {manifest.get('format')!r}, expected {FORMAT!r}")
        if len(listed) != len(manifest["files"]):
            problems.append(f"{MANIFEST} lists a file twice")
        for name in members:
            if name != MANIFEST and name not in listed:
                problems.append(f"{name}: in the zip but not in the manifest")
        for name, (size, sha) in listed.items():
            if name not in members:
                problems.append(f"{name}: in the manifest but not in the zip")
                continue
            got_size, got_sha = _digest(zf, name)
            if got_size != size:
                problems.append(f"{name}: {got_size} bytes, manifest says {size}")
            if got_sha != sha:
                problems.append(f"{name}: sha256 {got_sha}, manifest says {sha}")
        rec = listed.get(str(recording.get("name")))
        if rec is None:
            problems.append("the manifest's recording is not among its files")
        elif (recording.get("size_bytes"), recording.get("sha256")) != rec:
            problems.append("the manifest's recording entry disagrees with its file entry")
    return problems, manifest


def first_stored_finding(manifest: dict[str, Any]) -> tuple[bool | None, str]:
    """(same, what to say) for the bundle's recording against the digest kept when it
    was first stored: True it is that recording, False it differs, None nothing was kept.
    Compared from the digests themselves, not from the manifest's matches_first_stored."""
    rec = manifest.get("recording") or {}
    name = str(rec.get("name"))
    first_sha, first_size = rec.get("sha256_as_first_stored"), rec.get("size_bytes_as_first_stored")
    if not first_sha:
        note = str(rec.get("note") or "no digest was kept when it was first stored")
        return None, f"{name}: not compared with the recording as first stored ({note})"
    if (rec.get("sha256"), rec.get("size_bytes")) == (first_sha, first_size):
        return True, f"{name}: the recording as first stored (sha256 {first_sha})"
    return False, (
        f"{name} differs from the recording as first stored: sha256 {rec.get('sha256')}, "
        f"{rec.get('size_bytes')} bytes in the bundle; {first_sha}, {first_size} bytes "
        "when first stored"
    )


def cmd_verify(args: argparse.Namespace) -> int:
    path = Path(args.verify)
    problems, manifest = verify_zip(path)
    same, finding = first_stored_finding(manifest) if not problems else (None, "")
    if same is False:
        problems.append(finding)
    if problems:
        for p in problems:
            out.say(f"{terminal(path)}: {terminal(p)}")
        raise CtlError(
            f"{terminal(path)} does not verify ({len(problems)} problem(s))", EXIT_TASK_FAILED
        )
    if args.json:
        out.stdout().write(
            json_text({"verified": True, "recording_as_first_stored": same, "manifest": manifest})
            + "\n"
        )
        return EXIT_OK
    out.fields(
        [
            ("bundle", terminal(path)),
            ("trade", terminal(manifest.get("trade_id"))),
            ("batch", manifest.get("batch_id")),
            ("verdict", terminal(manifest.get("verdict"))),
            ("created", terminal(manifest.get("created_at"))),
        ]
    )
    out.table(
        ["file", "bytes", "sha256"],
        [(terminal(f["name"]), f["size_bytes"], f["sha256"]) for f in manifest["files"]],
        max_width=100,
    )
    out.say(f"{terminal(path)}: {terminal(finding)}")
    out.say(f"{terminal(path)}: verified ({len(manifest['files'])} files and the manifest)")
    return EXIT_OK


# ---- fetch ----------------------------------------------------------------------------


def _receive(
    conn: Connection, req: pb.GetEvidenceRequest, zf: zipfile.ZipFile
) -> pb.EvidenceHeader:
    """Write the stream's files into ``zf`` in order, each checked against the header."""
    header: pb.EvidenceHeader | None = None
    current = -1
    writer: Any = None
    digest = hashlib.sha256()
    size = 0

    def finish() -> None:
        assert header is not None
        f = header.files[current]
        writer.close()
        if size != f.size_bytes or digest.hexdigest() != f.sha256:
            raise CtlError(
                f"{terminal(f.name)}: received {size} bytes with sha256 "
                f"{digest.hexdigest()}, the daemon announced {f.size_bytes} "
                f"bytes with {f.sha256}",
                EXIT_TASK_FAILED,
            )

    try:
        for msg in conn.stream("GetEvidence", req, timeout=conn.timeout * 20):
            if header is None:
                if msg.WhichOneof("msg") != "header":
                    raise CtlError(
                        "the daemon's stream did not start with a header", EXIT_TASK_FAILED
                    )
                header = msg.header
                continue
            d = msg.data
            while d.file_index != current:
                if current >= 0:
                    finish()
                current += 1
                if current >= len(header.files) or d.file_index < current:
                    raise CtlError("the daemon sent files out of order", EXIT_TASK_FAILED)
                writer = zf.open(header.files[current].name, "w", force_zip64=True)
                digest, size = hashlib.sha256(), 0
            if d.offset != size:
                raise CtlError("the daemon sent a chunk out of order", EXIT_TASK_FAILED)
            writer.write(d.data)
            digest.update(d.data)
            size += len(d.data)
    except grpc.RpcError as e:
        raise conn.error(e) from None
    if header is None:
        raise CtlError("the daemon sent no bundle", EXIT_TASK_FAILED)
    if current >= 0:
        finish()
    for f in header.files[current + 1 :]:  # empty files send no chunk
        if f.size_bytes:
            raise CtlError(f"the stream ended before {terminal(f.name)}", EXIT_TASK_FAILED)
        zf.writestr(f.name, b"")
    return header


def cmd_evidence(conn: Connection, args: argparse.Namespace) -> int:
    if args.verify:
        if args.trade_id or args.output:
            raise CtlError("--verify takes only the zip: no TRADE_ID, no -o", EXIT_USAGE)
        return cmd_verify(args)
    if not args.trade_id or not args.output:
        raise CtlError("give TRADE_ID and -o FILE.zip (or --verify FILE.zip)", EXIT_USAGE)
    target = Path(args.output)
    tmp = target.with_name(target.name + ".partial")
    ok = False
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            header = _receive(
                conn, pb.GetEvidenceRequest(trade_id=args.trade_id, batch_id=args.batch), zf
            )
        problems, manifest = verify_zip(tmp)
        if problems:
            raise CtlError(
                "the bundle does not verify: " + terminal("; ".join(problems)), EXIT_TASK_FAILED
            )
        os.replace(tmp, target)
        ok = True
    finally:
        if not ok:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    if args.json:
        out.stdout().write(json_text({"output": str(target), **out.to_dict(header)}) + "\n")
    rec = header.files[0]
    out.say(
        f"wrote {terminal(target)}: trade {terminal(header.trade_id)} (batch "
        f"{header.batch_id}, {terminal(header.verdict)}), {len(header.files)} files; "
        f"recording {terminal(header.audio_name)} {out.human_bytes(rec.size_bytes)} "
        f"sha256 {rec.sha256}"
    )
    same, finding = first_stored_finding(manifest)
    if same is False:
        raise CtlError(f"{terminal(target)}: {terminal(finding)}", EXIT_TASK_FAILED)
    return EXIT_OK


def register(sub: SubParsers, common: argparse.ArgumentParser, make: MakeParser) -> None:
    p = make(
        sub,
        "evidence",
        "a trade's evidence bundle (zip) for a dispute; or check one",
        """examples:
  cofictl evidence T9001 -o T9001.zip
  cofictl evidence T9001 --batch 42 -o T9001.zip
  cofictl evidence --verify T9001.zip

The zip holds recording/<audioName>, transcript.json, extracted_trades.json,
booked_trade.json, verdict.json, audit_answers.json and manifest.json (SHA-256 of every
other file; README "Verdicts"). A trade whose recording is no longer on the daemon's
disk is refused (exit 5). --verify needs no daemon: exit 0 verified, 1 not.""",
        common,
    )
    p.add_argument("trade_id", nargs="?", metavar="TRADE_ID", help="tradeMetadata.tradeId")
    p.add_argument(
        "--batch",
        type=int,
        default=0,
        metavar="ID",
        help="the trade of this batch (default: the latest with a verdict)",
    )
    p.add_argument("-o", "--output", metavar="FILE.zip", help="write the bundle here")
    p.add_argument("--verify", metavar="FILE.zip", help="check a bundle's manifest offline")
    p.set_defaults(func=cmd_evidence)
