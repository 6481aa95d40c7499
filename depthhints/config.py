"""One typed training configuration, validated, with YAML in/out.

Option names are the reference's (``use_depth_hints``, ``num_layers``, ``frame_ids``,
``scheduler_step_size``, ...) so the paper's commands translate one to one; defaults are the
reference defaults (docs/method.md#options). Each field's docstring documents it (it is the
field's ``--help``, read by :func:`field_docs`); options the reference lacks say "(ours)".
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import functools
import inspect
import json
import textwrap
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from depthhints.errors import ConfigError

NUM_LAYERS = (18, 34, 50, 101, 152)
WEIGHTS_INIT = ("pretrained", "scratch")
HINT_SUPERVISION = ("hints", "sum", "hard")
POSE_MODEL_TYPES = ("separate_resnet", "posecnn", "shared")
POSE_MODEL_INPUTS = ("pairs", "all")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16")
LOADERS = ("reference", "cache")
EVAL_PROTOCOLS = ("eigen", "eigen_benchmark", "dense")  # the GTs depthhints.evaluate scores


@dataclass
class TrainConfig:
    """Everything a training run needs; ``validate()`` runs on construction."""

    # paths
    data_path: str = "kitti_data"
    """KITTI raw root (or a synthetic tree) holding the images."""
    log_dir: str = "runs"
    """Folder of the runs: each run writes to <log_dir>/<model_name>."""
    model_name: str = "mdp"
    """Name of the run: its folder under log_dir, its Ray Train and MLflow run name."""
    split: str = "eigen_zhou"
    """Training split: a bundled name (eigen_zhou, eigen_full, odom, benchmark) or a folder
    holding train_files.txt and val_files.txt (or one of those two files)."""
    depth_hint_path: str | None = None
    """Folder of the precomputed depth hints (unset: <data_path>/depth_hints)."""
    weights_path: str | None = None
    """ImageNet weights file for weights_init pretrained (unset: the torch hub cache) (ours)."""
    # model and losses
    num_layers: int = 18
    """ResNet depth of the encoders: 18, 34, 50, 101 or 152."""
    height: int = 192
    """Network input height in pixels, a multiple of 32."""
    width: int = 640
    """Network input width in pixels, a multiple of 32."""
    disparity_smoothness: float = 1e-3
    """Weight of the edge-aware disparity smoothness loss."""
    scales: list[int] = field(default_factory=lambda: [0, 1, 2, 3])
    """Decoder scales in the loss: s predicts at 1/2^s of the input size."""
    min_depth: float = 0.1
    """Smallest depth the network can predict, in metres."""
    max_depth: float = 100.0
    """Largest depth the network can predict, in metres."""
    use_stereo: bool = False
    """Train on stereo pairs: the other camera ('s') becomes a source view."""
    frame_ids: list[int] = field(default_factory=lambda: [0, -1, 1])
    """Frames of a sample as offsets from the target: 0 first, then the temporal source views."""
    use_depth_hints: bool = False
    """Supervise with the precomputed SGM depth hints (needs use_stereo;
    docs/method.md#losses)."""
    hint_supervision: str = "hints"
    """Where hints supervise: hints (as published: where the hint reprojects better than the
    prediction), sum (every valid hint pixel, with the photometric loss) or hard (every valid
    hint pixel, without the photometric loss) (ours)."""
    # optimisation
    batch_size: int = 12
    """Samples per batch (per worker on Ray Train)."""
    learning_rate: float = 1e-4
    """Adam learning rate."""
    num_epochs: int = 20
    """Training epochs."""
    scheduler_step_size: int = 15
    """Epochs between the learning rate's x0.1 steps (docs/method.md#quirk-lr-schedule)."""
    # ablations
    v1_multiscale: bool = False
    """Score each scale at its own resolution (Monodepth v1) instead of upsampled to the input
    size."""
    avg_reprojection: bool = False
    """Average the source views' reprojection losses instead of taking the per-pixel minimum."""
    disable_automasking: bool = False
    """Turn off auto-masking, which ignores pixels an unwarped source view matches better."""
    predictive_mask: bool = False
    """Learn an explainability mask instead of auto-masking (needs disable_automasking)."""
    no_ssim: bool = False
    """Photometric loss from L1 alone, without SSIM."""
    weights_init: str = "pretrained"
    """Encoder initialisation: pretrained (ImageNet weights) or scratch."""
    pose_model_input: str = "pairs"
    """Pose network input: pairs (the target with each source view) or all frames at once."""
    pose_model_type: str = "separate_resnet"
    """Pose network: separate_resnet (its own ResNet encoder), posecnn, or shared (the depth
    encoder's features)."""
    align_corners: bool = True
    """Warp with align_corners=True, as the authors trained; False is what the published code
    does on PyTorch >= 1.3 (ours; docs/method.md#quirk-align-corners)."""
    # system
    device: str = "auto"
    """auto (cuda when available), cpu or cuda (ours)."""
    num_workers: int = 2
    """Data-loading processes (0: load in the training process)."""
    seed: int = 0
    """Seed of initialisation, shuffling and augmentation (ours)."""
    load_gt: bool = False
    """Load each sample's LiDAR ground truth for training-time depth metrics; costly (ours;
    docs/method.md#quirk-training-ground-truth)."""
    # speed (ours; the defaults are the published computation)
    precision: str = "fp32"
    """fp32, or bf16: the networks under bf16 autocast, view synthesis and losses in fp32
    (ours)."""
    channels_last: bool = False
    """Networks and their inputs in channels-last memory format (ours)."""
    compile: bool = False
    """torch.compile the networks; the first steps pay the compilation (ours)."""
    loader: str = "reference"
    """reference: the published data pipeline; cache: a one-time pyramid cache, with flip,
    colour jitter and hints on the device (ours)."""
    cache_dir: str | None = None
    """Folder of the training cache (unset: <log_dir>/training_cache) (ours)."""
    # validation (ours): Eigen-protocol metrics after every epoch on a split with ground truth
    eval_split_file: str | None = None
    """Split file or bundled name (eigen) scored after every epoch (unset: no validation)
    (ours)."""
    eval_protocol: str = "eigen"
    """Ground truth of that validation: eigen (LiDAR), eigen_benchmark (annotated maps) or
    dense (synthetic trees) (ours)."""
    # logging and checkpoints
    log_frequency: int = 250
    """Batches between logged steps in the first 2000 steps; every 2000 steps after that."""
    save_frequency: int = 1
    """Epochs between saved weights (the last epoch is always saved)."""
    checkpoint_steps: int = 0
    """Also save the full training state every N steps (0: at epoch ends only) (ours)."""

    def __post_init__(self) -> None:
        self.validate()

    # ----------------------------------------------------------------- derived values
    @property
    def all_frame_ids(self) -> list[int | str]:
        """``frame_ids`` plus ``'s'`` when training with stereo (as the reference's options)."""
        return [*self.frame_ids, "s"] if self.use_stereo else list(self.frame_ids)

    @property
    def use_pose_net(self) -> bool:
        return not (self.use_stereo and self.frame_ids == [0])

    @property
    def run_dir(self) -> Path:
        return Path(self.log_dir) / self.model_name

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir or Path(self.log_dir) / "training_cache")

    @property
    def hint_path(self) -> Path:
        return Path(self.depth_hint_path or Path(self.data_path) / "depth_hints")

    # ----------------------------------------------------------------- validation
    def validate(self) -> None:
        """Check types and combinations; raises ConfigError naming the option and the fix."""
        for f in fields(self):
            try:
                _check_type(f.name, getattr(self, f.name), _field_types()[f.name])
            except ConfigError as exc:
                if _default(f) is None:
                    raise
                raise ConfigError(f"{exc}, e.g. {f.name}: {json.dumps(_default(f))}") from None
        checks = [
            (
                self.num_layers in NUM_LAYERS,
                f"num_layers={self.num_layers}: use one of {NUM_LAYERS}",
            ),
            (
                self.height % 32 == 0 and self.width % 32 == 0 and self.height > 0 < self.width,
                f"height={self.height}, width={self.width}: both must be positive multiples of 32 "
                "(e.g. height 192, width 640)",
            ),
            (
                bool(self.scales)
                and all(s in range(4) for s in self.scales)
                and len(set(self.scales)) == len(self.scales),
                f"scales={self.scales}: use distinct values in 0..3",
            ),
            (
                bool(self.frame_ids)
                and self.frame_ids[0] == 0
                and len(set(self.frame_ids)) == len(self.frame_ids),
                f"frame_ids={self.frame_ids}: must start with 0 and not repeat "
                "(add 's' with use_stereo, not in frame_ids)",
            ),
            (
                self.use_stereo or len(self.frame_ids) > 1,
                "frame_ids=[0] without use_stereo has no source view to learn from",
            ),
            (
                not self.use_depth_hints or self.use_stereo,
                "use_depth_hints needs use_stereo (hints supervise the stereo frame); set "
                "use_stereo: true or drop use_depth_hints",
            ),
            (
                self.hint_supervision in HINT_SUPERVISION,
                f"hint_supervision={self.hint_supervision!r}: use one of {HINT_SUPERVISION}",
            ),
            (
                self.hint_supervision == "hints" or self.use_depth_hints,
                f"hint_supervision={self.hint_supervision!r} supervises with the depth hints; "
                "set use_depth_hints: true (with use_stereo: true) or use hint_supervision: hints",
            ),
            (
                not (self.use_depth_hints and self.v1_multiscale),
                "use_depth_hints with v1_multiscale is not implemented (as in the reference)",
            ),
            (
                not self.predictive_mask or self.disable_automasking,
                "predictive_mask needs disable_automasking (as in the reference)",
            ),
            (0 < self.min_depth < self.max_depth, "need 0 < min_depth < max_depth"),
            (self.batch_size >= 1, f"batch_size={self.batch_size} must be at least 1"),
            (
                self.learning_rate > 0,
                f"learning_rate={self.learning_rate} must be positive (the reference uses 1e-4)",
            ),
            (self.num_epochs >= 1, f"num_epochs={self.num_epochs} must be at least 1"),
            (self.scheduler_step_size >= 1, "scheduler_step_size must be at least 1"),
            (self.disparity_smoothness >= 0, "disparity_smoothness must be ≥ 0"),
            (self.weights_init in WEIGHTS_INIT, f"weights_init: use one of {WEIGHTS_INIT}"),
            (
                self.pose_model_type in POSE_MODEL_TYPES,
                f"pose_model_type: use one of {POSE_MODEL_TYPES}",
            ),
            (
                self.pose_model_input in POSE_MODEL_INPUTS,
                f"pose_model_input: use one of {POSE_MODEL_INPUTS}",
            ),
            (self.device in DEVICES, f"device={self.device!r}: use one of {DEVICES}"),
            (
                self.eval_protocol in EVAL_PROTOCOLS,
                f"eval_protocol={self.eval_protocol!r}: use one of {EVAL_PROTOCOLS}",
            ),
            (self.num_workers >= 0, "num_workers must be ≥ 0"),
            (
                self.precision in PRECISIONS,
                f"precision={self.precision!r}: use one of {PRECISIONS}",
            ),
            (self.loader in LOADERS, f"loader={self.loader!r}: use one of {LOADERS}"),
            (
                not (self.loader == "cache" and self.load_gt),
                "load_gt needs loader: reference (the training cache holds no LiDAR scans)",
            ),
            (self.log_frequency >= 1 and self.save_frequency >= 1, "frequencies must be ≥ 1"),
            (self.checkpoint_steps >= 0, "checkpoint_steps must be ≥ 0 (0: at epoch ends)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"invalid training config: {message}")

    # ----------------------------------------------------------------- I/O
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a mapping; unknown keys and wrong types raise ConfigError naming them."""
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: expected a mapping of option: value, got {values!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            guesses = {k: difflib.get_close_matches(k, known, n=1) for k in unknown}
            hint = ", ".join(f"{g[0]!r} for {k!r}" for k, g in guesses.items() if g)
            raise ConfigError(
                f"{source}: unknown option(s) {unknown}; "
                + (f"did you mean {hint}? " if hint else "")
                + f"remove or rename them (known options: {sorted(known)})"
            )
        types_ = _field_types()
        values = {k: _coerce_float(v) if types_[k] is float else v for k, v in values.items()}
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        try:
            with path.open(encoding="utf-8") as stream:  # YAML errors then name the file
                values = yaml.safe_load(stream) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"{path} is not valid YAML ({exc}); fix the syntax at the line shown"
            ) from exc
        return cls.from_dict(values, source=str(path))

    def replace(self, **changes: Any) -> TrainConfig:
        return self.from_dict({**self.to_dict(), **changes}, source="config override")


@functools.cache
def field_docs(cls: type = TrainConfig) -> dict[str, str]:
    """Each field's docstring (the string literal under the field) of the dataclass ``cls``, by
    field name, in one line."""
    (tree,) = ast.parse(textwrap.dedent(inspect.getsource(cls))).body
    assert isinstance(tree, ast.ClassDef)
    docs = {}
    for node, after in zip(tree.body, tree.body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--<option>`` per TrainConfig field (reference spelling), all defaulting to unset.

    Booleans take ``--flag``/``--no-flag``; lists take several values (``--frame_ids 0 -1 1``).
    Each help is the field's docstring and TrainConfig's default.
    """
    parser.add_argument("--config", type=Path, help="YAML file of options (flags override it)")
    group = parser.add_argument_group(
        "training options",
        "the published code's names and defaults (docs/method.md#options); a flag overrides "
        "the --config file, which overrides the default",
    )
    docs = field_docs()
    for f in fields(TrainConfig):
        name, kind, default = f.name, _field_types()[f.name], _default(f)
        flag = f"--{name}"
        shown = " ".join(map(str, default)) if isinstance(default, list) else default
        help_text = docs.get(name, "").removesuffix(".")
        help_text += "" if default is None else f" (default: {shown})"
        help_text = help_text.replace("%", "%%")
        if kind is bool:
            group.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        elif typing.get_origin(kind) is list:
            item = _flag_type(typing.get_args(kind)[0], f"{flag} {shown}")
            group.add_argument(flag, nargs="+", type=item, default=None, help=help_text)
        else:
            scalar = next((t for t in typing.get_args(kind) if t is not type(None)), kind)
            group.add_argument(
                flag, type=_flag_type(scalar, f"{flag} {shown}"), default=None, help=help_text
            )


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The YAML file (if any) with every flag given on the command line applied on top."""
    values = TrainConfig.from_yaml(args.config).to_dict() if args.config else {}
    for name in _field_types():
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    return TrainConfig.from_dict(values, source=str(args.config or "command line"))


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


_KIND_NAMES = {int: "an integer", float: "a number"}


def _flag_type(kind: type, example: str) -> Any:
    """argparse ``type=`` for ``kind`` whose error shows an example (argparse names the flag)."""
    if kind is str:
        return str

    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {_KIND_NAMES.get(kind, kind.__name__)}; give one, e.g. {example}"
            ) from None

    parse.__name__ = kind.__name__
    return parse


def _coerce_float(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; accept it for float options."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _check_type(name: str, value: Any, expected: Any) -> None:
    """Strict check of a config value against its annotation (int is accepted for float)."""
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(expected)
        errors = []
        for option in options:
            try:
                _check_type(name, value, option)
                return
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if expected is type(None):
        ok = value is None
    elif origin is list:
        (item_type,) = typing.get_args(expected)
        if not isinstance(value, list):
            raise ConfigError(f"option {name}={value!r}: expected a list of {item_type.__name__}")
        for item in value:
            _check_type(name, item, item_type)
        return
    elif expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise ConfigError(
            f"option {name}={value!r} ({type(value).__name__}): expected {expected.__name__}"
        )
