"""TrainConfig: reference defaults, validation messages, YAML and command-line flags."""

from __future__ import annotations

import argparse

import pytest

from depthhints.config import TrainConfig, add_config_arguments, config_from_args
from depthhints.errors import ConfigError


def test_reference_defaults_and_derived_values():
    config = TrainConfig()
    assert (config.height, config.width, config.batch_size, config.learning_rate) == (
        192,
        640,
        12,
        1e-4,
    )
    assert (config.num_epochs, config.scheduler_step_size, config.disparity_smoothness) == (
        20,
        15,
        1e-3,
    )
    assert config.all_frame_ids == [0, -1, 1] and config.use_pose_net
    stereo = TrainConfig(use_stereo=True, frame_ids=[0])
    assert stereo.all_frame_ids == [0, "s"] and not stereo.use_pose_net


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"use_depth_hints": True, "use_stereo": True, "v1_multiscale": True}, "v1_multiscale"),
        ({"predictive_mask": True}, "disable_automasking"),
        ({"frame_ids": [-1, 0]}, "start with 0"),
        ({"frame_ids": [0]}, "no source view"),
        ({"scales": [0, 4]}, "scales"),
        ({"pose_model_type": "lstm"}, "pose_model_type"),
        ({"batch_size": 2.5}, "batch_size=2.5"),
        ({"use_stereo": "yes"}, "use_stereo='yes'"),
        ({"learning_rate": "fast"}, "learning_rate='fast'"),
        ({"scales": 0}, "expected a list"),
        ({"min_depth": 10.0, "max_depth": 1.0}, "min_depth"),
        ({"hint_supervision": "soft"}, r"hint_supervision='soft': use one of \('hints'"),
        ({"hint_supervision": "sum"}, "hint_supervision='sum'.*set use_depth_hints: true"),
        (
            {"hint_supervision": "hard", "use_stereo": True, "frame_ids": [0]},
            "hint_supervision='hard'.*set use_depth_hints: true",
        ),
    ],
)
def test_bad_values_name_the_option(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(changes)


def test_yaml_round_trip_and_yaml_floats(tmp_path):
    path = tmp_path / "run.yaml"
    config = TrainConfig(use_stereo=True, frame_ids=[0], use_depth_hints=True, num_layers=50)
    config.to_yaml(path)
    assert TrainConfig.from_yaml(path) == config
    path.write_text("learning_rate: 1e-5\n")  # YAML 1.1 reads this as a string
    assert TrainConfig.from_yaml(path).learning_rate == 1e-5


def test_flags_override_the_yaml_file(tmp_path):
    path = tmp_path / "run.yaml"
    TrainConfig(num_layers=50, batch_size=6).to_yaml(path)
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(
        [
            "--config",
            str(path),
            "--batch_size",
            "4",
            "--use_stereo",
            "--frame_ids",
            "0",
            "--no-align_corners",
        ]
    )
    config = config_from_args(args)
    assert (config.num_layers, config.batch_size, config.frame_ids) == (50, 4, [0])
    assert config.use_stereo and not config.align_corners


@pytest.mark.parametrize("supervision", ["hints", "sum", "hard"])
def test_hint_supervision_flag(supervision):
    assert TrainConfig().hint_supervision == "hints"
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    flags = ["--use_stereo", "--frame_ids", "0", "--use_depth_hints"]
    args = parser.parse_args([*flags, "--hint_supervision", supervision])
    assert config_from_args(args).hint_supervision == supervision
