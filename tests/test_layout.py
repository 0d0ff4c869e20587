"""Runtime vs tooling: ``import longtail_plugin`` (what every config's
``custom_imports`` runs) loads only what a config can reach, and no module of
the runtime package imports the tooling, the tests or a plotting library.

MMDetection itself loads matplotlib (``mmdet.models`` imports
``mmdet/utils/mot_error_visualize.py``), so the import test measures what
the plugin adds on top of the MMDetection packages it builds on, and the
static test makes sure no runtime module imports matplotlib itself.
"""
import ast
import json
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RUNTIME = osp.join(ROOT, 'longtail_plugin')
TOOLING = ('longtail_benchmark', 'tests', 'tools')
# third-party modules only tooling needs (plots, the data generator, tests)
TOOLING_DEPS = ('matplotlib', 'shapely', 'pytest')
# modules of the runtime package that would be tooling: data generation,
# plotting, benchmarks, test fixtures
TOOLING_WORDS = ('benchmark', 'synthetic', 'plot', 'fixture', 'child_process')
MMDET_BASE = ('mmdet.models', 'mmdet.datasets', 'mmdet.evaluation',
              'mmdet.engine')


def _modules_before_and_after_import() -> tuple:
    code = ('import json, sys; import ' + ', '.join(MMDET_BASE) + '; '
            'base = sorted(sys.modules); import longtail_plugin; '
            'print(json.dumps([base, sorted(sys.modules)]))')
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep +
               os.environ.get('PYTHONPATH', ''))
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    base, after = json.loads(out.stdout.strip().splitlines()[-1])
    return set(base), set(after)


def test_import_loads_no_tooling():
    base, after = _modules_before_and_after_import()
    assert 'longtail_plugin.models.losses' in after  # it did import
    bad = sorted(m for m in after
                 if m.split('.')[0] in TOOLING
                 or (m.startswith('longtail_plugin.')
                     and any(w in m for w in TOOLING_WORDS)))
    assert not bad, f'import longtail_plugin loads tooling: {bad}'
    added = sorted(m for m in after - base
                   if m.split('.')[0] in TOOLING_DEPS)
    assert not added, f'import longtail_plugin loads {added}'


def _runtime_imports():
    for dirpath, _, files in os.walk(RUNTIME):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = osp.join(dirpath, name)
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        yield path, node.lineno, alias.name
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    yield path, node.lineno, node.module or ''
            # code run in child processes names modules in strings
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(
                        node.value, str):
                    for top in TOOLING[:2]:
                        if f'import {top}' in node.value or (
                                f'from {top}' in node.value):
                            yield path, node.lineno, top


def test_runtime_never_imports_tooling():
    found = list(_runtime_imports())
    assert any(m.startswith('mmdet') for _, _, m in found)  # it parsed
    bad = [f'{osp.relpath(p, ROOT)}:{line} imports {m}'
           for p, line, m in found
           if m.split('.')[0] in TOOLING + TOOLING_DEPS]
    assert not bad, '\n'.join(bad)
