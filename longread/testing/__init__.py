"""Helpers shared by the test suite and the benchmarks: synthetic documents, scripted models, processes.

They live in the package (not in `tests/` or `bench/`) so that neither of those imports the other.
"""
