"""Benchmarks of aml-autopilot, printed as tables by ``python -m bench`` (``make bench``).

1. cold import of ``function_app`` (the Functions host's cold start) against ``azure.ai.ml`` and an
   empty interpreter;
2. event throughput: parse + authenticate + decide over a realistic 5,000-event batch;
3. Azure calls per remediation: the real engine and adapters against the local emulator and Azurite;
4. the event path's answer time through the dev host;
6. one workspace at scale: idle and cluster sweeps over 10 / 1,000 computes × 100 … 100,000 jobs
   (wall time, ARM requests, peak memory), also written as JSON (``bench/scale.py``).

Each section is a module with a pure part (payloads, statistics, journal classification, tables)
that ``tests/unit/test_bench.py`` runs on tiny inputs, and a measuring part that only the bench runs.
"""
