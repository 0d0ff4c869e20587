"""Classifier surgery on an MMEngine checkpoint, for decoupled fine-tuning.

Stage 2 of Balanced Group Softmax (Li et al., CVPR 2020) and of the LVIS
Challenge 2020 recipe (Tan et al., arXiv:2009.01559) starts from a stage-1
model with a fresh classifier: the EQL v2 authors' ``tools/ckpt_surgery.py
--method remove`` deletes the classifier weights so that ``load_from``
leaves the new head's initialisation in place (MMEngine loads with
``strict=False`` and logs the missing keys). ``method='reinit'`` instead
writes freshly drawn weights (N(0, std), bias ``bias``; MMDetection's
``BBoxHead`` draws ``fc_cls`` from N(0, 0.01) with bias 0) from a seeded
generator, so the file fully determines stage 2's start.

The keys are those matching ``pattern`` (a regular expression searched in
each ``state_dict`` key; default ``roi_head.bbox_head.fc_cls.*``).
The checkpoint is read with torch's weights-only loading (MMEngine's
classes allow-listed by :func:`longtail_plugin.compat.mmengine_safe_globals`)
and written as ``{'meta': ..., 'state_dict': ...}`` only: the optimizer,
schedulers and message hub of stage 1 belong to a finished run and must not
leak into stage 2.
"""
import re
from typing import Dict, List

import torch

__all__ = ['DEFAULT_CLASSIFIER_PATTERN', 'classifier_surgery',
           'load_checkpoint_weights_only']

DEFAULT_CLASSIFIER_PATTERN = r'^roi_head\.bbox_head\.fc_cls\.'


def load_checkpoint_weights_only(path: str) -> Dict:
    """``torch.load(path, weights_only=True)`` with MMEngine's checkpoint
    classes allow-listed for the duration of the call."""
    from longtail_plugin.compat import mmengine_safe_globals
    with mmengine_safe_globals():
        return torch.load(path, map_location='cpu', weights_only=True)


def classifier_surgery(src: str,
                       dst: str,
                       method: str = 'remove',
                       pattern: str = DEFAULT_CLASSIFIER_PATTERN,
                       std: float = 0.01,
                       bias: float = 0.0,
                       seed: int = 0) -> List[str]:
    """Remove or re-initialise the classifier weights of checkpoint ``src``
    and write the result to ``dst``.

    Args:
        src: an MMEngine checkpoint (a dict with ``state_dict``) or a bare
            state dict.
        dst: the file to write (must differ from ``src``).
        method: ``'remove'`` or ``'reinit'``.
        pattern: regular expression selecting the classifier keys.
        std, bias: with ``'reinit'``, weights ~ N(0, std), biases = bias
            (keys ending in ``.bias``).
        seed: seed of the generator drawing the re-initialised weights.

    Returns:
        The keys removed or re-initialised, sorted.

    Raises:
        ValueError: unknown method, ``dst == src``, or no key of ``src``
            matches ``pattern``.
    """
    if method not in ('remove', 'reinit'):
        raise ValueError(f"ckpt_surgery: method must be 'remove' or 'reinit', "
                         f'got {method!r}')
    import os.path as osp
    if osp.abspath(src) == osp.abspath(dst):
        raise ValueError(f'ckpt_surgery: refusing to overwrite {src}; give '
                         'another output file')
    ckpt = load_checkpoint_weights_only(src)
    if isinstance(ckpt, dict) and 'state_dict' in ckpt:
        state, meta = ckpt['state_dict'], ckpt.get('meta', {})
    elif isinstance(ckpt, dict) and all(
            torch.is_tensor(v) for v in ckpt.values()):
        state, meta = ckpt, {}
    else:
        raise ValueError(f'ckpt_surgery: {src} is neither an MMEngine '
                         'checkpoint (no "state_dict") nor a state dict')
    regex = re.compile(pattern)
    keys = sorted(k for k in state if regex.search(k))
    if not keys:
        heads = sorted({k.rsplit('.', 1)[0] for k in state
                        if 'bbox_head' in k or 'cls' in k})[:12]
        raise ValueError(
            f'ckpt_surgery: checkpoint {src} has no classifier weights: no '
            f'state_dict key matches {pattern!r}. Its classifier-like '
            f'modules are {heads or "none"}; pass --pattern for another '
            'head.')
    new_state = dict(state)
    if method == 'remove':
        for k in keys:
            del new_state[k]
    else:
        gen = torch.Generator().manual_seed(int(seed))
        for k in keys:
            old = state[k]
            if k.endswith('.bias'):
                new = torch.full_like(old, float(bias))
            else:
                new = torch.randn(old.shape, generator=gen,
                                  dtype=torch.float64).mul_(std).to(old.dtype)
            new_state[k] = new
    meta = dict(meta) if isinstance(meta, dict) else {}
    meta['ckpt_surgery'] = dict(source=osp.basename(src), method=method,
                                pattern=pattern, keys=keys)
    if method == 'reinit':
        meta['ckpt_surgery'].update(std=std, bias=bias, seed=seed)
    torch.save({'meta': meta, 'state_dict': new_state}, dst)
    return keys
