"""Installation of longtail_plugin.

The runtime stack is pinned in requirements/runtime.txt. torch and mmcv are not
install_requires: torch is kept as found (a user's CUDA build must not be
replaced) and mmcv 2.1.0 has no wheel for current torch, so it is built from
source by tools/setup_env.sh (the README's commands run it).
"""
import os.path as osp

from setuptools import find_packages, setup


def read_requirements(name: str) -> list:
    path = osp.join(osp.dirname(__file__), 'requirements', name)
    reqs = []
    with open(path) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line:
                reqs.append(line)
    return reqs


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(osp.dirname(__file__), 'longtail_plugin',
                       'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='longtail_plugin',
    version=read_version(),
    description='Long-tailed detection and instance segmentation methods '
    '(EQL family, RefineMask, ...) as an MMDetection 3.x plugin',
    long_description=open(osp.join(osp.dirname(__file__), 'README.md')).read()
    if osp.exists(osp.join(osp.dirname(__file__), 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'tools', 'configs')),
    python_requires='>=3.8',
    install_requires=read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt')},
    license='Apache License 2.0',
    zip_safe=False,
)
