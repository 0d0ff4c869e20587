"""InfoNCE contrastive loss between paired embeddings.

van den Oord et al., "Representation Learning with Contrastive Predictive
Coding", arXiv:1807.03748 (the InfoNCE objective), in the batch form of
Chen et al., SimCLR (ICML 2020) / Radford et al., CLIP (ICML 2021): row
``i`` of ``query`` and row ``i`` of ``key`` are a positive pair, every other
row of ``key`` is a negative of query ``i``.

With ``q_i = query_i / ||query_i||``, ``k_j = key_j / ||key_j||`` and the
temperature ``tau``::

    s_ij = q_i . k_j / tau
    L_q->k = 1/N sum_i [ -s_ii + log sum_j exp(s_ij) ]     (cross-entropy of
                                                            row i, target i)
    L_k->q = the same on the columns (s transposed)
    L = loss_weight * (L_q->k + L_k->q) / 2    (symmetric=True, default)
    L = loss_weight * L_q->k                   (symmetric=False)

Edge cases: ``N == 0`` gives a zero that keeps the graph of both inputs
(``0 * (query.sum() + key.sum())``); ``N == 1`` has a single candidate, so
its cross-entropy is exactly zero, returned as such (with graph).

Used by CLIS ("Collaborative Learning with Image-level Supervision",
waveboo/CLIS) between the instance feature of an image-level object pasted
into a detection image and the image-level feature of its source region;
the paper released no code, the form above (L2 normalisation, temperature
0.1, symmetric averaging) is our choice.

Config::

    loss = dict(type='InfoNCELoss', temperature=0.1, symmetric=True,
                loss_weight=1.0)
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS

__all__ = ['InfoNCELoss']


@MODELS.register_module()
class InfoNCELoss(nn.Module):
    """InfoNCE between ``query [N, D]`` and ``key [N, D]`` (pairs on the
    rows; the other rows of the batch are the negatives).

    Args:
        temperature: ``tau > 0`` dividing the cosine similarities.
        symmetric: average the query->key and key->query directions.
        loss_weight: factor of the loss.
    """

    def __init__(self,
                 temperature: float = 0.1,
                 symmetric: bool = True,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if not float(temperature) > 0:
            raise ValueError(f'InfoNCELoss: temperature must be > 0, got '
                             f'{temperature!r}')
        self.temperature = float(temperature)
        self.symmetric = bool(symmetric)
        self.loss_weight = float(loss_weight)

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        """The scalar loss (see the module docstring)."""
        if query.dim() != 2 or key.dim() != 2 or query.shape != key.shape:
            raise ValueError(
                'InfoNCELoss: query and key must both be [N, D] with the same '
                f'shape, got {tuple(query.shape)} and {tuple(key.shape)}')
        n = query.size(0)
        if n == 0:
            return (query.sum() + key.sum()) * 0.0
        q = F.normalize(query, dim=1)
        k = F.normalize(key, dim=1)
        logits = q @ k.t() / self.temperature
        if n == 1:
            return logits.sum() * 0.0
        target = torch.arange(n, device=logits.device)
        loss = F.cross_entropy(logits, target)
        if self.symmetric:
            loss = 0.5 * (loss + F.cross_entropy(logits.t(), target))
        return self.loss_weight * loss

    def extra_repr(self) -> str:
        return (f'temperature={self.temperature}, symmetric={self.symmetric}, '
                f'loss_weight={self.loss_weight}')
