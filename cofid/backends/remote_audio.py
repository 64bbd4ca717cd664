"""Denoise and IVR on a GPU host, over the small HTTP contract of docs/gpu-audio-contract.md.

No standard API exists for these two, so cofi defines one next to the OpenAI-compatible
endpoints of `cofid.backends.remote`, with the same error mapping (connection errors,
timeouts, 5xx, 408, 429 and malformed replies -> BackendError; other 4xx ->
PermanentBackendError with the server's message) and the same overall deadline of
`timeout_s + connect_timeout_s` per request.

- `POST /v1/audio/denoise` (multipart: file, format, strength?) answers with the denoised
  audio as the body. It is streamed into a temporary file beside `output`, checked to
  decode, transcoded when the server chose another format than `output`'s suffix, then
  renamed onto `output`: a half-written file is never seen by a later stage.
- `POST /v1/audio/ivr` (multipart: file, max_ivr_s?) answers JSON with where the IVR ends;
  the trimming is done here, streaming the tail of the local file (`write_tail`), so the
  call's audio never travels back. Nothing to trim: `output` is the input path and no file
  is written, like CpuIvr.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile
import trio

from cofid.backends.base import (
    AudioRef,
    BackendError,
    DenoiseResult,
    IvrResult,
    PermanentBackendError,
)
from cofid.backends.cpu.audio import WHISPER_SR, audio_duration, write_tail, write_wav
from cofid.backends.remote_http import (
    ERROR_BODY_LIMIT,
    Endpoint,
    RemoteOptions,
    ReplyTooLarge,
    file_summary,
    number,
    public_url,
    raise_for_status,
    read_bounded,
    read_upload,
)
from cofid.domain.ports import BackendTimeout

DENOISE_PATH = "/v1/audio/denoise"
IVR_PATH = "/v1/audio/ivr"
NOISE_REDUCTION_HEADER = "x-noise-reduction-db"
MAX_MARKERS_IN_SUMMARY = 20
EMPTY_TAIL_S = 0.5  # what an all-IVR call becomes: a short silence that still decodes
_CHUNK = 256 * 1024

# soundfile's format name for each suffix cofi writes derived audio with.
_FORMAT_OF_SUFFIX = {".flac": "FLAC", ".wav": "WAV"}


def _fail_on_status(response: httpx.Response, url: str) -> None:
    """Raise the error a non-2xx reply maps to (the body must have been read)."""
    raise_for_status(response, url)


# -- denoise -------------------------------------------------------------------------------


class RemoteDenoise:
    """DenoiseBackend on a GPU host. `strength` (0..1) is sent only when set; the server's
    own default applies otherwise."""

    def __init__(
        self,
        base_url: str,
        client: httpx.AsyncClient,
        options: RemoteOptions,
        *,
        strength: float | None = None,
    ) -> None:
        if strength is not None and not 0.0 <= strength <= 1.0:
            raise ValueError(f"denoise strength must be within 0..1, got {strength}")
        self.endpoint = Endpoint(base_url, client, options)
        self.options = options
        self.strength = strength

    async def denoise(self, audio: AudioRef, output: Path) -> DenoiseResult:
        output = Path(output)
        upload = await trio.to_thread.run_sync(read_upload, audio, None)
        wanted = "wav" if output.suffix.lower() == ".wav" else "flac"
        form = {"format": wanted}
        if self.strength is not None:
            form["strength"] = str(self.strength)
        url = self.endpoint.url(DENOISE_PATH)
        request = {"url": public_url(url), "params": dict(form), "file": file_summary(upload)}

        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{output.name}.", suffix=".part", dir=output.parent
        )
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            headers, size = await self._download(
                url, form, (upload.filename, upload.data, upload.content_type), tmp
            )
            info = await trio.to_thread.run_sync(_store_audio, tmp, output, public_url(url))
        finally:
            tmp.unlink(missing_ok=True)

        reduction = number(headers.get(NOISE_REDUCTION_HEADER))
        reduction = None if reduction is None else round(reduction, 2)
        response = {
            "noise_reduction_db": reduction,
            "content_type": headers.get("content-type"),
            "bytes": size,
            **info,
        }
        return DenoiseResult(
            output=output, noise_reduction_db=reduction, request=request, response=response
        )

    async def _download(
        self, url: str, form: dict[str, str], file: tuple[str, bytes, str], tmp: Path
    ) -> tuple[httpx.Headers, int]:
        """POST and stream a 2xx body into `tmp`; (reply headers, bytes written)."""
        options = self.options
        deadline = options.timeout_s + options.connect_timeout_s
        where = public_url(url)  # what messages name: no credentials
        result: tuple[httpx.Headers, int] | None = None
        try:
            with trio.move_on_after(deadline):
                async with self.endpoint.client.stream(
                    "POST",
                    url,
                    data=form,
                    files={"file": file},
                    headers=self.endpoint.headers,
                    timeout=self.endpoint.timeout,
                ) as response:
                    if response.status_code >= 300:
                        failed = await read_bounded(response, where, ERROR_BODY_LIMIT)
                        _fail_on_status(failed, url)
                    content_type = response.headers.get("content-type", "")
                    if content_type.split(";")[0].strip().lower() == "application/json":
                        got = await read_bounded(response, where, ERROR_BODY_LIMIT)
                        raise BackendError(
                            f"{where}: expected audio, got JSON",
                            details={"reply": got.text[:2000]},
                        )
                    size = 0
                    cap = options.max_audio_reply_bytes
                    async with await trio.open_file(tmp, "wb") as sink:
                        async for chunk in response.aiter_bytes(_CHUNK):
                            size += len(chunk)
                            if size > cap:  # a bounded disk as well as bounded memory
                                raise ReplyTooLarge(
                                    f"{where}: the denoised audio is over the limit of {cap} "
                                    "bytes; reading stopped there",
                                    details={"limit_bytes": cap, "read_bytes": size},
                                )
                            await sink.write(chunk)
                    result = (response.headers, size)
        except httpx.TimeoutException as exc:
            raise BackendTimeout(f"{where}: timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise BackendError(f"{where}: {type(exc).__name__}: {exc}") from exc
        if result is None:
            raise BackendTimeout(f"{where}: no complete reply within {deadline:g} s")
        return result


def _store_audio(tmp: Path, output: Path, url: str) -> dict[str, Any]:
    """Check the downloaded audio decodes and put it at `output` in `output`'s format."""
    try:
        info = soundfile.info(str(tmp))
        if info.frames <= 0:
            raise ValueError("no audio frames")
    except Exception as exc:  # libsndfile raises several types  # noqa: BLE001
        size = tmp.stat().st_size if tmp.exists() else 0
        raise BackendError(
            f"{url}: the reply is not decodable audio ({size} bytes): {exc}",
            details={"size": size},
        ) from exc
    summary: dict[str, Any] = {
        "format": info.format,
        "sample_rate": info.samplerate,
        "channels": info.channels,
        "duration_s": round(info.frames / info.samplerate, 3),
        "transcoded": False,
    }
    wanted = _FORMAT_OF_SUFFIX.get(output.suffix.lower())
    if wanted is None or info.format == wanted:
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    else:  # e.g. WAV for a .flac path: re-encode (mono PCM16, same rate), atomically
        try:
            write_tail(tmp, output, 0.0, info.samplerate)
        except PermanentBackendError as exc:  # the reply is broken, not the call's audio
            raise BackendError(f"{url}: the reply does not decode: {exc}") from exc
        summary["transcoded"] = True
    return summary


# -- IVR -----------------------------------------------------------------------------------


def _parse_ivr_reply(body: Any) -> tuple[float, bool, list[Any]]:
    if not isinstance(body, Mapping):
        raise BackendError("IVR reply is not a JSON object", details={"reply": str(body)[:2000]})
    offset = number(body.get("trim_offset_s"))
    if offset is None or offset < 0.0:
        raise BackendError(
            "IVR reply has no trim_offset_s >= 0", details={"reply": str(body)[:2000]}
        )
    all_ivr = body.get("all_ivr", False)
    if not isinstance(all_ivr, bool):
        raise BackendError(
            "IVR reply's all_ivr is not a boolean", details={"reply": str(body)[:2000]}
        )
    markers = body.get("markers")
    return offset, all_ivr, list(markers) if isinstance(markers, list) else []


class RemoteIvr:
    """IvrBackend on a GPU host: the host finds where the IVR ends, the trim is done here."""

    def __init__(
        self,
        base_url: str,
        client: httpx.AsyncClient,
        options: RemoteOptions,
        *,
        max_ivr_s: float | None = None,
    ) -> None:
        self.endpoint = Endpoint(base_url, client, options)
        self.options = options
        self.max_ivr_s = max_ivr_s

    async def trim(self, audio: AudioRef, output: Path) -> IvrResult:
        output = Path(output)
        upload = await trio.to_thread.run_sync(read_upload, audio, None)
        form = {} if self.max_ivr_s is None else {"max_ivr_s": str(self.max_ivr_s)}
        request = {
            "url": self.endpoint.public_url(IVR_PATH),
            "params": dict(form),
            "file": file_summary(upload),
        }
        body, _ = await self.endpoint.post_json(
            IVR_PATH, data=form, files={"file": (upload.filename, upload.data, upload.content_type)}
        )
        offset, all_ivr, markers = _parse_ivr_reply(body)
        return await trio.to_thread.run_sync(
            _apply_trim, audio, output, offset, all_ivr, markers, request
        )


def _apply_trim(
    audio: AudioRef,
    output: Path,
    offset: float,
    all_ivr: bool,
    markers: list[Any],
    request: dict[str, Any],
) -> IvrResult:
    duration = audio_duration(audio.path)  # PermanentBackendError when it does not decode
    if all_ivr and offset <= 0.0:
        offset = duration  # all IVR: later stages must read the (silent) output
    offset = round(min(offset, duration), 3)
    if offset <= 0.0:
        output, written = Path(audio.path), "original"  # nothing to trim: no copy
    elif all_ivr or offset >= duration:
        write_wav(output, np.zeros(int(EMPTY_TAIL_S * WHISPER_SR), dtype=np.float32), WHISPER_SR)
        written = "silence"
    else:
        write_tail(audio.path, output, offset, WHISPER_SR)
        written = "tail"
    response = {
        "trim_offset_s": offset,
        "all_ivr": all_ivr,
        "markers": markers[:MAX_MARKERS_IN_SUMMARY],
        "duration_s": round(duration, 3),
        "output": written,
    }
    if len(markers) > MAX_MARKERS_IN_SUMMARY:
        response["markers_total"] = len(markers)
    return IvrResult(
        output=output, trim_offset_s=offset, all_ivr=all_ivr, request=request, response=response
    )
