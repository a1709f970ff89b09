"""augreid: person re-identification data augmentation with pose-guided generators."""

__version__ = "0.1.0"
