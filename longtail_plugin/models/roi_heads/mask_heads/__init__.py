from .refine_mask_head import RefineMaskHead, SimpleRefineMaskHead
from .sfm import MultiBranchFusion, SemanticFusionModule

__all__ = [
    'RefineMaskHead', 'SimpleRefineMaskHead', 'MultiBranchFusion',
    'SemanticFusionModule'
]
