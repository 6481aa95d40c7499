"""Pose networks: ResNet-feature pose decoder, PoseCNN and 6-DoF → 4×4 transforms.

docs/method.md#pose-networks.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import Tensor, nn

from depthhints.errors import ConfigError

POSE_SCALE = 0.01


def _split_pose(out: Tensor, num_poses: int) -> tuple[Tensor, Tensor]:
    """Spatial mean, ×0.01, reshape to (B, n, 1, 6); return (axisangle, translation)."""
    out = POSE_SCALE * out.mean(dim=(2, 3)).view(-1, num_poses, 1, 6)
    return out[..., :3], out[..., 3:]


class PoseDecoder(nn.Module):
    """Predict ``num_frames_to_predict_for`` poses from the last feature of each encoded input.

    Layers sit in ``self.net`` (``net.0`` squeeze 1×1, ``net.1``/``net.2`` 3×3, ``net.3`` 1×1 to
    6·n_pred). ``separate_resnet``: ``PoseDecoder(enc_ch, 1, 2)`` on the pair encoder's features;
    ``shared``: ``PoseDecoder(enc_ch, num_pose_frames)`` on each frame's depth-encoder features.
    """

    def __init__(
        self,
        num_ch_enc: Sequence[int],
        num_input_features: int,
        num_frames_to_predict_for: int | None = None,
    ) -> None:
        super().__init__()
        if num_input_features < 1:
            raise ConfigError(f"num_input_features={num_input_features!r} must be at least 1")
        if num_frames_to_predict_for is None:
            num_frames_to_predict_for = num_input_features - 1
        if num_frames_to_predict_for < 1:
            raise ConfigError(
                f"num_frames_to_predict_for={num_frames_to_predict_for!r} must be at least 1; "
                "pass it explicitly when num_input_features is 1"
            )
        self.num_input_features = num_input_features
        self.num_frames_to_predict_for = num_frames_to_predict_for
        self.net = nn.ModuleList(
            [
                nn.Conv2d(num_ch_enc[-1], 256, 1),
                nn.Conv2d(num_input_features * 256, 256, 3, 1, 1),
                nn.Conv2d(256, 256, 3, 1, 1),
                nn.Conv2d(256, 6 * num_frames_to_predict_for, 1),
            ]
        )
        self.relu = nn.ReLU()

    def forward(self, input_features: Sequence[Sequence[Tensor]]) -> tuple[Tensor, Tensor]:
        """``input_features``: one feature list per input; returns two (B, n_pred, 1, 3) tensors."""
        if len(input_features) != self.num_input_features:
            raise ConfigError(
                f"PoseDecoder got {len(input_features)} feature lists; built for "
                f"num_input_features={self.num_input_features}"
            )
        squeezed = [self.relu(self.net[0](features[-1])) for features in input_features]
        x = torch.cat(squeezed, dim=1)
        x = self.relu(self.net[1](x))
        x = self.relu(self.net[2](x))
        return _split_pose(self.net[3](x), self.num_frames_to_predict_for)


class PoseCNN(nn.Module):
    """The ``posecnn`` pose network on ``num_input_frames`` channel-stacked RGB images.

    Predicts ``num_input_frames − 1`` poses. The caller multiplies the translation by the mean
    inverse predicted depth (see :func:`scale_posecnn_translation`).
    """

    def __init__(self, num_input_frames: int) -> None:
        super().__init__()
        if num_input_frames < 2:
            raise ConfigError(f"num_input_frames={num_input_frames!r} must be at least 2")
        self.num_input_frames = num_input_frames
        self.num_ch_enc = [16, 32, 64, 128, 256, 256, 256]
        specs = [(3 * num_input_frames, 16, 7, 3), (16, 32, 5, 2)]
        specs += [(c_in, c_out, 3, 1) for c_in, c_out in pairwise(self.num_ch_enc[1:])]
        self.net = nn.ModuleList([nn.Conv2d(i, o, k, 2, p) for i, o, k, p in specs])
        self.pose_conv = nn.Conv2d(self.num_ch_enc[-1], 6 * (num_input_frames - 1), 1)
        self.relu = nn.ReLU()

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``images``: (B, 3·n, H, W); returns axisangle and translation, each (B, n−1, 1, 3)."""
        expected = 3 * self.num_input_frames
        if images.dim() != 4 or images.shape[1] != expected:
            raise ConfigError(
                f"PoseCNN input has shape {tuple(images.shape)}; expected (B, {expected}, H, W)"
            )
        x = images
        for conv in self.net:
            x = self.relu(conv(x))
        return _split_pose(self.pose_conv(x), self.num_input_frames - 1)


def scale_posecnn_translation(translation: Tensor, depth: Tensor) -> Tensor:
    """Multiply (B, ..., 3) translations by the per-sample mean inverse depth of (B, 1, H, W)."""
    mean_inv_depth = (1.0 / depth).mean(dim=(1, 2, 3))
    return translation * mean_inv_depth.view(-1, *([1] * (translation.dim() - 1)))


def rot_from_axisangle(axisangle: Tensor) -> Tensor:
    """Rodrigues rotation (B, 1, 3) → (B, 4, 4); the angle gets 1e-7 before dividing the axis."""
    angle = torch.linalg.vector_norm(axisangle, dim=2, keepdim=True)
    axis = axisangle / (angle + 1e-7)
    cos = torch.cos(angle)[:, 0, 0]
    sin = torch.sin(angle)[:, 0, 0]
    x, y, z = axis[:, 0, 0], axis[:, 0, 1], axis[:, 0, 2]
    zeros = torch.zeros_like(x)
    # R = cos·I + sin·[k]× + (1 − cos)·k kᵀ
    k = axis[:, 0, :]
    outer = k.unsqueeze(2) * k.unsqueeze(1)
    skew = torch.stack([zeros, -z, y, z, zeros, -x, -y, x, zeros], dim=1).view(-1, 3, 3)
    eye = torch.eye(3, dtype=axisangle.dtype, device=axisangle.device).expand_as(outer)
    rot3 = cos.view(-1, 1, 1) * eye + sin.view(-1, 1, 1) * skew + (1 - cos).view(-1, 1, 1) * outer
    rot = torch.zeros(axisangle.shape[0], 4, 4, dtype=axisangle.dtype, device=axisangle.device)
    rot[:, :3, :3] = rot3
    rot[:, 3, 3] = 1.0
    return rot


def get_translation_matrix(translation: Tensor) -> Tensor:
    """Translation (B, 1, 3) or (B, 3) → homogeneous (B, 4, 4)."""
    t = translation.reshape(-1, 3)
    mat = torch.eye(4, dtype=t.dtype, device=t.device).repeat(t.shape[0], 1, 1)
    mat[:, :3, 3] = t
    return mat


def transformation_from_parameters(
    axisangle: Tensor, translation: Tensor, invert: bool = False
) -> Tensor:
    """6-DoF parameters (B, 1, 3) each → (B, 4, 4): ``T(t)·R``, or ``Rᵀ·T(−t)`` when inverted."""
    rot = rot_from_axisangle(axisangle)
    t = translation.clone()
    if invert:
        rot = rot.transpose(1, 2)
        t = -t
    trans = get_translation_matrix(t)
    return torch.matmul(rot, trans) if invert else torch.matmul(trans, rot)
