"""The generator's output folder: whose it is, what may be removed, the lock.

The generator replaces image files named like COCO's (``\\d{12}.jpg``) and
the LVIS annotation files in its output folder, which is exactly what a real
LVIS/COCO folder holds. So it writes only into a folder that

- does not exist, or is empty, or
- it made itself: the folder holds :data:`MARKER` (written before anything
  else, with the generator's parameters), or the ``meta.json`` that sets
  generated before the marker existed carry (``"generator":
  "longtail_plugin.datasets.synthetic_lvis"``);

anything else stops with :class:`FolderNotOwnedError` (a ``FileExistsError``)
naming the folder and what is in it, before any file is touched.
"""
import json
import os
import os.path as osp
import re
from typing import Any, Callable, Dict, Optional, Sequence

__all__ = [
    'MARKER', 'LOCK', 'FolderNotOwnedError', 'check_output_folder',
    'write_marker', 'clear_images', 'count_images', 'FolderLock'
]

#: Written first into every folder the generator makes (its parameters).
MARKER = '.synthetic_lvis.json'
#: Lock file serialising concurrent generators on one folder.
LOCK = '.synthetic_lvis.lock'
# ``meta.json`` of sets written before :data:`MARKER` existed
_LEGACY_GENERATOR = 'longtail_plugin.datasets.synthetic_lvis'
_IMAGE_NAME = re.compile(r'^\d{12}\.(jpg|png)$')
_SHOWN = 8  # entries of a refused folder named in the error


class FolderNotOwnedError(FileExistsError):
    """The output folder holds files the generator did not write."""


def _made_by_generator(out_dir: str) -> bool:
    if osp.isfile(osp.join(out_dir, MARKER)):
        return True
    try:
        with open(osp.join(out_dir, 'meta.json')) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return False
    return (isinstance(meta, dict)
            and meta.get('generator') == _LEGACY_GENERATOR
            and 'version' in meta and isinstance(meta.get('params'), dict))


def check_output_folder(out_dir: str,
                        owned: Optional[Callable[[str], bool]] = None,
                        what: str = 'synthetic LVIS set',
                        marker: Optional[str] = None,
                        suggestion: str = 'data/synthetic_lvis') -> None:
    """Refuse an output folder the generator may not write into.

    Allowed: a missing folder, an empty one (a lone :data:`LOCK` counts as
    empty) and one the generator made (see the module docstring; another
    generator passes its own ``owned`` test, ``marker`` name, the ``what``
    it writes and a ``suggestion`` of a folder). Reads only.

    Raises:
        NotADirectoryError: ``out_dir`` is a file.
        FolderNotOwnedError: the folder holds anything else; the message
            names the folder and its entries.
    """
    owned = owned or _made_by_generator
    marker = marker or MARKER
    if not osp.lexists(out_dir):
        return
    if not osp.isdir(out_dir):
        raise NotADirectoryError(
            f'{what} output {out_dir!r} is a file, not a folder')
    entries = sorted(e for e in os.listdir(out_dir) if e != LOCK)
    if not entries or owned(out_dir):
        return
    shown = ', '.join(entries[:_SHOWN])
    more = (f' and {len(entries) - _SHOWN} more'
            if len(entries) > _SHOWN else '')
    raise FolderNotOwnedError(
        f'refusing to write the {what} into {out_dir!r}: it is not empty '
        f'({len(entries)} entries: {shown}{more}) and was not made by its '
        f'generator (no {marker}). The generator replaces the COCO-named '
        'images and annotation files in its folder, so it writes only into '
        'a missing or empty folder or one it made; choose another output '
        f'folder (e.g. {suggestion}). Nothing was changed.')


def write_marker(out_dir: str, generator: str, version: int,
                 params: Dict[str, Any]) -> None:
    """Claim ``out_dir`` for the generator (written before any other file).
    """
    path = osp.join(out_dir, MARKER)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump({'generator': generator, 'version': version,
                   'params': params}, f, indent=1)
    os.replace(tmp, path)


def clear_images(folder: str, keep: Sequence[str] = ()) -> None:
    """Remove images this generator wrote (and nothing else) but ``keep``.

    Only call it on a folder :func:`check_output_folder` accepted.
    """
    if osp.isdir(folder):
        keep = set(keep)
        for name in os.listdir(folder):
            if _IMAGE_NAME.match(name) and name not in keep:
                os.remove(osp.join(folder, name))


def count_images(folder: str) -> int:
    """Number of generator-named images in ``folder``."""
    return sum(bool(_IMAGE_NAME.match(f)) for f in os.listdir(folder))


class FolderLock:
    """Advisory exclusive lock on a file (no-op where fcntl is missing)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: Optional[int] = None

    def __enter__(self) -> 'FolderLock':
        try:
            import fcntl
        except ImportError:  # pragma: no cover (Windows)
            return self
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            import fcntl
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
