"""Bad-input catalogue: one row per kind of broken input a user can hand the project.

Each case builds the bad input under tmp_path (next to a copy of a tiny synthetic KITTI drive)
and makes the call a user's command would make. It must raise exactly ``error``, with a message
that names the offending file / line / value (``names``) and says the fix (``fix``), and every
file under tmp_path (data, hint store, checkpoints, output folders) must be byte-identical
afterwards: nothing is written, nothing half-written is left. A case that runs a command
(``_cli``) is also run as ``depthhints`` runs it, which must exit with status 2 and print the
message, one line, alone.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.models as tvm
from PIL import Image

from depthhints.cli import build_parser, main
from depthhints.config import TrainConfig
from depthhints.data import synthetic as syn
from depthhints.data.dataset import MonoDataset
from depthhints.data.hint_store import NpyHintStore, StoreMismatchError, hint_key, open_store
from depthhints.data.kitti import KittiRawLayout, SplitItem, read_split_file
from depthhints.errors import (
    CalibrationError,
    ConfigError,
    DataFileError,
    DepthHintsError,
    MissingDataError,
    SplitFormatError,
)
from depthhints.evaluate import save_gt_depths
from depthhints.export import export_depth_net
from depthhints.models import ResnetEncoder
from depthhints.train.checkpoint import load_state
from hints_worker.actors import HintConfig

DRIVE = syn.DriveConfig(num_frames=3, width=128, height=64, seed=3)
ITEM = SplitItem(DRIVE.folder, 1, "l")  # frame 1: both temporal neighbours exist
GOOD_LINE = f"{DRIVE.folder} 1 l"
STANDARD_ERRORS = (SystemExit,)  # argparse reports unparsable flags by exiting with status 2


@dataclass(frozen=True)
class Case:
    """A bad input: ``setup(tmp)`` breaks something and returns the call that must fail."""

    id: str
    setup: Callable[[Path], Callable[[], object]]
    error: type[BaseException]
    names: tuple[str, ...]
    fix: str


# ------------------------------------------------------------------------------------ helpers


def _image(tmp: Path, side: str = "l", ext: str = ".png") -> Path:
    return KittiRawLayout(tmp / "kitti", ext).image_path(ITEM.folder, ITEM.frame, side)


def _sample(tmp: Path, frame_ids=(0, "s"), ext: str = ".png", **options) -> Callable:
    """The training loader's read of ITEM (64x128, no augmentation)."""
    layout = KittiRawLayout(tmp / "kitti", ext)
    dataset = MonoDataset(layout, [ITEM], 64, 128, frame_ids=frame_ids, **options)
    return lambda: dataset[0]


def _rewrite(path: Path, change: Callable[[Image.Image], Image.Image], ext: str = ".png") -> None:
    """Replace ``path`` by ``change(image)``, saved under the suffix ``ext``."""
    with Image.open(path) as image:
        changed = change(image.convert("RGB"))
    path.unlink()
    changed.save(path.with_suffix(ext))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _one_list(tmp: Path, text: str = GOOD_LINE + "\n") -> Path:
    """``tmp/split.txt``, a split list of its own."""
    path = tmp / "split.txt"
    path.write_text(text)
    return path


def _split(tmp: Path, text: str) -> Callable:
    path = _one_list(tmp, text)
    return lambda: read_split_file(path)


def _bad_line(line: str) -> Callable[[Path], Callable]:
    return lambda tmp: _split(tmp, f"{GOOD_LINE}\n{line}\n{GOOD_LINE}\n")


def _yaml(text: str) -> Callable[[Path], Callable]:
    def setup(tmp: Path) -> Callable:
        (tmp / "run.yaml").write_text(text)
        return lambda: TrainConfig.from_yaml(tmp / "run.yaml")

    return setup


def _cli(*argv: object) -> Callable:
    """The command as ``depthhints`` runs it, without main()'s conversion to exit status 2
    (``run.argv``: its arguments, for running it through main() too)."""

    def run() -> object:
        args = build_parser().parse_args(run.argv)
        return args.func(args)

    run.argv = [str(a) for a in argv]
    return run


def _blocked(tmp: Path) -> Path:
    """An output folder that cannot be made, even by root: its parent is a file."""
    (tmp / "notes.txt").write_text("a file, not a folder\n")
    return tmp / "notes.txt" / "out"


def _split_folder(tmp: Path, parts: tuple[str, ...] = ("train", "val")) -> Path:
    """``tmp/splits`` holding a one-line ``<part>_files.txt`` for each of ``parts``."""
    folder = tmp / "splits"
    folder.mkdir(exist_ok=True)
    for part in parts:
        (folder / f"{part}_files.txt").write_text(GOOD_LINE + "\n")
    return folder


def _train(tmp: Path, *argv: object) -> Callable:
    """``depthhints train`` on the copied drive's split, logging under tmp, plus ``argv``."""
    split = ("--split", _split_folder(tmp)) if "--split" not in argv else ()
    return _cli("train", "--data_path", tmp / "kitti", "--log_dir", tmp / "runs", *split, *argv)


def _hints(height: int = 32, width: int = 64, **settings) -> HintConfig:
    return HintConfig(height=height, width=width, **settings)


def _store(tmp: Path) -> NpyHintStore:
    """A 32x64 hint store holding ITEM's hint."""
    store = open_store(tmp / "hints", _hints().manifest("npy", tmp / "kitti"))
    store.write(hint_key(ITEM), np.ones((32, 64), np.float32))
    return store


def _stored_hint(values: dict[tuple[int, int], float]) -> Callable[[Path], Callable]:
    """ITEM's hint file overwritten (as by another tool) with ``values`` at some pixels."""

    def setup(tmp: Path) -> Callable:
        store = _store(tmp)
        hint = np.ones((1, 32, 64), np.float32)
        for (row, col), value in values.items():
            hint[0, row, col] = value
        np.save(store.path(hint_key(ITEM)), hint)
        return _sample(tmp, frame_ids=(0,), hint_store=store)

    return setup


@cache
def _resnet50_keys() -> tuple[str, ...]:
    return tuple(tvm.resnet50(weights=None).state_dict())


def _resnet50_state(prefix: str = "") -> dict:
    """Keys of a torchvision ResNet50 (tiny values: only the layout is read before the error)."""
    return {prefix + key: torch.zeros(1) for key in _resnet50_keys()}


# ------------------------------------------------------------------------------------ setups


def missing_image(side: str) -> Callable[[Path], Callable]:
    def setup(tmp: Path) -> Callable:
        _image(tmp, side).unlink()
        return _sample(tmp)

    return setup


def zero_byte_png(tmp: Path) -> Callable:
    _image(tmp).write_bytes(b"")
    return _sample(tmp)


def truncated_png(tmp: Path) -> Callable:
    _truncate(_image(tmp))
    return _sample(tmp)


def truncated_jpeg(tmp: Path) -> Callable:
    _rewrite(_image(tmp), lambda image: image, ".jpg")
    _truncate(_image(tmp, ext=".jpg"))
    return _sample(tmp, frame_ids=(0,), ext=".jpg")


def not_an_image(tmp: Path) -> Callable:
    _image(tmp).write_text("<html>404 Not Found</html>")
    return _sample(tmp)


def stereo_size_mismatch(tmp: Path) -> Callable:
    _rewrite(_image(tmp, "r"), lambda image: image.resize((120, 64)))
    return _sample(tmp)


def greyscale_image(tmp: Path) -> Callable:
    _rewrite(_image(tmp), lambda image: image.convert("L"))
    return _sample(tmp)


def missing_calib(tmp: Path) -> Callable:
    (tmp / "kitti" / DRIVE.date / "calib_cam_to_cam.txt").unlink()
    return _sample(tmp, frame_ids=(0,), load_gt=True)


def garbled_calib(tmp: Path) -> Callable:
    (tmp / "kitti" / DRIVE.date / "calib_velo_to_cam.txt").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    return _sample(tmp, frame_ids=(0,), load_gt=True)


def velodyne_odd_length(tmp: Path) -> Callable:
    path = KittiRawLayout(tmp / "kitti", ".png").velodyne_path(ITEM.folder, ITEM.frame)
    path.parent.mkdir(parents=True)
    path.write_bytes(np.ones((10, 4), np.float32).tobytes() + b"\0" * 7)  # 167 bytes
    return _sample(tmp, frame_ids=(0,), load_gt=True)


def store_of(**change) -> Callable[[Path], Callable]:
    def setup(tmp: Path) -> Callable:
        _store(tmp)
        manifest = _hints(**change).manifest("npy", tmp / "kitti")
        return lambda: open_store(tmp / "hints", manifest)

    return setup


def imagenet_weights_absent(tmp: Path) -> Callable:
    return lambda: ResnetEncoder(18, pretrained=True)  # TORCH_HOME is an empty tmp folder


def imagenet_weights_corrupt(tmp: Path) -> Callable:
    (tmp / "resnet18.pth").write_bytes(b"PK\x03\x04 cut short")
    return lambda: ResnetEncoder(18, pretrained=True, weights_path=tmp / "resnet18.pth")


def imagenet_weights_of_resnet50(tmp: Path) -> Callable:
    path = tmp / "resnet50-0676ba61.pth"
    torch.save(_resnet50_state(), path)
    return lambda: ResnetEncoder(18, pretrained=True, weights_path=path)


def corrupt_training_state(tmp: Path) -> Callable:
    path = tmp / "runs" / "mdp" / "models" / "state.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 cut short")
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters())
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 15)
    return lambda: load_state(path, model, optimizer, scheduler)


def resnet50_checkpoint_as_resnet18(tmp: Path) -> Callable:
    weights = tmp / "weights_19"
    weights.mkdir()
    encoder = {**_resnet50_state("encoder."), "height": 192, "width": 640}
    torch.save(encoder, weights / "encoder.pth")
    torch.save({}, weights / "depth.pth")
    (tmp / "export").mkdir()
    (tmp / "export" / "export.json").write_text('{"from": "an earlier export"}\n')
    return lambda: export_depth_net(weights, tmp / "export", num_layers=18)


def gt_with_wrong_frame_count(tmp: Path) -> Callable:
    np.save(tmp / "disps.npy", np.full((3, 8, 16), 0.1, np.float32))
    save_gt_depths(tmp / "gt_depths.npz", [np.ones((8, 16), np.float32)] * 2)
    (tmp / "metrics.json").write_text('{"from": "an earlier run"}\n')
    return _cli(
        *("evaluate", "--eval-stereo", "--eval-split", "eigen"),
        *("--ext-disp-to-eval", tmp / "disps.npy", "--gt", tmp / "gt_depths.npz"),
        *("--json", tmp / "metrics.json", "--save-pred-disps", tmp / "saved_disps.npy"),
    )


def predict_out_blocked(tmp: Path) -> Callable:
    return _cli("predict", "--load-weights-folder", tmp, _image(tmp), "--out", _blocked(tmp))


def export_out_is_a_file(tmp: Path) -> Callable:
    _blocked(tmp)
    return _cli("export", "--load-weights-folder", tmp, "--out", tmp / "notes.txt")


def hints_out_blocked(tmp: Path) -> Callable:
    split = _split_folder(tmp) / "train_files.txt"
    return _cli("hints", "--data-path", tmp / "kitti", "--split", split, "--out", _blocked(tmp))


def sweep_storage_path_blocked(tmp: Path) -> Callable:
    return _cli(
        *("sweep", "--space", "seed=1,2", "--data_path", tmp / "kitti", "--log_dir", tmp / "runs"),
        *("--split", _split_folder(tmp), "--storage-path", _blocked(tmp)),
    )


def report_of_a_sweep_that_does_not_exist(tmp: Path) -> Callable:
    from mlflow import MlflowClient

    from depthhints.results import EVALUATION_KIND

    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("depth-hints")
    tags = {"source": "ours", "run_kind": EVALUATION_KIND, "sweep": "table_demo"}
    run = client.create_run(experiment, tags={**tags, "sweep_run_id": "1"})
    client.set_terminated(run.info.run_id)
    return _cli("report", "--tracking-uri", uri, "--sweep", "tabel_demo", "--out", tmp / "r.html")


# ------------------------------------------------------------------------------------ catalogue

IMAGE = "image_02/data/0000000001.png"
PARTNER = "image_03/data/0000000001.png"
SPLIT_FIX = "expected '<date>/<drive>_sync <frame> <l|r>'"
WRITE_FIX = "choose a folder you can write to"
BLOCKED = "notes.txt/out"
TRAIN_SPLIT_FIX = "or a folder holding train_files.txt and val_files.txt"
SPLIT_FORMS_FIX = "a split file, or a folder of <part>_files.txt lists"
STORE_FIX = "use sqlite:///<path> for a database file, or http(s)://host:port for a server"

CASES = [
    # images
    Case("missing-left-image", missing_image("l"), MissingDataError, (IMAGE,), "the data root"),
    Case(
        "missing-right-image",
        missing_image("r"),
        MissingDataError,
        (PARTNER, "stereo partner"),
        "extract both image_02 and image_03",
    ),
    Case("zero-byte-png", zero_byte_png, DataFileError, (IMAGE, "0 bytes"), "re-extract"),
    Case("truncated-png", truncated_png, DataFileError, (IMAGE, "truncated"), "re-extract"),
    Case(
        "truncated-jpeg",
        truncated_jpeg,
        DataFileError,
        ("image_02/data/0000000001.jpg", "truncated"),
        "re-extract",
    ),
    Case("not-an-image", not_an_image, DataFileError, (IMAGE, "cannot decode"), "re-extract"),
    Case(
        "stereo-pair-size-mismatch",
        stereo_size_mismatch,
        DataFileError,
        (PARTNER, "120x64", IMAGE, "128x64"),
        "re-extract the drive",
    ),
    Case(
        "greyscale-image",
        greyscale_image,
        DataFileError,
        (IMAGE, "greyscale", "mode L"),
        "re-extract the colour images",
    ),
    # calibration and LiDAR
    Case(
        "missing-calib-file",
        missing_calib,
        MissingDataError,
        ("2011_01_01/calib_cam_to_cam.txt",),
        "extract the calibration zip",
    ),
    Case(
        "garbled-calib-file",
        garbled_calib,
        CalibrationError,
        ("calib_velo_to_cam.txt:1", "expected 'key: values'"),
        "re-download",
    ),
    Case(
        "velodyne-length-not-multiple-of-16",
        velodyne_odd_length,
        DataFileError,
        ("velodyne_points/data/0000000001.bin", "167 bytes", "4 float32 per point"),
        "re-extract",
    ),
    # split files
    Case(
        "split-line-2-fields",
        _bad_line(f"{DRIVE.folder} 1"),
        SplitFormatError,
        ("split.txt:2", "2 fields"),
        SPLIT_FIX,
    ),
    Case(
        "split-line-4-fields",
        _bad_line(f"{GOOD_LINE} extra"),
        SplitFormatError,
        ("split.txt:2", "4 fields"),
        SPLIT_FIX,
    ),
    Case(
        "split-frame-not-integer",
        _bad_line(f"{DRIVE.folder} 1x l"),
        SplitFormatError,
        ("split.txt:2", "frame '1x'"),
        SPLIT_FIX,
    ),
    Case(
        "split-unknown-side",
        _bad_line(f"{DRIVE.folder} 1 x"),
        SplitFormatError,
        ("split.txt:2", "side 'x'"),
        "use one of ['l', 'r', '2', '3']",
    ),
    Case(
        "split-path-traversal",
        _bad_line("../../etc 1 l"),
        SplitFormatError,
        ("split.txt:2", "'../../etc'", "'..'"),
        "relative to it (e.g. 2011_09_26/2011_09_26_drive_0002_sync)",
    ),
    Case(
        "split-file-empty",
        lambda tmp: _split(tmp, "  \n\n"),
        SplitFormatError,
        ("split.txt", "empty"),
        "list at least one",
    ),
    # hint stores and hints
    Case(
        "hint-store-other-resolution",
        store_of(height=64, width=128),
        StoreMismatchError,
        ("hints", "resolution (HxW) (32, 64)", "(64, 128) was requested"),
        "use another output folder",
    ),
    Case(
        "hint-store-other-config-hash",
        store_of(fusion="masked"),
        StoreMismatchError,
        ("hints", "configuration hash"),
        "delete this store to recompute it",
    ),
    Case(
        "hint-nan-inf",
        _stored_hint({(0, 0): np.nan, (5, 5): np.inf}),
        DataFileError,
        ("image_02/0000000001.npy", "2 NaN/inf"),
        "recompute it with `depthhints hints`",
    ),
    Case(
        "hint-negative-depth",
        _stored_hint({(1, 1): -1.0, (2, 2): -0.5, (3, 3): -7.0}),
        DataFileError,
        ("image_02/0000000001.npy", "3 negative"),
        "recompute it with `depthhints hints`",
    ),
    # training configuration
    Case(
        "config-unknown-key",
        _yaml("lerning_rate: 1.0e-4\n"),
        ConfigError,
        ("run.yaml", "'lerning_rate'"),
        "did you mean 'learning_rate'",
    ),
    Case(
        "config-size-not-multiple-of-32",
        _yaml("height: 100\nwidth: 650\n"),
        ConfigError,
        ("run.yaml", "height=100", "width=650"),
        "positive multiples of 32",
    ),
    Case(
        "config-hints-without-stereo",
        _yaml("use_depth_hints: true\n"),
        ConfigError,
        ("run.yaml", "use_depth_hints needs use_stereo"),
        "set use_stereo: true",
    ),
    Case(
        "config-unsupported-resnet-depth",
        _yaml("num_layers: 19\n"),
        ConfigError,
        ("run.yaml", "num_layers=19"),
        "use one of (18, 34, 50, 101, 152)",
    ),
    Case(
        "config-value-unreadable",
        _yaml("width: abc\n"),
        ConfigError,
        ("run.yaml", "width='abc'"),
        "e.g. width: 640",
    ),
    Case(
        "config-negative-learning-rate",
        _yaml("learning_rate: -0.001\n"),
        ConfigError,
        ("run.yaml", "learning_rate=-0.001"),
        "must be positive",
    ),
    Case(
        "config-not-yaml",
        _yaml("height: 192\nscales: [0, 1\n"),
        ConfigError,
        ("run.yaml", "line 3"),
        "fix the syntax",
    ),
    Case(
        "cli-flag-unreadable",
        lambda tmp: _cli("train", "--width", "abc"),
        SystemExit,
        ("--width", "'abc'"),
        "e.g. --width 640",
    ),
    # weights and checkpoints
    Case(
        "imagenet-weights-absent-offline",
        imagenet_weights_absent,
        MissingDataError,
        ("torch/hub/checkpoints/resnet18-f37072fd.pth",),
        "weights_init='scratch'",
    ),
    Case(
        "imagenet-weights-corrupt",
        imagenet_weights_corrupt,
        DataFileError,
        ("resnet18.pth",),
        "Replace it with torchvision's resnet18-f37072fd.pth",
    ),
    Case(
        "imagenet-weights-of-resnet50-for-resnet18",
        imagenet_weights_of_resnet50,
        DataFileError,
        ("resnet50-0676ba61.pth", "ResNet50, not ResNet18"),
        "set num_layers: 50",
    ),
    Case(
        "training-state-corrupt",
        corrupt_training_state,
        DataFileError,
        ("runs/mdp/models/state.pt",),
        "delete it to start afresh",
    ),
    Case(
        "checkpoint-resnet50-as-resnet18",
        resnet50_checkpoint_as_resnet18,
        DataFileError,
        ("weights_19/encoder.pth", "ResNet50", "requested ResNet18"),
        "drop the num_layers setting",
    ),
    # evaluation
    Case(
        "eval-gt-wrong-frame-count",
        gt_with_wrong_frame_count,
        ConfigError,
        ("3 predictions", "2 ground-truth depth maps", "gt_depths.npz"),
        "both must come from the same split",
    ),
    Case(
        "data-root-without-images",
        lambda tmp: (tmp / "empty").mkdir() or (lambda: KittiRawLayout(tmp / "empty")),
        MissingDataError,
        ("empty", "no .jpg or .png images"),
        "extract the drives' image zips there",
    ),
    # output folders that cannot be written: refused before any work
    Case(
        "predict-out-unwritable",
        predict_out_blocked,
        ConfigError,
        ("--out", BLOCKED, "Not a directory"),
        WRITE_FIX,
    ),
    Case(
        "export-out-is-a-file",
        export_out_is_a_file,
        ConfigError,
        ("--out", "notes.txt", "a file, not a folder"),
        WRITE_FIX,
    ),
    Case(
        "synth-out-unwritable",
        lambda tmp: _cli("synth", "--out", _blocked(tmp)),
        ConfigError,
        ("--out", BLOCKED),
        WRITE_FIX,
    ),
    Case(
        "demo-out-unwritable",
        lambda tmp: _cli("demo", "--out", _blocked(tmp)),
        ConfigError,
        ("--out", BLOCKED),
        WRITE_FIX,
    ),
    Case("hints-out-unwritable", hints_out_blocked, ConfigError, ("--out", BLOCKED), WRITE_FIX),
    Case(
        "train-log-dir-unwritable",
        lambda tmp: _train(tmp, "--log_dir", _blocked(tmp)),
        ConfigError,
        ("--log_dir", BLOCKED),
        WRITE_FIX,
    ),
    Case(
        "train-storage-path-unwritable",
        lambda tmp: _train(tmp, "--workers", 2, "--storage-path", _blocked(tmp)),
        ConfigError,
        ("--storage-path", BLOCKED),
        WRITE_FIX,
    ),
    Case(
        "sweep-storage-path-unwritable",
        sweep_storage_path_blocked,
        ConfigError,
        ("--storage-path", BLOCKED),
        WRITE_FIX,
    ),
    Case(
        "train-sqlite-store-unwritable",
        lambda tmp: _train(tmp, "--tracking-uri", f"sqlite:///{_blocked(tmp)}/mlflow.db"),
        ConfigError,
        ("--tracking-uri", f"{BLOCKED}/mlflow.db"),
        WRITE_FIX,
    ),
    Case(
        "report-out-unwritable",
        lambda tmp: _cli("report", "--out", _blocked(tmp) / "report.html"),
        ConfigError,
        ("--out", f"{BLOCKED}/report.html"),
        WRITE_FIX,
    ),
    # --split: a bundled name, a split file or a folder of lists, in every command
    Case(
        "train-split-is-one-list",
        lambda tmp: _train(tmp, "--split", _one_list(tmp)),
        ConfigError,
        ("--split", "split.txt", "one split list", "train and val lists are needed"),
        TRAIN_SPLIT_FIX,
    ),
    Case(
        "train-split-folder-without-val",
        lambda tmp: _train(tmp, "--split", _split_folder(tmp, ("train",))),
        ConfigError,
        ("--split", "splits", "no val_files.txt", "['train']"),
        TRAIN_SPLIT_FIX,
    ),
    Case(
        "hints-split-unknown-name",
        lambda tmp: _cli("hints", "--data-path", tmp / "kitti", "--split", "eigen_zhoo"),
        ConfigError,
        ("--split 'eigen_zhoo'", "unknown split name", "eigen_zhou"),
        SPLIT_FORMS_FIX,
    ),
    Case(
        "evaluate-split-file-folder-without-test",
        lambda tmp: _cli(
            *("evaluate", "--eval-stereo", "--ext-disp-to-eval", tmp / "disps.npy"),
            *("--split-file", _split_folder(tmp)),
        ),
        ConfigError,
        ("--split-file", "splits", "no test_files.txt"),
        SPLIT_FORMS_FIX,
    ),
    # MLflow stores
    Case(
        "train-tracking-uri-plain-path",
        lambda tmp: _train(tmp, "--tracking-uri", tmp / "mlflow.db"),
        ConfigError,
        ("--tracking-uri", "mlflow.db'", "is a path, not a store URI"),
        STORE_FIX,
    ),
    Case(
        "report-sqlite-file-missing",
        lambda tmp: _cli(
            *("report", "--tracking-uri", f"sqlite:///{tmp}/no/such/mlflow.db"),
            *("--out", tmp / "r.html"),
        ),
        ConfigError,
        ("--tracking-uri sqlite:///", "no/such/mlflow.db", "no database file"),
        "check the path",
    ),
    Case(
        "report-unknown-sweep",
        report_of_a_sweep_that_does_not_exist,
        ConfigError,
        ("--sweep 'tabel_demo'", "experiment 'depth-hints'", "table_demo"),
        "or 'all'",
    ),
]


# ------------------------------------------------------------------------------------ tests


@pytest.fixture(scope="module")
def kitti(tmp_path_factory) -> Path:
    """A 3-frame 128x64 synthetic drive (images and calibration only)."""
    root = tmp_path_factory.mktemp("bad_inputs") / "kitti"
    syn.generate_drive(root, DRIVE)
    for extra in ("velodyne_points", "proj_depth", "semantic"):
        shutil.rmtree(root / DRIVE.folder / extra)
    return root


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_the_catalogue_is_complete_and_uses_project_errors():
    assert len(CASES) >= 30 and len({case.id for case in CASES}) == len(CASES)
    for case in CASES:
        assert issubclass(case.error, DepthHintsError) or case.error in STANDARD_ERRORS, case.id


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case, kitti, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # offline: no cached weights
    shutil.copytree(kitti, tmp_path / "kitti")
    call = case.setup(tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(case.error) as info:
        call()
    assert type(info.value) is case.error
    message = f"{info.value}\n{capsys.readouterr().err}"
    for part in (*case.names, case.fix):
        assert part in message, f"{part!r} not in {message!r}"
    assert _snapshot(tmp_path) == before, "files were written or changed"
    if hasattr(call, "argv"):  # the command as a user runs it: status 2, the message alone
        assert _exit_status(call.argv) == 2
        printed = capsys.readouterr().err
        if case.error is not SystemExit:
            assert "\n" not in str(info.value), "not one line"
            assert printed == f"depthhints: error: {info.value}\n"
        assert _snapshot(tmp_path) == before, "files were written or changed"


def _exit_status(argv: list[str]) -> object:
    """What ``depthhints <argv>`` exits with."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code
