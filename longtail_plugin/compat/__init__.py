"""Narrow fixes for today's stack; each is listed in the README.

Nothing here runs at import; ``longtail_plugin/__init__.py`` names the one
call that is made when the plugin is imported.
"""
from .checkpoint import (mmengine_checkpoint_globals, mmengine_safe_globals,
                         register_mmengine_safe_globals)
from .cpu_distributed import (CPUDistributedRunner,
                              check_cpu_model_wrapper_cfg,
                              init_cpu_process_group)
from .lvis_numpy import LVISEvalCompat, lvis_numpy_compat

__all__ = [
    'mmengine_checkpoint_globals', 'mmengine_safe_globals',
    'register_mmengine_safe_globals', 'LVISEvalCompat', 'lvis_numpy_compat',
    'CPUDistributedRunner', 'init_cpu_process_group',
    'check_cpu_model_wrapper_cfg'
]
