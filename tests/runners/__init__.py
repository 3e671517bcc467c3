"""What the cluster runners' tiers (tests/flink, tests/spark) share: running the pipeline on the
tiny sample with a `beam` config, and comparing two runs' Beam outputs (compare.py)."""
