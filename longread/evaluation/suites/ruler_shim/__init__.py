"""Offline shims for the RULER generator processes (see sitecustomize.py)."""
