"""The embedded demo dataset: procedurally drawn pedestrians in Market-1501 layout.

Every image is drawn from a parametric 3-D skeleton (a walking cycle seen from a
chosen direction), so the OpenPose-18 keypoints written beside the images are
exact: they are the joints the body was drawn around, not an estimate.

What varies, and why (the set must be neither trivial nor hopeless for re-ID):

* per identity: body height and build, skin, hair colour and length, shirt
  colour and pattern (plain, stripes, two-tone, jacket over a shirt, chest
  logo), sleeve length, trousers / shorts / skirt, shoe colour, and a bag
  (none, backpack, shoulder bag, hand bag);
* per camera: walking directions seen (front/back, left/right side, diagonals),
  colour cast, brightness, contrast, blur, sensor noise, person scale, and a
  background style (wall, floor, clutter);
* per image: walking phase, small view and position jitter, background clutter.

Keypoint visibility rule (imitating what OpenPose reports):

* a joint outside the 64x128 frame is ``-1``;
* face points are seen only from the side they face: the nose when the head is
  turned less than ~95 degrees away, each eye when its own side of the face is
  toward the camera (so a back view has no nose and no eyes, a profile one eye),
  each ear unless the head is turned so that it is clearly on the far side;
* an elbow or wrist hidden behind the body (far arm in a side view, drawn
  behind the torso or hips) is ``-1``; shoulders, hips, knees and ankles are
  always reported when in frame, as OpenPose usually does.

Layout written by :func:`make_demo_dataset`::

    OUT/Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}/
    OUT/demo-annotation-train.csv   rows for every bounding_box_train image
    OUT/demo-annotation-test.csv    rows for every query and bounding_box_test image
                                    (distractors ``0000_*`` have all-missing rows;
                                    junk ``-1_*`` images have no row, being in no split)
    OUT/demo.json                   version, seed, counts, cameras, timing

Generation is deterministic: the same seed gives byte-identical images and CSVs
(``demo.json`` differs only in ``generation_seconds``).
"""

from __future__ import annotations

from augreid.data.demo import writing
from augreid.data.demo.appearance import Appearance, Camera, make_appearance, make_camera
from augreid.data.demo.common import (
    DEMO_VERSION,
    DESCRIPTION,
    IMAGE_H,
    IMAGE_W,
    JPEG_QUALITY,
    MAX_CAMERAS,
    MAX_PID,
    NUM_DISTRACTORS,
    NUM_JUNK,
    SUPERSAMPLE,
)
from augreid.data.demo.raster import Canvas, render_person, visible_keypoints
from augreid.data.demo.scene import SCENE_WIDTH, apply_camera, camera_scene, make_background
from augreid.data.demo.sheet import demo_contact_sheet
from augreid.data.demo.shots import RenderedShot, Shot, demo_examples, encode_demo_jpeg, plan_dataset, render_shot
from augreid.data.demo.skeleton import Projector, View, head_centre, skeleton3d
from augreid.data.demo.writing import is_demo_dataset, make_demo_dataset

__all__ = [
    "DEMO_VERSION",
    "DESCRIPTION",
    "IMAGE_H",
    "IMAGE_W",
    "JPEG_QUALITY",
    "MAX_CAMERAS",
    "MAX_PID",
    "NUM_DISTRACTORS",
    "NUM_JUNK",
    "SUPERSAMPLE",
    "Appearance",
    "Camera",
    "make_appearance",
    "make_camera",
    "View",
    "Projector",
    "skeleton3d",
    "head_centre",
    "Canvas",
    "render_person",
    "visible_keypoints",
    "SCENE_WIDTH",
    "camera_scene",
    "make_background",
    "apply_camera",
    "Shot",
    "RenderedShot",
    "plan_dataset",
    "render_shot",
    "encode_demo_jpeg",
    "demo_examples",
    "is_demo_dataset",
    "make_demo_dataset",
    "demo_contact_sheet",
    "writing",
]
