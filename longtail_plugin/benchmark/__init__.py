from .report import markdown_table, plot_groups, summarize, write_report
from .runner import (RunResult, RunSpec, mmdet_tool, prepare_config,
                     read_metrics, run_name, run_training)

__all__ = [
    'RunSpec', 'RunResult', 'mmdet_tool', 'prepare_config', 'run_training',
    'read_metrics', 'run_name', 'summarize', 'markdown_table', 'plot_groups',
    'write_report'
]
