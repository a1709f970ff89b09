"""``warp``: training-free part-wise affine warping of the condition image into the target pose."""
