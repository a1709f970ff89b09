"""Deformable GAN (Siarohin et al., CVPR 2018): pose-based person generation with deformable skip connections.

Registered as the generator ``deformable`` (``generators.deformable.plugin``);
synth, eval-gen and the pipeline reach it only through ``generators.base``.
Modules: ``geometry`` (the ten parts' affine maps and masks), ``model`` (the
network), ``trainer`` (the losses and step on ``generators.common.loop``),
``generator`` (inference), ``config`` (settings and presets in ``presets/``).
"""
