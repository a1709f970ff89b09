"""Machinery that generator plug-ins share, so that a new generator is one folder.

* ``parts``, ``warping``: body-part geometry and the training-free part warp;
* ``config``: the shared settings sections (pose rendering, pairs, logging, runtime) and preset files;
* ``data``, ``train_data``: the image cache, the (condition, target) pair dataset and the step-keyed sampler;
* ``loop``, ``checkpoint``, ``ema``: the resumable training loop, checkpoint files, the weight average;
* ``losses``, ``features``: pixel losses, and the perceptual and nearest-neighbour losses on frozen
  ImageNet MobileNetV2 features;
* ``preview``, ``quality``: image grids, and eval-gen's pixel scores for any generator.

Plug-ins (``generators/<name>/``) import ``generators.base`` and this package, never each other
(an import-linter contract in pyproject.toml).
"""
