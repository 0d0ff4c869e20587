"""Evaluation benchmarks: LVIS-shaped data, backend timing, the metric end
to end against MMDetection's ``LVISMetric`` (``tools/benchmark_eval.py``)."""
__all__: list = []
