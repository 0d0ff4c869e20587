"""RefineMask (Zhang et al., "RefineMask: Towards High-Quality Instance
Segmentation with Fine-Grained Features", CVPR 2021) - every module of the
method, from here.

In this package:

* :mod:`.refine_mask_roi_head` - ``RefineMaskRoIHead`` (Mask R-CNN) and
  ``RefineMaskCascadeRoIHead`` (Cascade Mask R-CNN): pass the stride-4 FPN
  level, the RoIs and their labels to the mask head.
* :mod:`.refine_mask_head` - ``RefineMaskHead`` (the paper's) and
  ``SimpleRefineMaskHead`` (the authors' faster variant): stages, losses,
  inference-time stage merging.
* :mod:`.sfm` - ``SemanticFusionModule`` (registered also as ``SFMStage``)
  and ``MultiBranchFusion``, the building blocks of one refinement stage.
* :mod:`.boundary` - the boundary band of a binary mask and the stage
  merging rule, the one implementation shared by the loss and inference.

Elsewhere, because they are used beyond RefineMask:

* ``BARCrossEntropyLoss`` (the boundary-aware refinement loss) -
  :mod:`longtail_plugin.models.losses.bar_loss`, with the other losses
  (configs name it by ``type=``).
* The boundary F-score and Boundary AP that measure RefineMask's gain -
  :mod:`longtail_plugin.evaluation.functional.boundary_fscore` and
  ``LongTailLVISMetric(metric=[..., 'boundary'])``.
* Configs, the paper's table and ours: ``configs/refinemask/``; tests:
  ``tests/models/roi_heads/test_refine_mask_head.py``,
  ``tests/models/losses/test_bar_loss.py``.
"""
from .boundary import boundary_band, merge_stage_logits, upsample_band
from .refine_mask_head import RefineMaskHead, SimpleRefineMaskHead
from .refine_mask_roi_head import RefineMaskCascadeRoIHead, RefineMaskRoIHead
from .sfm import MultiBranchFusion, SemanticFusionModule

__all__ = [
    'RefineMaskRoIHead', 'RefineMaskCascadeRoIHead', 'RefineMaskHead',
    'SimpleRefineMaskHead', 'SemanticFusionModule', 'MultiBranchFusion',
    'boundary_band', 'upsample_band', 'merge_stage_logits'
]
