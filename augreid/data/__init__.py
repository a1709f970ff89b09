"""Datasets and keypoints: Market-1501 layout, pose-transfer CSVs, pose maps, pairs, demo data."""

from augreid.data.keypoints import (
    FLIP_ORDER,
    KEYPOINT_NAMES,
    LIMBS,
    NUM_KEYPOINTS,
    KeypointJoin,
    find_keypoint_csvs,
    join_keypoints,
    read_keypoints_csv,
    visible,
    write_keypoints_csv,
)
from augreid.data.market import (
    GALLERY,
    QUERY,
    SPLITS,
    TRAIN,
    ImageRecord,
    MarketDataset,
    load_market,
    parse_market_name,
    read_image,
    resolve_market_root,
)
from augreid.data.pairs import build_pairs, is_pose_usable, read_pairs_csv, write_pairs_csv
from augreid.data.pose import flip_pose, pose_mask, pose_maps
from augreid.data.sources import DataSource, demo_root, resolve_source

__all__ = [
    "FLIP_ORDER",
    "KEYPOINT_NAMES",
    "LIMBS",
    "NUM_KEYPOINTS",
    "KeypointJoin",
    "find_keypoint_csvs",
    "join_keypoints",
    "read_keypoints_csv",
    "visible",
    "write_keypoints_csv",
    "GALLERY",
    "QUERY",
    "SPLITS",
    "TRAIN",
    "ImageRecord",
    "MarketDataset",
    "load_market",
    "parse_market_name",
    "read_image",
    "resolve_market_root",
    "build_pairs",
    "is_pose_usable",
    "read_pairs_csv",
    "write_pairs_csv",
    "flip_pose",
    "pose_mask",
    "pose_maps",
    "DataSource",
    "demo_root",
    "resolve_source",
]
