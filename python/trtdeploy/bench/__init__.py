"""Benchmark logic without TensorRT: statistics, the padded-batch comparison, reports."""
