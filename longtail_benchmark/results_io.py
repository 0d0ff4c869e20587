"""Read detection results files without running code from them.

MMDetection's ``tools/test.py --out results.pkl`` (``DumpDetResults`` +
``mmengine.dump``, pickle protocol 2) writes a list of dicts per image:
``img_id``, ``img_path``, shapes (tuples), ``scale_factor``, ``flip``,
``homography_matrix`` (a numpy array) and ``pred_instances`` (``bboxes``,
``scores``, ``labels`` as CPU torch tensors, ``masks`` as RLE dicts whose
``counts`` are bytes). A plain ``pickle.load`` of such a file runs whatever
callable the file names; :func:`load_results_pickle` admits only the globals
that this content needs:

- ``collections.OrderedDict``, ``builtins.set`` / ``frozenset``;
- ``_codecs.encode`` with the ``latin1`` codec (how protocol 2 stores bytes);
- numpy arrays, dtypes and scalars (``numpy.core.multiarray._reconstruct``,
  ``numpy.ndarray``, ``numpy.dtype``, ``numpy.core.multiarray.scalar`` and,
  for pickles written at protocol 5, ``numpy.core.numeric._frombuffer``; the
  ``numpy._core`` names of numpy 2 too);
- torch tensors: ``torch._utils._rebuild_tensor_v2`` and the storage they
  wrap, which pickle stores as a nested ``torch.save`` archive
  (``torch.storage._load_from_bytes``); that archive is read with
  ``torch.load(..., weights_only=True)`` instead of torch's unrestricted
  loader.

Any other global stops the load with :class:`UnsafePickleError` naming the
file and the refused global, before it is called. JSON results
(``*.bbox.json`` / ``*.segm.json``) are read with ``json``.
"""
import _compat_pickle
import io
import json
import os
import pickle
from typing import Any, Callable, Dict, Tuple, Union

__all__ = ['UnsafePickleError', 'load_results_pickle', 'load_results']

PathLike = Union[str, os.PathLike]


class UnsafePickleError(pickle.UnpicklingError):
    """A results pickle names a global that MMDetection does not write."""


def _latin1_encode(text: str, encoding: str = 'latin1') -> bytes:
    if encoding not in ('latin1', 'latin-1'):
        raise UnsafePickleError(
            f'_codecs.encode with codec {encoding!r} (only latin1, the way '
            'pickle protocol 2 stores bytes, is admitted)')
    return text.encode('latin1')


def _load_storage(data: bytes, path: str) -> Any:
    import torch
    try:
        return torch.load(io.BytesIO(data), weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        raise UnsafePickleError(
            f'{path}: a tensor storage in it is not a plain weights-only '
            f'archive ({str(e).splitlines()[0] if str(e) else e!r})') from e


def _allowed_globals() -> Dict[Tuple[str, str], Callable]:
    import collections

    import numpy as np
    import torch
    multiarray = np.core.multiarray
    out: Dict[Tuple[str, str], Callable] = {
        ('collections', 'OrderedDict'): collections.OrderedDict,
        ('builtins', 'set'): set,
        ('builtins', 'frozenset'): frozenset,
        ('_codecs', 'encode'): _latin1_encode,
        ('numpy', 'ndarray'): np.ndarray,
        ('numpy', 'dtype'): np.dtype,
        ('torch._utils', '_rebuild_tensor_v2'):
        torch._utils._rebuild_tensor_v2,
        ('torch.storage', '_load_from_bytes'): _load_storage,  # + path
    }
    for core in ('numpy.core', 'numpy._core'):
        out[(core + '.multiarray', '_reconstruct')] = multiarray._reconstruct
        out[(core + '.multiarray', 'scalar')] = multiarray.scalar
        # arrays at protocol 5 (out-of-band buffers)
        out[(core + '.numeric', '_frombuffer')] = np.core.numeric._frombuffer
    return out


class _ResultsUnpickler(pickle.Unpickler):

    def __init__(self, file: Any, path: str) -> None:
        super().__init__(file)
        self._path = path
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Callable:
        # Python 2 names of protocol <= 2 (``__builtin__.set``), mapped as
        # pickle's own find_class does
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        found = self._allowed.get((module, name))
        if found is None:
            raise UnsafePickleError(
                f'{self._path}: refusing to load the global {module}.{name}: '
                'a results pickle from MMDetection (tools/test.py --out) '
                'holds only dicts, lists, tuples, numpy arrays and torch '
                'tensors; this file would call other code. Export the '
                'results as JSON (the metric\'s outfile_prefix) or '
                're-create them with MMDetection.')
        if found is _load_storage:
            path = self._path
            return lambda data: _load_storage(data, path)
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(
            f'{self._path}: refusing a persistent id ({pid!r}); results '
            'pickles from MMDetection hold none')


def load_results_pickle(path: PathLike) -> Any:
    """Load an MMDetection results pickle without running code from it.

    Raises:
        UnsafePickleError: naming the file and the global it refused.
    """
    path = os.fspath(path)
    with open(path, 'rb') as f:
        return _ResultsUnpickler(f, path).load()


def load_results(path: PathLike) -> Any:
    """Results from a ``.pkl``/``.pickle`` (see :func:`load_results_pickle`)
    or a JSON file."""
    path = os.fspath(path)
    if path.endswith(('.pkl', '.pickle')):
        return load_results_pickle(path)
    with open(path) as f:
        return json.load(f)
