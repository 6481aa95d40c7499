"""The training loop: learning with hints, exact resume, LR schedule, checkpoints, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from depthhints.cli import main
from depthhints.config import TrainConfig
from depthhints.data.kitti import (
    KittiRawLayout,
    SplitItem,
    load_depth_png,
    load_image,
    write_split_file,
)
from depthhints.errors import ConfigError, DataFileError, MissingDataError
from depthhints.models import load_depth_net
from depthhints.predict import predict_depth
from depthhints.train.loop import fit
from tests.helpers import tiny_config

FRAMES = (2, 3)


class Interrupted(Exception):
    pass


def _config(tree: dict, tmp_path: Path, **changes) -> TrainConfig:
    return tiny_config(tree, tmp_path, **changes)


def _abs_rel(tree: dict, weights: Path) -> float:
    """Mean abs rel of the metric depth (×5.4) against dense GT on the training images."""
    layout = KittiRawLayout(tree["root"])
    items = tree["items"]
    images = [load_image(layout.image_path(i.folder, i.frame, i.side)) for i in items]
    errors = []
    for item, depth in zip(items, predict_depth(load_depth_net(weights), images), strict=True):
        gt = load_depth_png(layout.groundtruth_path(item.folder, item.frame, item.side))
        valid = (gt > 0) & (gt < 80)
        errors.append(np.mean(np.abs(depth[valid] - gt[valid]) / gt[valid]))
    return float(np.mean(errors))


@pytest.mark.slow
def test_training_with_hints_drives_loss_and_depth_error_down(tree, tmp_path):
    config = _config(
        tree,
        tmp_path,
        use_depth_hints=True,
        depth_hint_path=str(tree["hints"]),
        disparity_smoothness=0.0,
        learning_rate=1e-3,
        num_epochs=30,
        batch_size=4,
        save_frequency=100,
    )
    untrained = fit(config.replace(num_epochs=1, learning_rate=1e-12, model_name="init"))
    result = fit(config, progress=False)
    losses = [h["loss"] for h in result.history]
    assert np.mean(losses[-3:]) < 0.7 * losses[0]
    before, after = _abs_rel(tree, untrained.weights[-1]), _abs_rel(tree, result.weights[-1])
    assert before > 0.8  # a random net predicts ~1 m everywhere
    assert after < 0.5 * before


@pytest.mark.slow
def test_resume_mid_epoch_continues_with_identical_losses(tree, tmp_path):
    config = _config(tree, tmp_path, num_epochs=2, log_frequency=1, checkpoint_steps=1)
    reference = fit(config.replace(model_name="whole"), progress=False)

    def stop_at_step_3(phase: str, metrics: dict, step: int) -> None:
        if step == 3 and phase == "train":
            raise Interrupted

    interrupted = config.replace(model_name="cut")
    with pytest.raises(Interrupted):
        fit(interrupted, hooks=[stop_at_step_3], progress=False)
    resumed = fit(interrupted, resume=True, progress=False)

    assert [h["step"] for h in resumed.history] == [3]  # 2 epochs x 2 steps; step 3 was cut
    assert resumed.history == reference.history[3:]
    a = torch.load(reference.weights[-1] / "depth.pth")
    b = torch.load(resumed.weights[-1] / "depth.pth")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_resume_at_epoch_boundary_with_augmentation_and_workers(tree, tmp_path):
    config = _config(
        tree,
        tmp_path,
        num_epochs=3,
        num_workers=1,
        use_depth_hints=True,
        depth_hint_path=str(tree["hints"]),
    )
    reference = fit(config.replace(model_name="whole"), progress=False)
    first = fit(config.replace(model_name="cut", num_epochs=1), progress=False)
    rest = fit(config.replace(model_name="cut"), resume=True, progress=False)
    assert first.history + rest.history == reference.history


@pytest.mark.slow
def test_lr_schedule_and_published_checkpoint_layout(tree, tmp_path):
    config = _config(tree, tmp_path, num_epochs=3, scheduler_step_size=2, frame_ids=[0, -1, 1])
    result = fit(config, progress=False)
    lrs = {h["epoch"]: h["lr"] for h in result.history}
    # stepped at the start of each epoch, as the reference: first decay on epoch step - 1
    assert lrs == pytest.approx({0: 1e-4, 1: 1e-5, 2: 1e-5})
    models = config.run_dir / "models"
    assert sorted(p.name for p in models.iterdir()) == [
        "opt.json",
        "state.previous.pt",
        "state.pt",
        "weights_0",
        "weights_1",
        "weights_2",
    ]
    files = sorted(p.name for p in (models / "weights_2").iterdir())
    assert files == ["adam.pth", "depth.pth", "encoder.pth", "pose.pth", "pose_encoder.pth"]
    encoder = torch.load(models / "weights_2" / "encoder.pth", weights_only=True)
    assert (encoder["height"], encoder["width"], encoder["use_stereo"]) == (64, 192, True)
    assert "encoder.conv1.weight" in encoder
    assert json.loads((models / "opt.json").read_text())["frame_ids"] == [0, -1, 1, "s"]
    stereo_only = fit(_config(tree, tmp_path, model_name="s", num_epochs=1), progress=False)
    assert sorted(p.name for p in stereo_only.weights[0].iterdir()) == [
        "adam.pth",
        "depth.pth",
        "encoder.pth",
    ]


def test_bad_inputs_fail_at_start_naming_the_fix(tree, tmp_path):
    with pytest.raises(MissingDataError, match="depthhints hints"):
        fit(_config(tree, tmp_path, use_depth_hints=True, depth_hint_path=str(tmp_path / "none")))
    with pytest.raises(MissingDataError, match="neighbours"):
        fit(_config(tree, tmp_path, frame_ids=[0, -1, 1], split=str(_edge_split(tree, tmp_path))))
    with pytest.raises(ConfigError, match="batch_size"):
        fit(_config(tree, tmp_path, batch_size=64))
    with pytest.raises(MissingDataError, match="ImageNet weights"):
        fit(_config(tree, tmp_path, weights_init="pretrained", weights_path=str(tmp_path / "x")))
    state = tmp_path / "broken.pt"
    state.write_bytes(b"truncated")
    with pytest.raises(DataFileError, match="cannot resume"):
        fit(_config(tree, tmp_path), resume=state)


def _edge_split(tree: dict, tmp_path: Path) -> Path:
    """A split listing the drive's first frame, which has no previous frame."""
    folder = tree["items"][0].folder
    split = tmp_path / "edge"
    split.mkdir()
    for part in ("train", "val"):
        write_split_file(split / f"{part}_files.txt", [SplitItem(folder, 0, "l")] * 2)
    return split


def test_cli_train_then_evaluate_on_the_test_split(tree, tmp_path, capsys):
    root, runs = tree["root"], tmp_path / "runs"
    args = [
        "train",
        "--data_path",
        str(root),
        "--split",
        str(root / "splits"),
        "--log_dir",
        str(runs),
        "--model_name",
        "cli",
        "--height",
        "64",
        "--width",
        "192",
        "--batch_size",
        "4",
        "--num_epochs",
        "1",
        "--weights_init",
        "scratch",
        "--use_stereo",
        "--frame_ids",
        "0",
        "--num_workers",
        "0",
        "--no-progress",
    ]
    assert main(args) == 0
    test_files = str(root / "splits" / "test_files.txt")
    assert (
        main(
            ["export-gt", "--data-path", str(root), "--split", "eigen", "--split-file", test_files]
        )
        == 0
    )
    out = tmp_path / "metrics.json"
    assert (
        main(
            [
                "evaluate",
                "--eval-stereo",
                "--load-weights-folder",
                str(runs / "cli" / "models" / "weights_0"),
                "--data-path",
                str(root),
                "--split-file",
                test_files,
                "--json",
                str(out),
            ]
        )
        == 0
    )
    metrics = json.loads(out.read_text())["metrics"]
    assert list(metrics) == ["abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3"]
    assert all(np.isfinite(v) for v in metrics.values())
    assert "abs_rel" in capsys.readouterr().out


def test_pending_losses_keep_the_order_and_values_of_every_step():
    from depthhints.train.loop import PendingLosses

    history: list[dict] = []
    pending = PendingLosses(history)
    pending.add({"step": 0}, {"loss": torch.tensor(0.5), "loss/0": torch.tensor(0.25)})
    pending.add({"step": 1}, {"loss": 0.125, "loss/0": 0.0625})  # a logged step: floats
    pending.add({"step": 2}, {"loss": torch.tensor(1 / 3), "loss/0": torch.tensor(2.0)})
    assert history == []  # nothing fetched yet
    last = pending.flush()
    assert last == {"loss": torch.tensor(1 / 3).item(), "loss/0": 2.0}
    assert [h["step"] for h in history] == [0, 1, 2]
    assert history[1] == {"step": 1, "loss": 0.125, "loss/0": 0.0625}
    assert all(isinstance(v, float) for h in history for k, v in h.items() if k != "step")
    assert pending.flush() == {} and len(history) == 3
    for step in range(PendingLosses.LIMIT):  # a long epoch is fetched in groups
        pending.add({"step": step}, {"loss": torch.tensor(float(step))})
    assert len(history) == 3 + PendingLosses.LIMIT
