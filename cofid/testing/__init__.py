"""What tests and benchmarks share; production code never imports this package.

- `batches`: fixture batches (audio names, CSVs, trades) and the fake-backend config;
- `dbdump`: the normalized dump two runs must agree on (`cofid.store.dump`);
- `daemon`: one daemon harness (in-process, in a thread, or as a `cofid serve` subprocess);
- `sample_batch`: the demo's synthesized batch (`cofid.demo.sample_batch`);
- `speech_set`: a labelled speech set for measuring language identification.

The fakes themselves live beside the real parts: `cofid.backends.fake` and
`cofid.simworker` (the shipped `cofi-simworker`).
"""
