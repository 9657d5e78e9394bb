"""Partitioned fits: the deviance evaluated partition by partition (in memory or on
Dask workers), with the same numbers as the in-memory model."""
