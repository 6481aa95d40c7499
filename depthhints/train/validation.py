"""Eigen-protocol validation during training: the paper's 7 metrics after every epoch.

The same prediction and scoring as ``depthhints evaluate`` (Lanczos-resized inputs, no
post-processing, Garg crop and 80 m cap for ``eigen``), on ``eval_split_file``: a split file, a
folder holding test_files.txt or a bundled split name (``eigen``: its test part). On KITTI that
is the Eigen test split with LiDAR GT (``eval_protocol: eigen``) or the annotated maps
(``eigen_benchmark``); on a synthetic drive its dense GT (``dense``: 80 m cap, no crop; or
``eigen_benchmark``: GT > 0). Stereo-trained models are scaled by 5.4, mono ones per image by the
median ratio, as in the reference evaluation. The GT maps are read once, when the run starts.
"""

from __future__ import annotations

import torch

from depthhints.config import TrainConfig
from depthhints.data.kitti import KittiRawLayout, read_split
from depthhints.evaluate import (
    EvalImageDataset,
    EvalResult,
    evaluate_predictions,
    gt_depth_maps,
    predict_disparities,
)
from depthhints.models.depth_net import DepthNet
from depthhints.train.model import DepthHintsModel


class EigenValidator:
    """Scores a training model on ``config.eval_split_file``; build it on the evaluating rank."""

    def __init__(self, config: TrainConfig) -> None:
        if config.eval_split_file is None:
            raise ValueError("EigenValidator needs config.eval_split_file")
        layout = KittiRawLayout(config.data_path)
        items = read_split(config.eval_split_file, ("test",), "--eval_split_file")
        self.config = config
        self.images = EvalImageDataset(layout, items, config.height, config.width)
        self.gt_depths = gt_depth_maps(layout, items, config.eval_protocol)

    def __len__(self) -> int:
        return len(self.gt_depths)

    def __call__(self, model: DepthHintsModel, device: torch.device) -> EvalResult:
        """The metrics of ``model``'s depth network; its train/eval mode is left as found."""
        net = DepthNet(model.encoder, model.depth, self.config.min_depth, self.config.max_depth)
        was_training = model.training
        try:
            disparities = predict_disparities(
                net, self.images, device=device, batch_size=self.config.batch_size
            )
        finally:
            model.train(was_training)
        return evaluate_predictions(
            disparities, self.gt_depths, self.config.eval_protocol, stereo=self.config.use_stereo
        )
