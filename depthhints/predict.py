"""Depth from single images with a trained weights folder (the ``depthhints predict`` command).

Unlike the published ``test_simple.py`` (docs/method.md#quirk-prediction-output), which saves
the *scaled disparity* at network resolution, this writes **depth at the input's original
size**:

1. each image is resized to the network's W×H (from ``encoder.pth``) with PIL Lanczos, as in
   training (docs/method.md#resizing; the aspect ratio is not kept);
2. the network returns the scaled disparity of ``disp_to_depth`` (docs/method.md#decoder);
3. the disparity is resized bilinearly (``cv2.resize``) to the original size and then inverted,
   as the evaluation does (docs/method.md#evaluation);
4. for a stereo-trained model (``use_stereo`` in ``encoder.pth``) depth is multiplied by the stereo
   scale 5.4 (docs/method.md#stereo-baseline), giving metres; a monocular model's depth is
   relative (scale unknown).

Outputs per image: ``<stem>_depth.npy`` (float32, H×W of the input) and ``<stem>_depth.png``
(disparity coloured with ``magma``, vmin = min, vmax = 95th percentile, as ``test_simple`` does),
plus one ``predictions.json`` per run.
"""

from __future__ import annotations

import glob
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from depthhints.errors import ConfigError, DepthHintsError, MissingDataError
from depthhints.models.depth_net import LoadedDepthNet, load_depth_net

#: Metres per network depth unit for stereo-trained models (0.54 m baseline / 0.1,
#: docs/method.md#stereo-baseline).
STEREO_SCALE_FACTOR = 5.4
#: Extensions searched in folders when none are given.
DEFAULT_EXTS = ("jpg", "jpeg", "png")
#: Suffixes of files this module (or ``test_simple``) writes; never taken as inputs from a folder.
OUTPUT_SUFFIXES = ("_depth.png", "_depth.npy", "_disp.jpeg", "_disp.npy")
SUMMARY_FILE = "predictions.json"
UNIT_METRES = "metres (stereo-trained, ×5.4)"
UNIT_RELATIVE = "relative (monocular model: scale unknown)"
_GLOB_CHARS = set("*?[")


def depth_unit(use_stereo: bool) -> str:
    """The unit of ``predict_depth`` output for a model trained with/without stereo."""
    return UNIT_METRES if use_stereo else UNIT_RELATIVE


def depth_scale(use_stereo: bool) -> float:
    """Factor applied to 1/disparity: 5.4 for a stereo-trained model, otherwise 1."""
    return STEREO_SCALE_FACTOR if use_stereo else 1.0


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` → CUDA when available, else CPU; a CUDA request without CUDA is an error."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but PyTorch sees no CUDA GPU; use --device cpu")
    return device


def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 3) or (H, W, 4), uint8 or float in [0, 1] → RGB uint8 (H, W, 3)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ConfigError(
            f"image has shape {image.shape}; expected (H, W), (H, W, 3) RGB or (H, W, 4) RGBA"
        )
    image = image[:, :, :3]
    if image.dtype != np.uint8:
        if not np.issubdtype(image.dtype, np.floating):
            raise ConfigError(f"image dtype {image.dtype}: give uint8 or float in [0, 1]")
        image = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return image


def preprocess(image: np.ndarray, height: int, width: int) -> torch.Tensor:
    """One image → (3, height, width) float32 RGB in [0, 1], resized with PIL Lanczos."""
    rgb = _as_rgb_uint8(image)
    resized = Image.fromarray(rgb).resize((width, height), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)


def resize_disparity(disp: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of an (h, w) disparity to (height, width), as the evaluation does."""
    if disp.shape == (height, width):
        return disp.astype(np.float32, copy=True)
    return cv2.resize(disp.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def predict_disparity(
    loaded: LoadedDepthNet,
    images: Sequence[np.ndarray],
    batch_size: int = 8,
    device: str | torch.device | None = None,
) -> list[np.ndarray]:
    """Scaled disparity (``disp_to_depth``'s first output) of each image, at its original size.

    ``images`` are RGB arrays (uint8, or float in [0, 1]) of any sizes. The network runs on
    ``device`` (default: where ``loaded.net`` is) in batches of ``batch_size``.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} must be at least 1")
    net = loaded.net
    if device is None:
        device = next(net.parameters()).device
    device = resolve_device(device)
    net = net.to(device).eval()
    results: list[np.ndarray] = []
    for start in range(0, len(images), batch_size):
        chunk = [_as_rgb_uint8(image) for image in images[start : start + batch_size]]
        batch = torch.stack([preprocess(image, loaded.height, loaded.width) for image in chunk])
        with torch.inference_mode():
            disp = net(batch.to(device))[:, 0].float().cpu().numpy()
        for image, small in zip(chunk, disp, strict=True):
            results.append(resize_disparity(small, image.shape[0], image.shape[1]))
    return results


def predict_depth(
    loaded: LoadedDepthNet,
    images: Sequence[np.ndarray],
    batch_size: int = 8,
    device: str | torch.device | None = None,
) -> list[np.ndarray]:
    """Depth of each image at its original size (float32 H×W).

    depth = 1 / disparity, times 5.4 for a stereo-trained model (metres); for a monocular model
    the depth is relative (see ``depth_unit``). The disparity is resized before inverting.
    """
    scale = depth_scale(loaded.use_stereo)
    disps = predict_disparity(loaded, images, batch_size, device)
    return [(scale / disp).astype(np.float32) for disp in disps]


def colorize_disparity(disp: np.ndarray, cmap: str = "magma") -> np.ndarray:
    """RGB uint8 picture of a disparity map: vmin = min, vmax = 95th percentile (test_simple)."""
    import matplotlib

    vmin = float(disp.min())
    vmax = float(np.percentile(disp, 95))
    normed = (disp - vmin) / max(vmax - vmin, 1e-12)
    rgba = matplotlib.colormaps[cmap](np.clip(normed, 0.0, 1.0))
    return (rgba[:, :, :3] * 255.0 + 0.5).astype(np.uint8)


def _is_own_output(path: Path) -> bool:
    return path.name.endswith(OUTPUT_SUFFIXES) or path.name == SUMMARY_FILE


def _normalise_exts(exts: Iterable[str]) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(e.strip().lower().lstrip(".") for e in exts if e.strip()))
    if not cleaned:
        raise ConfigError("no image extensions given; use e.g. --ext jpg,png")
    return cleaned


def collect_images(inputs: Sequence[str | Path], exts: Iterable[str] = DEFAULT_EXTS) -> list[Path]:
    """Expand image files, folders (non-recursive, by extension) and globs into a file list.

    Files named explicitly are always taken; from folders and globs this module's own outputs
    (``*_depth.png`` …) are skipped. Each file appears once, in input order. An input that matches
    nothing raises ``MissingDataError`` naming it.
    """
    exts = _normalise_exts(exts)
    found: dict[Path, Path] = {}
    unmatched: list[str] = []
    for raw in inputs:
        path = Path(raw)
        matches: list[Path]
        if path.is_file():
            matches = [path]
        elif path.is_dir():
            matches = sorted(
                p
                for p in path.iterdir()
                if p.is_file() and p.suffix.lower().lstrip(".") in exts and not _is_own_output(p)
            )
        elif _GLOB_CHARS & set(str(raw)):
            matches = [
                p
                for p in map(Path, sorted(glob.glob(str(raw), recursive=True)))
                if p.is_file() and not _is_own_output(p)
            ]
        else:
            matches = []
        if not matches:
            kind = "folder" if path.is_dir() else "glob" if _GLOB_CHARS & set(str(raw)) else "path"
            unmatched.append(f"{raw} ({kind})")
        for match in matches:
            found.setdefault(match.resolve(), match.absolute())
    if unmatched:
        pattern = ", ".join(f"*.{e}" for e in exts)
        raise MissingDataError(
            f"no images matched {'; '.join(unmatched)}. Give image files, folders holding "
            f"{pattern} images (searched non-recursively), or quoted globs such as 'dir/*.png'; "
            "use --ext to search folders for other extensions"
        )
    return list(found.values())


def output_stems(paths: Sequence[Path]) -> list[str]:
    """Output stem per input: the file stem, or ``<stem>_2``, ``<stem>_3`` … when stems clash.

    A suffixed name never takes a stem that another input has naturally.
    """
    natural = {p.stem for p in paths}
    used: set[str] = set()
    stems: list[str] = []
    for path in paths:
        stem = path.stem
        if stem in used:
            k = 2
            while f"{path.stem}_{k}" in used or f"{path.stem}_{k}" in natural:
                k += 1
            stem = f"{path.stem}_{k}"
        used.add(stem)
        stems.append(stem)
    return stems


@dataclass
class PredictionSummary:
    """What ``predict_folder`` did; ``as_dict`` is the content of ``predictions.json``."""

    weights_folder: str
    out_dir: str
    num_layers: int
    height: int
    width: int
    use_stereo: bool
    device: str
    images: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    renamed: list[dict] = field(default_factory=list)

    @property
    def unit(self) -> str:
        return depth_unit(self.use_stereo)

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict:
        return {
            "weights_folder": self.weights_folder,
            "num_layers": self.num_layers,
            "network_input": {"height": self.height, "width": self.width},
            "use_stereo": self.use_stereo,
            "unit": self.unit,
            "depth": f"{depth_scale(self.use_stereo):g} / disparity, at the input's original size",
            "device": self.device,
            "written": len(self.images),
            "failed": len(self.failures),
            "images": self.images,
            "renamed": self.renamed,
            "failures": self.failures,
        }


def predict_files(
    loaded: LoadedDepthNet,
    paths: Sequence[Path],
    out_dir: str | Path,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    colormap: bool = True,
    weights_folder: str | Path = "",
) -> PredictionSummary:
    """Predict depth for image files, write outputs under ``out_dir`` and ``predictions.json``.

    Images that cannot be read are recorded in ``failures`` and the others are still written.
    """
    from depthhints.data.kitti import load_image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(device if device is not None else next(loaded.net.parameters()).device)
    summary = PredictionSummary(
        weights_folder=str(weights_folder),
        out_dir=str(out),
        num_layers=loaded.num_layers,
        height=loaded.height,
        width=loaded.width,
        use_stereo=loaded.use_stereo,
        device=str(device),
    )
    stems = output_stems(paths)
    for path, stem in zip(paths, stems, strict=True):
        if stem != path.stem:
            summary.renamed.append({"input": str(path), "stem": stem})
    scale = depth_scale(loaded.use_stereo)
    for start in range(0, len(paths), batch_size):
        batch: list[tuple[Path, str, np.ndarray]] = []
        for path, stem in zip(
            paths[start : start + batch_size], stems[start : start + batch_size], strict=True
        ):
            try:
                batch.append((path, stem, load_image(path)))
            except DepthHintsError as error:
                summary.failures.append({"input": str(path), "error": str(error)})
        if not batch:
            continue
        disps = predict_disparity(loaded, [b[2] for b in batch], batch_size, device)
        for (path, stem, _), disp in zip(batch, disps, strict=True):
            depth = (scale / disp).astype(np.float32)
            npy = out / f"{stem}_depth.npy"
            np.save(npy, depth)
            record = {
                "input": str(path),
                "depth_npy": str(npy),
                "height": int(depth.shape[0]),
                "width": int(depth.shape[1]),
                "median_depth": float(np.median(depth)),
            }
            if colormap:
                png = out / f"{stem}_depth.png"
                Image.fromarray(colorize_disparity(disp)).save(png)
                record["depth_png"] = str(png)
            summary.images.append(record)
    (out / SUMMARY_FILE).write_text(json.dumps(summary.as_dict(), indent=2) + "\n")
    return summary


def run_predict(
    weights_folder: str | Path,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    exts: Iterable[str] = DEFAULT_EXTS,
    batch_size: int = 8,
    device: str | None = None,
    colormap: bool = True,
) -> PredictionSummary:
    """Collect ``inputs``, load the weights folder and run ``predict_files`` (the CLI's work)."""
    if batch_size < 1:
        raise ConfigError(f"batch size {batch_size} must be at least 1")
    paths = collect_images(inputs, exts)
    torch_device = resolve_device(device)
    loaded = load_depth_net(weights_folder, device=torch_device)
    return predict_files(
        loaded, paths, out_dir, batch_size, torch_device, colormap, weights_folder=weights_folder
    )


def report(summary: PredictionSummary, stream=None) -> None:
    """Print the run's summary lines (failures and renames go to stderr)."""
    stream = stream or sys.stdout
    print(
        f"wrote {len(summary.images)} depth maps to {summary.out_dir} "
        f"(ResNet{summary.num_layers} at {summary.width}x{summary.height}, {summary.device}); "
        f"unit: {summary.unit}",
        file=stream,
    )
    for item in summary.renamed:
        print(f"  name clash: {item['input']} written as {item['stem']}_depth.*", file=sys.stderr)
    for failure in summary.failures:
        print(f"  failed {failure['input']}: {failure['error']}", file=sys.stderr)
    if summary.failures:
        print(
            f"{len(summary.failures)} image(s) failed; see {Path(summary.out_dir) / SUMMARY_FILE}",
            file=sys.stderr,
        )
    print(f"summary: {Path(summary.out_dir) / SUMMARY_FILE}", file=stream)
