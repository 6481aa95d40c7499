"""All networks of a training run as one ``nn.Module``, so DDP can wrap it.

``DepthHintsModel.forward(batch)`` predicts disparities and poses and synthesises every source
view at every scale; the losses are in :mod:`depthhints.losses`. Submodule names are the
published checkpoint file stems (``encoder``, ``depth``, ``pose_encoder``, ``pose``,
``predictive_mask``), so ``model.encoder.state_dict()`` is what ``encoder.pth`` holds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from depthhints.config import TrainConfig
from depthhints.geometry import warp
from depthhints.models import (
    DepthDecoder,
    PoseCNN,
    PoseDecoder,
    ResnetEncoder,
    disp_to_depth,
    scale_posecnn_translation,
    transformation_from_parameters,
)

Outputs = dict[Any, Any]


class DepthHintsModel(nn.Module):
    """Depth encoder/decoder, pose networks when temporal frames are used, predictive mask.

    Submodules: ``encoder`` and ``depth`` always; with ``config.use_pose_net``,
    ``pose_encoder`` + ``pose`` (separate_resnet) or ``pose`` alone (posecnn, shared);
    ``predictive_mask`` when ``config.predictive_mask``. Absent parts are ``None``.
    ``weights_init='pretrained'`` reads ImageNet weights from ``config.weights_path`` or the torch
    hub cache and raises MissingDataError when they are not there (no silent random init).
    """

    def __init__(self, config: TrainConfig) -> None:
        super().__init__()
        self.config = config
        pretrained = config.weights_init == "pretrained"
        self.frame_ids: list[int] = list(config.frame_ids)
        self.pose_frames = [f for f in self.frame_ids if f != 0]
        self.num_pose_frames = 2 if config.pose_model_input == "pairs" else len(self.frame_ids)

        self.encoder = ResnetEncoder(config.num_layers, pretrained, 1, config.weights_path)
        self.depth = DepthDecoder(self.encoder.num_ch_enc, config.scales)

        self.pose_encoder: ResnetEncoder | None = None
        self.pose: nn.Module | None = None
        if config.use_pose_net:
            pose_type = config.pose_model_type
            n_pred = 2 if config.pose_model_input == "pairs" else self.num_pose_frames - 1
            if pose_type == "separate_resnet":
                self.pose_encoder = ResnetEncoder(
                    config.num_layers, pretrained, self.num_pose_frames, config.weights_path
                )
                self.pose = PoseDecoder(self.pose_encoder.num_ch_enc, 1, n_pred)
            elif pose_type == "shared":
                self.pose = PoseDecoder(self.encoder.num_ch_enc, self.num_pose_frames)
            else:  # posecnn
                self.pose = PoseCNN(self.num_pose_frames)

        self.predictive_mask: DepthDecoder | None = None
        if config.predictive_mask:
            self.predictive_mask = DepthDecoder(
                self.encoder.num_ch_enc, config.scales, len(config.all_frame_ids) - 1
            )

    # ------------------------------------------------------------------ forward
    def forward(self, inputs: Mapping[Any, Tensor]) -> Outputs:
        """Disparities ``("disp", s)``, depths ``("depth", 0, s)``, warped sources
        ``("color", f, s)``, poses ``("cam_T_cam", 0, f)`` (and ``("axisangle"|"translation",
        0, f)``), ``("color_depth_hint", "s", 0)`` with hints, ``("predictive_mask", s)``.

        With ``precision='bf16'`` only the networks run under autocast; their outputs are cast
        back to float32 before poses, view synthesis and the losses.
        """
        config = self.config
        use_shared = config.use_pose_net and config.pose_model_type == "shared"
        with self._networks_precision(inputs[("color_aug", 0, 0)]):
            if use_shared:
                # The depth encoder encodes every frame in one batch (BN statistics as the
                # reference).
                frames = config.all_frame_ids
                stacked = torch.cat([inputs[("color_aug", f, 0)] for f in frames])
                batch = inputs[("color_aug", 0, 0)].shape[0]
                per_level = [feat.split(batch) for feat in self.encoder(self._layout(stacked))]
                features = {f: [level[i] for level in per_level] for i, f in enumerate(frames)}
            else:
                features = {0: self.encoder(self._layout(inputs[("color_aug", 0, 0)]))}
            outputs: Outputs = _float32(self.depth(features[0]))
            if self.predictive_mask is not None:
                for (_, scale), mask in self.predictive_mask(features[0]).items():
                    outputs[("predictive_mask", scale)] = mask.float()
        if config.use_pose_net:
            outputs.update(self._predict_poses(inputs, features))
        self._synthesise(inputs, outputs)
        return outputs

    def _networks_precision(self, example: Tensor) -> contextlib.AbstractContextManager:
        """bf16 autocast for the networks when ``precision='bf16'``, else nothing."""
        enabled = self.config.precision == "bf16"
        return torch.autocast(example.device.type, dtype=torch.bfloat16, enabled=enabled)

    def _layout(self, images: Tensor) -> Tensor:
        """Network input in the configured memory format (channels-last or contiguous)."""
        if self.config.channels_last:
            return images.contiguous(memory_format=torch.channels_last)
        return images

    def _predict_poses(
        self, inputs: Mapping[Any, Tensor], features: dict[Any, list[Tensor]]
    ) -> Outputs:
        """Relative poses target → frame f for the temporal frames.

        docs/method.md#pose-networks.
        """
        assert self.pose is not None
        pose_type = self.config.pose_model_type
        outputs: Outputs = {}

        def run(frames: list[int]) -> tuple[Tensor, Tensor]:
            with self._networks_precision(inputs[("color_aug", 0, 0)]):
                if pose_type == "shared":
                    axisangle, translation = self.pose([features[f] for f in frames])
                else:
                    images = torch.cat([inputs[("color_aug", f, 0)] for f in frames], 1)
                    images = self._layout(images)
                    if pose_type == "posecnn":
                        axisangle, translation = self.pose(images)
                    else:
                        assert self.pose_encoder is not None
                        axisangle, translation = self.pose([self.pose_encoder(images)])
            return axisangle.float(), translation.float()

        if self.config.pose_model_input == "pairs":
            for f in self.pose_frames:
                axisangle, translation = run([f, 0] if f < 0 else [0, f])
                outputs[("axisangle", 0, f)] = axisangle
                outputs[("translation", 0, f)] = translation
                outputs[("cam_T_cam", 0, f)] = transformation_from_parameters(
                    axisangle[:, 0], translation[:, 0], invert=f < 0
                )
        else:
            axisangle, translation = run(self.frame_ids)
            for i, f in enumerate(self.pose_frames):
                outputs[("axisangle", 0, f)] = axisangle[:, i : i + 1]
                outputs[("translation", 0, f)] = translation[:, i : i + 1]
                outputs[("cam_T_cam", 0, f)] = transformation_from_parameters(
                    axisangle[:, i], translation[:, i]
                )
        return outputs

    def _synthesise(self, inputs: Mapping[Any, Tensor], outputs: Outputs) -> None:
        """Depth per scale and every source warped into the target view, in place.

        docs/method.md#view-synthesis.
        """
        config = self.config
        height, width = inputs[("color", 0, 0)].shape[-2:]
        invert_pairs = config.pose_model_input == "pairs"
        for scale in config.scales:
            disp = outputs[("disp", scale)]
            if config.v1_multiscale:
                source_scale = scale
            else:
                disp = F.interpolate(disp, [height, width], mode="bilinear", align_corners=False)
                source_scale = 0
            depth = disp_to_depth(disp, config.min_depth, config.max_depth)[1]
            outputs[("depth", 0, scale)] = depth
            K, inv_K = inputs[("K", source_scale)], inputs[("inv_K", source_scale)]
            for f in config.all_frame_ids[1:]:
                if f == "s":
                    T = inputs["stereo_T"]
                elif config.pose_model_type == "posecnn":
                    # PoseCNN translations are relative to the mean inverse depth of this scale.
                    T = transformation_from_parameters(
                        outputs[("axisangle", 0, f)][:, 0],
                        scale_posecnn_translation(outputs[("translation", 0, f)][:, 0], depth),
                        invert=invert_pairs and f < 0,
                    )
                else:
                    T = outputs[("cam_T_cam", 0, f)]
                outputs[("color", f, scale)] = warp(
                    inputs[("color", f, source_scale)], depth, K, inv_K, T, config.align_corners
                )
        if config.use_depth_hints:
            with torch.no_grad():
                outputs[("color_depth_hint", "s", 0)] = warp(
                    inputs[("color", "s", 0)],
                    inputs["depth_hint"],
                    inputs[("K", 0)],
                    inputs[("inv_K", 0)],
                    inputs["stereo_T"],
                    config.align_corners,
                )


def _float32(outputs: Mapping[Any, Tensor]) -> Outputs:
    return {key: value.float() for key, value in outputs.items()}


def build_model(config: TrainConfig) -> DepthHintsModel:
    """The training model for ``config`` (on CPU; move it with ``.to(device)``).

    ``channels_last`` converts the parameters' memory format; ``compile`` compiles each network
    in place (``nn.Module.compile``: the checkpoint keys stay the published ones).
    """
    model = DepthHintsModel(config)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if config.compile:
        for network in (model.encoder, model.depth, model.pose_encoder, model.pose):
            if network is not None:
                network.compile()
    return model
