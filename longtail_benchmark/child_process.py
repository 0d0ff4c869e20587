"""Run a measurement in a fresh Python interpreter and read back its result.

Benchmarks measure peak memory per case, so each case runs in its own
process; the child prints one line ``<tag><json>`` and the parent reads it.
Shared by the loss, inference and evaluation benchmarks. The module imports
nothing from the plugin, so children that avoid importing the package (and
MMDetection) are unaffected by it.
"""
import json
import subprocess
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

__all__ = ['ChildResult', 'run_json_child']


@dataclass
class ChildResult:
    """What a child process reported.

    ``data`` is the JSON of the last tagged line (``None`` when there was
    none or the child timed out); ``tail`` the last lines of its stderr (or
    stdout when stderr is empty), for error messages.
    """
    data: Optional[Dict[str, Any]] = None
    timed_out: bool = False
    returncode: Optional[int] = None
    tail: List[str] = field(default_factory=list)


def run_json_child(cmd: Sequence[str],
                   tag: str,
                   timeout: Optional[float] = None,
                   env: Optional[Dict[str, str]] = None,
                   preexec_fn: Optional[Callable[[], Any]] = None,
                   tail_lines: int = 3) -> ChildResult:
    """Run ``cmd`` and parse the last stdout line starting with ``tag``."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True,
                              env=env, timeout=timeout,
                              preexec_fn=preexec_fn)
    except subprocess.TimeoutExpired:
        return ChildResult(timed_out=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(tag)]
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-tail_lines:]
    data = json.loads(lines[-1][len(tag):]) if lines else None
    return ChildResult(data=data, returncode=proc.returncode, tail=tail)
