"""Tooling around :mod:`longtail_plugin`: benchmark runners, loss / inference /
evaluation benchmarks, plots and the synthetic long-tailed data generator.

Nothing here is reachable from a config, and ``import longtail_plugin`` (what a
user's ``custom_imports`` runs) never imports this package; the scripts in
``tools/`` are thin command lines over it.
"""
__all__: list = []
