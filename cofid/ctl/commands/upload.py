"""cofictl upload: UploadAudit (client streaming: a header, then chunks of at most 1 MiB).

Each file is hashed first (SHA-256 in the header, the daemon verifies it), then streamed
from disk a chunk at a time, so memory stays flat whatever the file sizes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from cofid.ctl import output as out
from cofid.ctl.commands import MakeParser, SubParsers
from cofid.ctl.commands.tasks import add_wait, finish
from cofid.ctl.connect import EXIT_USAGE, Connection, CtlError
from protos.cofi.v1 import cofi_pb2 as pb

CHUNK = 1024 * 1024  # the contract's maximum


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def messages(paths: list[Path], header: pb.UploadHeader, sent: list[int],
             on_progress: Callable[[], None]) -> Iterator[pb.UploadRequest]:
    yield pb.UploadRequest(header=header)
    for i, path in enumerate(paths):
        offset = 0
        with path.open("rb") as f:
            while data := f.read(CHUNK):
                yield pb.UploadRequest(chunk=pb.UploadChunk(file_index=i, data=data,
                                                            offset=offset))
                offset += len(data)
                sent[0] += len(data)
                on_progress()


def cmd_upload(conn: Connection, args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.files]
    for p in paths:
        if not p.is_file():
            raise CtlError(f"{p}: no such file", EXIT_USAGE)
    names = [p.name for p in paths]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise CtlError(f"the same file name twice: {', '.join(sorted(dup))}", EXIT_USAGE)
    header = pb.UploadHeader(process_id=args.process_id,
                             category_mapping_id=args.category_mapping_id,
                             replace=args.replace)
    total = 0
    for p in paths:
        size = os.path.getsize(p)
        total += size
        header.files.append(pb.UploadFile(name=p.name, size_bytes=size, sha256=sha256_of(p)))
    sent = [0]
    lock = threading.Lock()
    with out.Progress(enabled=not args.json) as bars:
        def on_progress() -> None:
            with lock:
                bars.update("upload", sent[0], total,
                            f"{out.human_bytes(sent[0])} / {out.human_bytes(total)}",
                            final=sent[0] >= total)

        reply = conn.call("UploadAudit", messages(paths, header, sent, on_progress),
                          timeout=args.upload_timeout)
    lead = (f"task {reply.task_id}: uploaded {len(reply.stored_names)} file(s) "
            f"({out.human_bytes(total)}) as batch {reply.batch_id}")
    return finish(conn, args, out.to_dict(reply), reply.task_id, lead)


def register(sub: SubParsers, common: argparse.ArgumentParser, make: MakeParser) -> None:
    p = make(sub, "upload", "upload recordings and audit them as a new batch",
             """examples:
  cofictl upload calls/*.wav --process-id 1 --category-mapping-id 1
  cofictl upload a.wav b.wav --process-id 1 --category-mapping-id 2 --wait --json""",
             common)
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files (.wav, .mp3, ...)")
    p.add_argument("--process-id", type=int, required=True)
    p.add_argument("--category-mapping-id", type=int, required=True)
    p.add_argument("--replace", action="store_true",
                   help="allow names uploaded before (the new upload is a new batch)")
    p.add_argument("--upload-timeout", type=float, default=3600.0, metavar="SECONDS",
                   help="deadline for sending every byte (default 3600)")
    add_wait(p)
    p.set_defaults(func=cmd_upload)
