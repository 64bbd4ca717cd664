"""Benchmarks: each module is runnable with `python -m bench.<name>` and prints one JSON object.

  bench.schedule    the real engine under trio's MockClock on a simulated GPU cost model
  bench.barrier     the seed's stage-by-stage (barrier) schedule on the same model
  bench.throughput  the full batch pipeline in real time on instant backends, vs a raw bulk load
  bench.all         what `make bench` runs: each of them at a small size, as subprocesses
"""
