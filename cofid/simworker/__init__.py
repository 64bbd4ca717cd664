"""`cofi-simworker`: a simulated GPU host speaking the OpenAI-compatible protocol.

It serves what cofi's remote backends call — POST /v1/audio/transcriptions (verbose_json)
and POST /v1/chat/completions (json_schema response_format) — plus GET /health and
GET /v1/models, with realistic latency, a concurrency cap, and injected faults, so the
engine can be exercised and benchmarked without GPUs. It also serves cofi's own denoise and
IVR contract (POST /v1/audio/denoise and /v1/audio/ivr, docs/gpu-audio-contract.md).

Decisions:

1. A transcription request without a `language` field is language identification ("lid"),
   one with a language is speech-to-text ("stt"); the two have their own latency.
2. Latency = fixed + per_audio_s × audio duration, times `time_scale` (0 = instant). The
   duration is read from the uploaded audio; audio that does not decode gets HTTP 400.
3. Transcripts come from the manifest (audio file name or stem -> {"language", "text" or
   "segments"}) or, for names not in it, from a generator seeded by (seed, stem): the same
   name always gets the same English trade-call transcript, one segment per ~10 s.
4. Chat replies are `example_instance` of the request's schema, salted with the hash of the
   request body: the same request always gets the same reply.
5. Faults are drawn per POST request from one RNG seeded by `seed`, in arrival order:
   fail (HTTP 500), hang (no answer until the client goes away), drop (connection closed
   without an answer), malformed (HTTP 200 with broken JSON, or for chat a content that
   breaks the schema). Requests beyond `slots` wait for a free slot; a hung request keeps
   its slot until its client gives up, as a stuck GPU would.

Modules, one job each: `config` (SimConfig, manifest, the JobRunner face the endpoints
see), `server` (routes, counters, faults, slots), `transcribe`, `chat`, `audio` (denoise,
IVR), `http_server` (HTTP/1.1 on trio + h11), `cli` (the command line).
"""

from cofid.simworker.config import Latency, SimConfig, default_latency, load_manifest
from cofid.simworker.server import SimWorker, serve_simworker

__all__ = ["Latency", "SimConfig", "SimWorker", "default_latency", "load_manifest",
           "serve_simworker"]
