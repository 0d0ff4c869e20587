from .boundary_fscore import (boundary_fscore, boundary_precision_recall,
                              evaluate_boundary_fscore, load_predictions,
                              mask_boundary, segm_to_rle)

__all__ = [
    'boundary_fscore', 'boundary_precision_recall', 'evaluate_boundary_fscore',
    'load_predictions', 'mask_boundary', 'segm_to_rle'
]
