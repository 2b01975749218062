"""Sample-quality metrics: FID-lite, a Fréchet distance on features of a small course-trained network.

    from vdlearn.metrics import fid_lite, class_agreement
    fid_lite(real_images, generated_images, dataset="digits")   # lower is better
"""
from .features import (FEATURE_DATASETS, FeatureNet, class_agreement, classify, extract_features,
                       feature_network)
from .frechet import feature_statistics, fid_lite, frechet_distance

__all__ = [
    "FEATURE_DATASETS",
    "FeatureNet",
    "feature_network",
    "extract_features",
    "classify",
    "class_agreement",
    "frechet_distance",
    "feature_statistics",
    "fid_lite",
]
