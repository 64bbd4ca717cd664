"""UploadAudit's receiving side: one client stream in, stored files and a queued task out.

Rules, in the order they are applied (the first broken one is the error):

1. The first message is a header listing at least one file and at most
   ``grpc.max_upload_files`` (RESOURCE_EXHAUSTED).
2. Every name passes :func:`check_name` (checked, never rewritten: INVALID_ARGUMENT);
   ``size_bytes`` is ≥ 0 and at most ``grpc.max_file_bytes``; a sha256, when given, is
   64 hex digits. The sizes add up to at most ``grpc.max_upload_bytes`` and fit in the
   free space of the uploads directory (RESOURCE_EXHAUSTED). All of this is decided from
   the header, before one byte is stored.
3. An ``idempotency_key`` (1–128 of letters, digits, ``._:-``: INVALID_ARGUMENT) names
   the task; a key whose upload committed before answers with that upload's reply at
   once, nothing stored (:func:`cofid.service.uploads.replay_or_claim`; the same key for
   other files, or while its first upload streams: ALREADY_EXISTS). Then the names are
   reserved by the service (:func:`cofid.service.uploads.reserve_upload`: the question
   set exists, no name is being uploaded right now, none was uploaded before unless
   ``replace``).
4. Chunks follow, each ≤ 1 MiB, for a listed file, at the offset where that file's bytes
   end, never past ``size_bytes``. They go to ``<uploads>/<task_id>/.<i>.part``.
5. When the stream ends every file holds exactly ``size_bytes``, matches its sha256 and
   is decodable audio (libsndfile); only then are the parts renamed to their names and
   the upload handed to :func:`cofid.service.uploads.finish_upload` (batch row, task)
   with each file's size and SHA-256 as received, kept as its recordingDigest.
6. A client that sends nothing for ``grpc.upload_idle_timeout_s``, or whose upload is
   not over ``grpc.upload_deadline_s`` after it began (a trickle of tiny chunks is never
   idle), is cut off with DEADLINE_EXCEEDED naming the limit; a client that goes away
   ends as CANCELLED. How many uploads may be open at once is
   :mod:`cofid.api.admission`'s.
7. The disk filling up while the parts are written (the free-space check of rule 2 is a
   snapshot: other writers share the disk) is RESOURCE_EXHAUSTED, not an internal error.
   Whatever the failure, the task directory is removed and the names released before
   the client hears the status: nothing is kept.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import shutil
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import grpc
import soundfile as sf

from cofid.api.bridge import ApiError, exhausted, invalid
from cofid.api.validate import optional
from cofid.config.model import GrpcConfig
from cofid.domain.evidence_bundle import FileDigest
from cofid.plans import batch as bp
from cofid.service.uploads import KEY_CHARS, MAX_KEY_CHARS, task_id_for_key
from protos.cofi.v1 import cofi_pb2 as pb

if TYPE_CHECKING:
    from hashlib import _Hash

    from cofid.service.core import Service

# Calls a service coroutine from this grpc thread, its refusals mapped to status codes
# (cofid.api.servicer.ServiceCalls).
ServiceCall = Callable[..., Any]

log = logging.getLogger("cofid.api")

MAX_CHUNK = 1024 * 1024
ALLOWED = "letters, digits, '.', '_', '-', space"
# Out of space, over a quota, over the file-size limit: the storage cannot take the bytes.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
STORAGE_FULL = ("upload storage is full (no space left while storing the files): "
                "nothing was kept; retry when space is free")


def open_part(path: Path) -> BinaryIO:
    """Where an upload's bytes are written (the seam the disk-full tests fill up).
    Exclusive create ("x": O_CREAT|O_EXCL): an entry already at the path — a symlink
    planted in the fresh task directory included — is refused, never followed."""
    return open(path, "xb")  # noqa: SIM115 - closed by the caller


def check_name(name: str, seen: set[str]) -> None:
    """An upload file name: one safe path component with an audio suffix, not in seen."""
    if not name:
        raise invalid("empty file name")
    if "/" in name or "\\" in name or "\x00" in name:
        raise invalid(f"file name {name!r} contains a path separator")
    if name in (".", "..") or ".." in name:
        raise invalid(f"file name {name!r} contains '..'")
    if name.startswith("."):
        raise invalid(f"file name {name!r} is hidden (starts with '.')")
    if len(name.encode("utf-8")) > 255:
        raise invalid(f"file name {name[:40]!r}… is longer than 255 bytes")
    for ch in name:
        if ch.isascii():
            if not (ch.isalnum() or ch in "._ -"):
                raise invalid(f"file name {name!r} contains {ch!r} (allowed: {ALLOWED})")
        elif unicodedata.category(ch)[0] not in ("L", "M", "N"):
            raise invalid(f"file name {name!r} contains {ch!r} (allowed: {ALLOWED})")
    if Path(name).suffix.lower() not in bp.AUDIO_SUFFIXES:
        raise invalid(f"file name {name!r} has no audio extension "
                      f"({', '.join(bp.AUDIO_SUFFIXES)})")
    if name in seen:
        raise invalid(f"file name {name!r} given twice")
    seen.add(name)


def check_header(h: pb.UploadHeader, g: GrpcConfig) -> int:
    """Rules 1 and 2 for the header against grpc settings ``g``; the total size."""
    if not h.files:
        raise invalid("the header lists no files")
    if len(h.files) > g.max_upload_files:
        raise exhausted(f"{len(h.files)} files in one upload; the limit is "
                        f"{g.max_upload_files}")
    seen: set[str] = set()
    total = 0
    for f in h.files:
        check_name(f.name, seen)
        if f.size_bytes < 0:
            raise invalid(f"{f.name}: size_bytes must be ≥ 0")
        if f.size_bytes > g.max_file_bytes:
            raise exhausted(f"{f.name}: {f.size_bytes} bytes is over the per-file limit "
                            f"of {g.max_file_bytes}")
        if f.HasField("sha256") and (
                len(f.sha256) != 64 or any(c not in "0123456789abcdefABCDEF"
                                           for c in f.sha256)):
            raise invalid(f"{f.name}: sha256 is not 64 hex digits")
        total += f.size_bytes
    if total > g.max_upload_bytes:
        raise exhausted(f"upload of {total} bytes is over the limit of {g.max_upload_bytes}")
    return total


class IdleWatch:
    """Cuts off an upload whose client sends nothing for ``timeout`` seconds, or that is
    still going ``deadline`` seconds after it began.

    grpcio's ``context.cancel()`` sends a bare CANCELLED; the watch cancels the core call
    with DEADLINE_EXCEEDED and a message naming the limit instead, so the client learns
    why (falling back to ``context.cancel()`` should grpcio's internals change).
    """

    def __init__(self, context: grpc.ServicerContext, timeout: float,
                 deadline: float = float("inf")) -> None:
        self.context, self.timeout, self.deadline = context, timeout, deadline
        self.began = self.last = time.monotonic()
        self.stopped = threading.Event()
        self.fired = False
        self.message = ""
        threading.Thread(target=self._run, daemon=True, name="cofid-upload-idle").start()

    def _run(self) -> None:
        while not self.stopped.wait(min(1.0, self.timeout / 4, self.deadline / 4)):
            now = time.monotonic()
            if now - self.last > self.timeout:
                self.message = (f"upload idle for more than {self.timeout:g} s "
                                f"(grpc.upload_idle_timeout_s): cancelled, nothing was kept")
            elif now - self.began > self.deadline:
                self.message = (f"upload not finished within {self.deadline:g} s "
                                f"(grpc.upload_deadline_s): cancelled, nothing was kept")
            else:
                continue
            self.fired = True
            log.warning("%s", self.message)
            self._cancel()
            return

    def _cancel(self) -> None:
        try:
            call = self.context._rpc_event.call  # noqa: SLF001 - see the class docstring
            call.cancel(grpc.StatusCode.DEADLINE_EXCEEDED.value[0], self.message)
        except Exception:  # noqa: BLE001 - any grpcio without that internal
            self.context.cancel()

    def touch(self) -> None:
        self.last = time.monotonic()

    def stop(self) -> None:
        self.stopped.set()


def receive_upload(request_iterator: Iterator[pb.UploadRequest],
                   context: grpc.ServicerContext, service: Service,
                   call: ServiceCall) -> pb.UploadReply:
    """The UploadAudit handler body (see the module docstring for the rules)."""
    cfg = service.cfg
    g = cfg.grpc
    idle = IdleWatch(context, g.upload_idle_timeout_s, g.upload_deadline_s)
    reserved: list[str] = []
    claimed = ""  # the task id of a keyed upload, released with the names
    task_dir: Path | None = None
    try:
        first = next(request_iterator, None)
        idle.touch()
        if first is None or first.WhichOneof("msg") != "header":
            raise invalid("the first message must be a header")
        h = first.header
        total = check_header(h, g)
        pid = optional(h, "process_id") or cfg.audit.default_process_id
        cmid = optional(h, "category_mapping_id") or cfg.audit.default_category_mapping_id
        names = [f.name for f in h.files]
        uploads = cfg.uploads_dir
        uploads.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(uploads).free
        if total > free:
            raise exhausted(f"upload storage is full ({free} bytes free, {total} needed)")
        request = {"process_id": pid, "category_mapping_id": cmid, "replace": h.replace,
                   "files": [{"name": f.name, "size_bytes": f.size_bytes} for f in h.files]}
        task_id = str(uuid.uuid4())
        if h.idempotency_key:
            task_id = _keyed_task_id(h.idempotency_key)
            request["idempotency_key"] = h.idempotency_key
            prior = call(service.replay_or_claim_upload, task_id, request)
            if prior is not None:
                log.info("upload with idempotency key of task %s: answered again", task_id)
                return pb.UploadReply(status="queued", task_id=prior.task_id,
                                      batch_id=prior.batch_id, stored_names=prior.names)
            claimed = task_id
        call(service.reserve_upload, names, h.replace, pid, cmid)
        reserved = names
        idle.touch()
        task_dir = uploads / task_id
        task_dir.mkdir()
        parts = [task_dir / f".{i}.part" for i in range(len(names))]
        received, digests = _receive_parts(request_iterator, h, parts, idle)
        idle.stop()  # the stream ended: what follows is the server's time, not the client's
        if not context.is_active():
            raise ApiError(grpc.StatusCode.CANCELLED, "the client went away")
        _verify(h, parts, received, digests)
        final = [task_dir / n for n in names]
        for p, q in zip(parts, final, strict=True):
            os.replace(p, q)
        # The digests computed while the bytes arrived are the recordings' as first
        # stored (recordingDigest): the files are not read again for them.
        kept = {n: FileDigest(received[i], digests[i].hexdigest()) for i, n in enumerate(names)}
        batch_id = call(service.finish_upload, task_id, [str(p) for p in final],
                        pid, cmid, request, kept)
        task_dir = None  # kept
        return pb.UploadReply(status="queued", task_id=task_id, batch_id=batch_id,
                              stored_names=names)
    except grpc.RpcError:
        if idle.fired:
            raise ApiError(grpc.StatusCode.DEADLINE_EXCEEDED, idle.message) from None
        raise ApiError(grpc.StatusCode.CANCELLED, "the client went away") from None
    except OSError as e:
        if e.errno not in NO_SPACE:
            raise
        log.warning("upload refused: %s", e.strerror)
        raise exhausted(STORAGE_FULL) from None
    finally:
        idle.stop()
        if task_dir is not None:
            shutil.rmtree(task_dir, ignore_errors=True)
        if reserved or claimed:
            with contextlib.suppress(ApiError):
                call(service.release_upload, reserved, claimed)


def _keyed_task_id(key: str) -> str:
    """Rule 3's key, checked for the client; the task id it names."""
    if not 1 <= len(key) <= MAX_KEY_CHARS or not set(key) <= KEY_CHARS:
        raise invalid(f"idempotency_key must be 1–{MAX_KEY_CHARS} characters of letters, "
                      f"digits and ._:- (got {len(key)} characters)")
    return task_id_for_key(key)


def _receive_parts(request_iterator: Iterator[pb.UploadRequest], h: pb.UploadHeader,
                   parts: list[Path], idle: IdleWatch) -> tuple[list[int], list[_Hash]]:
    """Rule 4: write every chunk to its part file; bytes received and sha256 per file."""
    names = [f.name for f in h.files]
    received = [0] * len(names)
    digests = [hashlib.sha256() for _ in names]
    with contextlib.ExitStack() as stack:  # every part closed, even when a close fails
        handles = [stack.enter_context(open_part(p)) for p in parts]
        for msg in request_iterator:
            idle.touch()
            if msg.WhichOneof("msg") != "chunk":
                raise invalid("a second header (only chunks may follow the header)")
            ch = msg.chunk
            i = ch.file_index
            if i >= len(names):
                raise invalid(f"chunk for unknown file_index {i} "
                              f"({len(names)} files in the header)")
            if len(ch.data) > MAX_CHUNK:
                raise invalid(f"{names[i]}: chunk of {len(ch.data)} bytes is over 1 MiB")
            if ch.offset != received[i]:
                raise invalid(f"{names[i]}: chunk offset {ch.offset} does not continue "
                              f"the file (expected {received[i]})")
            if received[i] + len(ch.data) > h.files[i].size_bytes:
                raise invalid(f"{names[i]}: more bytes than size_bytes "
                              f"({h.files[i].size_bytes})")
            handles[i].write(ch.data)
            digests[i].update(ch.data)
            received[i] += len(ch.data)
    return received, digests


def _verify(h: pb.UploadHeader, parts: list[Path], received: list[int],
            digests: list[_Hash]) -> None:
    """Rule 5, file by file: the size, the sha256, decodable audio."""
    for i, f in enumerate(h.files):
        if received[i] != f.size_bytes:
            raise invalid(f"{f.name}: received {received[i]} bytes, size_bytes says "
                          f"{f.size_bytes} (stream ended early?)")
        if f.HasField("sha256") and digests[i].hexdigest() != f.sha256.lower():
            raise invalid(f"{f.name}: sha256 mismatch (received {digests[i].hexdigest()})")
        try:
            sf.info(str(parts[i]))
        except Exception as e:  # noqa: BLE001 - libsndfile's error, for the client
            raise invalid(f"{f.name}: not decodable audio ({e})") from None
