"""Export a trained depth network to ONNX and TorchScript (the ``depthhints export`` command).

The exported model is ``DepthNet``: input ``image`` (B, 3, H, W) float32 RGB in [0, 1] at the
training resolution read from ``encoder.pth`` (baked in; the batch axis is dynamic), output
``disparity`` (B, 1, H, W), the scaled disparity of ``disp_to_depth(sigmoid, 0.1, 100)``, in
[0.01, 10] (docs/method.md#decoder). The input normalisation (x − 0.45) / 0.225 is inside the
model (it is the encoder's first step), so callers feed plain RGB / 255. Depth = 1 / disparity;
for a stereo-trained model metres = 5.4 / disparity (docs/method.md#stereo-baseline); a
monocular model's depth is relative.
Resize inputs to W×H with Lanczos first (aspect ratio not kept), as ``depthhints.predict`` does.

Exporter choice: ONNX goes through ``torch.onnx.export(..., dynamo=False)``, the TorchScript-based
("legacy") exporter. In torch 2.14 the default ``dynamo=True`` path needs the extra
``onnxscript`` package; the legacy path needs nothing beyond torch, works offline, reproduces the
PyTorch output to ~1e-6 and supports the dynamic batch axis through ``dynamic_axes``. It is
deprecated upstream (a ``DeprecationWarning``, silenced here); if a future torch removes it, switch
to ``dynamo=True`` with ``dynamic_shapes`` and pin ``onnxscript``. TorchScript is
``torch.jit.trace`` (the network has no data-dependent control flow), saved with ``torch.jit.save``
and reloadable with ``torch.jit.load``; ``export.json`` is also embedded in the archive as an
extra file.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from depthhints.errors import ConfigError, DataFileError, MissingDataError
from depthhints.models.depth_net import LoadedDepthNet, load_depth_net
from depthhints.models.encoder import INPUT_MEAN, INPUT_STD
from depthhints.predict import STEREO_SCALE_FACTOR, depth_scale, depth_unit, preprocess

FORMATS = ("onnx", "torchscript")
FILE_NAMES = {"onnx": "depth_net.onnx", "torchscript": "depth_net.torchscript.pt"}
METADATA_FILE = "export.json"
INPUT_NAME = "image"
OUTPUT_NAME = "disparity"
DEFAULT_OPSET = 17
#: Opsets the TorchScript-based ONNX exporter of torch 2.14 can write for this network.
OPSET_RANGE = (11, 20)


@dataclass
class ExportResult:
    """Files written by ``export_depth_net`` and the content of ``export.json``."""

    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


@contextmanager
def _quiet_export() -> Iterator[None]:
    """Silence the deprecation/tracer chatter of torch's ONNX and JIT exporters."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Constant folding")
        yield


def export_metadata(loaded: LoadedDepthNet, formats: Sequence[str], opset: int) -> dict:
    """The ``export.json`` document: sizes, I/O names, normalisation and how to get metres."""
    h, w = loaded.height, loaded.width
    scale = depth_scale(loaded.use_stereo)
    metadata = {
        "model": "depthhints DepthNet (ResNet encoder + depth decoder, scale 0)",
        "height": h,
        "width": w,
        "use_stereo": loaded.use_stereo,
        "num_layers": loaded.num_layers,
        "files": {fmt: FILE_NAMES[fmt] for fmt in formats},
        "input": {
            "name": INPUT_NAME,
            "shape": ["batch", 3, h, w],
            "dtype": "float32",
            "layout": "NCHW",
            "values": "RGB in [0, 1] (uint8 / 255), resized to width x height with Lanczos",
        },
        "output": {
            "name": OUTPUT_NAME,
            "shape": ["batch", 1, h, w],
            "dtype": "float32",
            "values": "scaled disparity = 0.01 + (10 - 0.01) * sigmoid, in [0.01, 10]",
        },
        "dynamic_batch": True,
        "normalisation": (
            f"inside the model: (x - {INPUT_MEAN}) / {INPUT_STD} on every channel; "
            "do not normalise the input yourself"
        ),
        "depth": f"depth = {scale:g} / disparity",
        "depth_unit": depth_unit(loaded.use_stereo),
        "depth_scale": scale,
        "metres": (
            f"stereo-trained: metres = {STEREO_SCALE_FACTOR} / disparity"
            if loaded.use_stereo
            else "not available: monocular model, scale unknown (median-scale against a reference)"
        ),
        "resize_to_original": "resize the disparity bilinearly to the image size, then invert",
        "torch_version": torch.__version__,
    }
    if "onnx" in formats:
        metadata["onnx_opset"] = opset
        metadata["onnx_exporter"] = "torch.onnx.export(dynamo=False), TorchScript-based"
    return metadata


def _export_onnx(net: torch.nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
    try:
        import onnx
    except ImportError as exc:
        raise ConfigError(
            "ONNX export needs the 'onnx' package: pip install -r requirements.txt"
        ) from exc
    with _quiet_export():
        torch.onnx.export(
            net,
            (example,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            do_constant_folding=True,
        )
    model = onnx.load(str(path))
    onnx.checker.check_model(model)


def _export_torchscript(
    net: torch.nn.Module, example: torch.Tensor, path: Path, metadata: dict
) -> None:
    with _quiet_export():
        traced = torch.jit.trace(net, example, check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={METADATA_FILE: json.dumps(metadata)})


def export_depth_net(
    weights_folder: str | Path,
    out_dir: str | Path,
    formats: Sequence[str] = FORMATS,
    opset: int = DEFAULT_OPSET,
    num_layers: int | None = None,
) -> ExportResult:
    """Export the depth net of ``weights_folder`` to ``out_dir`` and write ``export.json``.

    The export runs on CPU in float32. Files: ``depth_net.onnx``, ``depth_net.torchscript.pt``.
    """
    formats = list(dict.fromkeys(formats))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ConfigError(f"export formats {formats} must be among {list(FORMATS)}")
    if "onnx" in formats and not OPSET_RANGE[0] <= opset <= OPSET_RANGE[1]:
        raise ConfigError(
            f"ONNX opset {opset} is not supported; use {OPSET_RANGE[0]}..{OPSET_RANGE[1]} "
            f"(default {DEFAULT_OPSET})"
        )
    loaded = load_depth_net(weights_folder, num_layers=num_layers, device="cpu")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metadata = export_metadata(loaded, formats, opset)
    metadata["weights_folder"] = str(weights_folder)
    generator = torch.Generator().manual_seed(0)
    example = torch.rand(1, 3, loaded.height, loaded.width, generator=generator)
    result = ExportResult(out_dir=out, metadata=metadata)
    if "onnx" in formats:
        result.files["onnx"] = out / FILE_NAMES["onnx"]
        _export_onnx(loaded.net, example, result.files["onnx"], opset)
    if "torchscript" in formats:
        result.files["torchscript"] = out / FILE_NAMES["torchscript"]
        _export_torchscript(loaded.net, example, result.files["torchscript"], metadata)
    write_metadata(out, metadata)
    return result


def write_metadata(out_dir: str | Path, metadata: dict) -> Path:
    """Write ``export.json`` in ``out_dir``."""
    path = Path(out_dir) / METADATA_FILE
    path.write_text(json.dumps(metadata, indent=2) + "\n")
    return path


def read_metadata(export_dir: str | Path) -> dict:
    """Read ``export.json`` of an export folder."""
    path = Path(export_dir) / METADATA_FILE
    if not path.is_file():
        raise MissingDataError(f"{path} not found; run 'depthhints export' into {export_dir} first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataFileError(f"{path} is not valid JSON ({exc}); export again") from exc


def run_onnx(path: str | Path, batch: np.ndarray) -> np.ndarray:
    """Run an exported ONNX model on CPU with onnxruntime: (B, 3, H, W) → (B, 1, H, W)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ConfigError(
            "running ONNX models needs 'onnxruntime': pip install -r requirements.txt"
        ) from exc
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: batch.astype(np.float32)})[0]


def run_torchscript(path: str | Path, batch: np.ndarray) -> np.ndarray:
    """Run an exported TorchScript model on CPU: (B, 3, H, W) → (B, 1, H, W)."""
    with _quiet_export():
        module = torch.jit.load(str(path), map_location="cpu")
    with torch.inference_mode():
        return module(torch.from_numpy(batch.astype(np.float32))).numpy()


def verification_batch(image: np.ndarray | None, height: int, width: int) -> np.ndarray:
    """A 2-image batch (the image and its mirror) at the network size; synthetic if ``None``."""
    if image is None:
        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    first = preprocess(image, height, width)
    return torch.stack([first, first.flip(-1)]).numpy()


def verify_export(
    export_dir: str | Path,
    reference: LoadedDepthNet | str | Path,
    image: np.ndarray | str | Path | None = None,
) -> dict[str, float]:
    """Max abs difference of each exported model's disparity vs PyTorch, per format.

    ``reference`` is the loaded network or its weights folder; ``image`` an RGB array or an image
    file (synthetic noise if ``None``). It runs a batch of two (the image and its mirror), which
    also checks the dynamic batch axis.
    """
    metadata = read_metadata(export_dir)
    if not isinstance(reference, LoadedDepthNet):
        reference = load_depth_net(reference, device="cpu")
    if (reference.height, reference.width) != (metadata["height"], metadata["width"]):
        raise ConfigError(
            f"reference net is {reference.width}x{reference.height} but the export in "
            f"{export_dir} is {metadata['width']}x{metadata['height']}; compare matching models"
        )
    if isinstance(image, str | Path):
        from depthhints.data.kitti import load_image

        image = load_image(image)
    batch = verification_batch(image, reference.height, reference.width)
    net = reference.net.to("cpu").eval()
    with torch.inference_mode():
        expected = net(torch.from_numpy(batch)).numpy()
    runners = {"onnx": run_onnx, "torchscript": run_torchscript}
    diffs: dict[str, float] = {}
    for fmt, name in metadata["files"].items():
        path = Path(export_dir) / name
        if not path.is_file():
            raise MissingDataError(f"{path} listed in export.json is missing; export again")
        got = runners[fmt](path, batch)
        if got.shape != expected.shape:
            raise DataFileError(
                f"{path} returned shape {got.shape}, expected {expected.shape}; export again"
            )
        diffs[fmt] = float(np.abs(got - expected).max())
    return diffs
