"""Benchmarks of the pipeline: end to end, scale, Beam modes, serving, and baselines.

Scripts that print figures; none is a timed test. Run `python -m benchmarks --help` inside
the runtime (scripts/runtime.sh), or `make bench` for the quick tier.
"""
