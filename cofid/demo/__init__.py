"""`make demo`: a sample batch of real synthesized speech through the CPU engines.

Writes demo-out/batch (English and Hindi calls, an IVR prompt with DTMF tones, a call
under 5 s, a call in an unsupported language, CSVs with matching trades), runs
`cofid run-batch` on SQLite with the embedded default's CPU backends, and prints the
per-stage summary plus one call's language, transcript, extracted trades and answers.

`python -m cofid.demo` runs it (`cofid.demo.run.main`); `cofid.demo.sample_batch` makes
the batch.
"""
