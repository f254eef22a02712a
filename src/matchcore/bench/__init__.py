"""Latency and throughput benchmarks measured inside compiled code.

Importing this package is light: workload generation (Numba), the harness (compiled timing loops)
and plotting (matplotlib) are loaded by the functions that need them.
"""
