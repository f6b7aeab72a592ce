"""The benchmark harness of sparseinit: ``python benchmarks/run.py``, described in README.md."""
