"""Data: the KITTI raw layout (reader), the synthetic stereo-drive generator and split lists."""
