"""Target poses for synthesis: normalisation, masked k-means, medoids, pictures."""

from augreid.poses.cluster import PoseClusters, cluster_medoids, cluster_poses
from augreid.poses.normalize import NormalisedPoses, denormalise, normalise_poses
from augreid.poses.targets import MODES, TargetPoses, clustered_targets, file_targets, is_renderable, random_targets

__all__ = [
    "MODES",
    "NormalisedPoses",
    "PoseClusters",
    "TargetPoses",
    "cluster_medoids",
    "cluster_poses",
    "clustered_targets",
    "denormalise",
    "file_targets",
    "is_renderable",
    "normalise_poses",
    "random_targets",
]
