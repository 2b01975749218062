"""How good are the samples? One module per family of metric, everything exported here.

- :mod:`.features`: the small course-trained image network whose features FID-lite uses, and a
  digit/shape classifier (:func:`class_agreement`);
- :mod:`.frechet`: the Fréchet distance and FID-lite on images;
- :mod:`.fvd`: FVD-lite, the Fréchet distance on features of a small video network;
- :mod:`.motion`: frame-difference energy, near-static clips, and the shuffled and frozen
  control clips every video metric must score badly;
- :mod:`.physics`: centroid tracking and the physics score of BouncingShapes;
- :mod:`.constancy`: object constancy, whether every frame shows the same objects (kind, colour, count);
- :mod:`.digit_identity`: the same for MovingDigits, whether every frame shows the same digit;
- :mod:`.psnr_ssim`: PSNR, SSIM and the best of k samples;
- :mod:`.novelty`: distance to the nearest training example (does the model copy?);
- :mod:`.camera`: a clip made from one photograph: which camera motion it shows (phase correlation),
  what it kept of the photograph and how well it invented what came into view.

    from vdlearn.metrics import fid_lite, fvd_lite, physics_score
    fid_lite(real_images, generated_images, dataset="digits")   # lower is better
"""
from .features import (FEATURE_DATASETS, FeatureNet, class_agreement, classify, extract_features,
                       feature_network)
from .frechet import feature_statistics, fid_lite, frechet_distance
from .fvd import VIDEO_FEATURE_DATASETS, VideoFeatureNet, extract_video_features, fvd_lite, video_feature_network
from .camera import camera_clip_scores, estimate_camera_motion, frame_motion, phase_correlation
from .constancy import classify_frames, label_agreement, object_constancy
from .digit_identity import classify_digit_frames, digit_constancy
from .motion import frame_difference_energy, freeze_frames, mix_frames, motion_stats, shuffle_frames
from .novelty import nearest_neighbour_distance
from .physics import physics_residuals, physics_score, track_centroids
from .psnr_ssim import best_of_k, psnr, ssim

__all__ = [
    "FEATURE_DATASETS", "FeatureNet", "feature_network", "extract_features", "classify", "class_agreement",
    "frechet_distance", "feature_statistics", "fid_lite",
    "VIDEO_FEATURE_DATASETS", "VideoFeatureNet", "video_feature_network", "extract_video_features", "fvd_lite",
    "shuffle_frames", "freeze_frames", "mix_frames", "frame_difference_energy", "motion_stats",
    "object_constancy", "classify_frames", "label_agreement",
    "phase_correlation", "frame_motion", "estimate_camera_motion", "camera_clip_scores", "digit_constancy", "classify_digit_frames",
    "track_centroids", "physics_residuals", "physics_score",
    "psnr", "ssim", "best_of_k",
    "nearest_neighbour_distance",
]
