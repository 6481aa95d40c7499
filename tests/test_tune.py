"""Ray Tune sweeps: a failing trial does not stop the others; MLflow parent and child runs."""

from __future__ import annotations

import pytest

from depthhints.errors import ConfigError
from depthhints.tune import apply_choices, parse_space
from tests.helpers import tiny_config


def test_space_parsing_and_derived_dimensions(tree, tmp_path):
    space = parse_space(["use_depth_hints=true,false", "resolution=640x192, 1024x320"])
    assert space == {"use_depth_hints": [True, False], "resolution": ["640x192", "1024x320"]}
    base = tiny_config(tree, tmp_path)
    config = apply_choices(
        base,
        {"resolution": "1024x320", "modality": "MS", "hint_mode": "fast", "seed": 3},
        {"fast": "/stores/fast"},
    )
    assert (config.width, config.height, config.seed) == (1024, 320, 3)
    assert config.frame_ids == [0, -1, 1] and config.use_stereo
    assert config.depth_hint_path == "/stores/fast"
    ablation = [apply_choices(base, {"hints": v}, {"fast": "/f"}) for v in ("off", "fast")]
    assert [(c.use_depth_hints, c.depth_hint_path) for c in ablation] == [
        (False, None),
        (True, "/f"),
    ]
    for bad, message in [
        ({"resolution": "640"}, "WIDTHxHEIGHT"),
        ({"modality": "X"}, "modality"),
        ({"hint_mode": "quality"}, "--hint-store quality="),
        ({"colour": 1}, "unknown sweep dimension"),
    ]:
        with pytest.raises(ConfigError, match=message):
            apply_choices(base, bad, {})
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_space(["num_layers"])


def test_sweep_hints_script_builds_an_ablation_over_stores_and_seeds():
    from experiments.sweep_hints import sweep_arguments

    args = sweep_arguments(
        ["--config", "c.yaml", "--seeds", "2", "--hint-store", "fast=/h", "--max-concurrent", "2"]
    )
    assert args[:5] == ["sweep", "--name", "hint_ablation", "--space", "hints=off,fast"]
    assert "seed=0,1" in args and args[-4:] == ["--config", "c.yaml", "--max-concurrent", "2"]
    default = sweep_arguments(["--data_path", "/kitti"])
    assert "hints=off,parity" in default and "parity=/kitti/depth_hints" in default
