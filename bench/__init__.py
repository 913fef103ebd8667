"""Benchmarks (not tests): ``make bench`` runs :mod:`bench.e2e`."""
