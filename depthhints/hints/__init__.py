"""Depth hints: SGM candidates, their fusion by reprojection loss, and the hint stores."""
