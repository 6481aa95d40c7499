"""The depth network as one module, and loading it from a published-layout weights folder.

``DepthNet`` wraps encoder + decoder for inference and export: it takes RGB in [0, 1] at the
training resolution and returns the scaled disparity of ``disp_to_depth`` at scale 0.
``load_depth_net`` reads ``encoder.pth``/``depth.pth`` (ours or the published ones) and infers the
ResNet depth from the weights, so a ResNet50 checkpoint never fails with size mismatches for want
of a ``--num_layers 50`` (MD2 #211).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from depthhints.errors import DataFileError, MissingDataError
from depthhints.models.checkpoint import filter_state_dict
from depthhints.models.decoder import DepthDecoder, disp_to_depth
from depthhints.models.encoder import ResnetEncoder, resnet_depth


class DepthNet(nn.Module):
    """Encoder + decoder: (B, 3, H, W) RGB in [0, 1] → scaled disparity (B, 1, H, W)."""

    def __init__(
        self,
        encoder: ResnetEncoder,
        decoder: DepthDecoder,
        min_depth: float = 0.1,
        max_depth: float = 100.0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.min_depth = min_depth
        self.max_depth = max_depth

    def forward(self, images: Tensor) -> Tensor:
        sigmoid = self.decoder(self.encoder(images))[("disp", 0)]
        return disp_to_depth(sigmoid, self.min_depth, self.max_depth)[0]


@dataclass
class LoadedDepthNet:
    """A depth network with what its ``encoder.pth`` says about its training."""

    net: DepthNet
    height: int
    width: int
    use_stereo: bool
    num_layers: int


def infer_num_layers(encoder_state: dict) -> int:
    """ResNet depth (18/34/50/101/152) of an ``encoder.pth`` state dict, from its layer3 blocks."""
    found = resnet_depth(encoder_state, prefix="encoder.")
    if found is None:
        blocks = {k.split(".")[2] for k in encoder_state if k.startswith("encoder.layer3.")}
        bottleneck = "encoder.layer1.0.conv3.weight" in encoder_state
        raise DataFileError(
            f"encoder weights have {len(blocks)} layer3 blocks (bottleneck={bottleneck}); "
            "that is no torchvision ResNet — is this a monodepth2/Depth Hints encoder.pth?"
        )
    return found


def read_weights(path: Path) -> dict:
    """The state dict in a ``.pth`` file (weights_only); a MissingDataError or DataFileError
    naming the file when it is absent, corrupt, malicious or holds no dict."""
    if not path.is_file():
        raise MissingDataError(
            f"{path} not found: a weights folder holds encoder.pth and depth.pth "
            "(e.g. <log_dir>/<model_name>/models/weights_19)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataFileError(
            f"cannot read {path}: {exc}; the file is truncated or not a "
            "PyTorch checkpoint — copy it again"
        ) from exc
    if not isinstance(state, dict):
        raise DataFileError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def load_depth_net(
    weights_folder: str | Path,
    num_layers: int | None = None,
    device: str | torch.device = "cpu",
) -> LoadedDepthNet:
    """Load ``encoder.pth`` + ``depth.pth`` from ``weights_folder`` into an eval-mode DepthNet."""
    folder = Path(weights_folder)
    enc_state = read_weights(folder / "encoder.pth")
    dec_state = read_weights(folder / "depth.pth")
    found = infer_num_layers(enc_state)
    if num_layers is not None and num_layers != found:
        raise DataFileError(
            f"{folder / 'encoder.pth'} holds a ResNet{found}, not the requested "
            f"ResNet{num_layers}; drop the num_layers setting to use what the checkpoint holds"
        )
    for key in ("height", "width"):
        if key not in enc_state:
            raise DataFileError(
                f"{folder / 'encoder.pth'} has no '{key}' entry; it must come from a training run "
                "that records its resolution (published and depthhints checkpoints do)"
            )
    encoder = ResnetEncoder(found)
    decoder = DepthDecoder(encoder.num_ch_enc)
    try:
        encoder.load_state_dict(filter_state_dict(encoder, enc_state))
        decoder.load_state_dict(dec_state)
    except RuntimeError as exc:
        raise DataFileError(
            f"weights in {folder} do not fit a ResNet{found} depth net: {exc}"
        ) from exc
    net = DepthNet(encoder, decoder).to(device).eval()
    return LoadedDepthNet(
        net=net,
        height=int(enc_state["height"]),
        width=int(enc_state["width"]),
        use_stereo=bool(enc_state.get("use_stereo", False)),
        num_layers=found,
    )
