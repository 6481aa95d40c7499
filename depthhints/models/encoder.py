"""ResNet depth/pose encoder on torchvision backbones (docs/method.md#encoder).

Weights are never downloaded: ImageNet weights (torchvision ``IMAGENET1K_V1``) are read from an
explicit file or from the torch hub cache, and a missing file is an error, not a silent random init.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision.models as tvm
from torch import Tensor, nn

from depthhints.errors import ConfigError, DataFileError, MissingDataError

#: Scalar input normalisation used for every channel (not the per-channel ImageNet statistics).
INPUT_MEAN = 0.45
INPUT_STD = 0.225

_RESNETS = {
    18: (tvm.resnet18, tvm.ResNet18_Weights),
    34: (tvm.resnet34, tvm.ResNet34_Weights),
    50: (tvm.resnet50, tvm.ResNet50_Weights),
    101: (tvm.resnet101, tvm.ResNet101_Weights),
    152: (tvm.resnet152, tvm.ResNet152_Weights),
}


#: Blocks in layer3 of each torchvision ResNet (with whether it uses bottleneck blocks).
LAYER3_BLOCKS = {(False, 2): 18, (False, 6): 34, (True, 6): 50, (True, 23): 101, (True, 36): 152}


def resnet_depth(state: dict, prefix: str = "") -> int | None:
    """ResNet depth of a torchvision-layout state dict whose keys start with ``prefix``, or None."""
    blocks = {k[len(prefix) :].split(".")[1] for k in state if k.startswith(f"{prefix}layer3.")}
    bottleneck = f"{prefix}layer1.0.conv3.weight" in state
    return LAYER3_BLOCKS.get((bottleneck, len(blocks)))


def _check_num_layers(num_layers: int) -> None:
    if num_layers not in _RESNETS:
        raise ConfigError(
            f"num_layers={num_layers!r} is not a supported ResNet depth; "
            f"use one of {sorted(_RESNETS)}"
        )


def weights_file_name(num_layers: int) -> str:
    """File name of torchvision's ``IMAGENET1K_V1`` checkpoint, e.g. ``resnet18-f37072fd.pth``."""
    _check_num_layers(num_layers)
    url = _RESNETS[num_layers][1].IMAGENET1K_V1.url
    return url.rsplit("/", 1)[-1]


def default_weights_path(num_layers: int) -> Path:
    """Where torchvision would cache the ImageNet weights: ``<hub dir>/checkpoints/<file name>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / weights_file_name(num_layers)


def load_imagenet_state_dict(num_layers: int, weights_path: str | Path | None = None) -> dict:
    """Read the ImageNet state dict from ``weights_path`` or the hub cache; never downloads."""
    path = Path(weights_path) if weights_path is not None else default_weights_path(num_layers)
    if not path.is_file():
        name = weights_file_name(num_layers)
        raise MissingDataError(
            f"ImageNet weights for ResNet{num_layers} not found at {path}. This machine does not "
            f"download weights: copy torchvision's IMAGENET1K_V1 file {name} "
            f"(https://download.pytorch.org/models/{name}) to {default_weights_path(num_layers)} "
            "or pass its location as weights_path, or use weights_init='scratch'."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt/truncated file, wrong format
        raise DataFileError(
            f"cannot read ImageNet weights {path}: {exc}. Replace it with torchvision's "
            f"{weights_file_name(num_layers)}."
        ) from exc
    if not isinstance(state, dict) or "conv1.weight" not in state:
        raise DataFileError(
            f"{path} is not a torchvision ResNet state dict (no 'conv1.weight'); "
            f"use torchvision's {weights_file_name(num_layers)}."
        )
    return state


def tile_conv1_weight(weight: Tensor, num_input_images: int) -> Tensor:
    """Tile a (64, 3, k, k) conv1 weight n times on the input axis and divide by n."""
    return torch.cat([weight] * num_input_images, dim=1) / num_input_images


def build_resnet(
    num_layers: int,
    pretrained: bool = False,
    num_input_images: int = 1,
    weights_path: str | Path | None = None,
) -> tvm.ResNet:
    """A torchvision ResNet whose conv1 takes ``3 * num_input_images`` channels."""
    _check_num_layers(num_layers)
    if num_input_images < 1:
        raise ConfigError(f"num_input_images={num_input_images!r} must be at least 1")
    net = _RESNETS[num_layers][0](weights=None)
    if num_input_images > 1:
        # torchvision's own init for fresh convs: Kaiming normal, fan_out, relu.
        net.conv1 = nn.Conv2d(
            3 * num_input_images, 64, kernel_size=7, stride=2, padding=3, bias=False
        )
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    if pretrained:
        path = weights_path if weights_path is not None else default_weights_path(num_layers)
        state = dict(load_imagenet_state_dict(num_layers, path))
        found = resnet_depth(state)
        if found is not None and found != num_layers:
            raise DataFileError(
                f"{path}: ImageNet weights of a ResNet{found}, not ResNet{num_layers}; use "
                f"torchvision's {weights_file_name(num_layers)} or set num_layers: {found}"
            )
        state["conv1.weight"] = tile_conv1_weight(state["conv1.weight"], num_input_images)
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise DataFileError(
                f"{path}: ImageNet weights do not fit ResNet{num_layers} ({exc}); check that the "
                f"file is torchvision's {weights_file_name(num_layers)}."
            ) from exc
    return net


class ResnetEncoder(nn.Module):
    """ResNet encoder returning 5 feature maps at H/2, H/4, H/8, H/16 and H/32.

    The backbone is stored as ``self.encoder`` so state-dict keys read ``encoder.conv1.weight``,
    ``encoder.layer1.0.conv1.weight``, ... as in the published ``encoder.pth``. The unused ``fc``
    head is kept for key parity but frozen, so DDP sees no parameter without a gradient.
    """

    def __init__(
        self,
        num_layers: int = 18,
        pretrained: bool = False,
        num_input_images: int = 1,
        weights_path: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.num_input_images = num_input_images
        self.encoder = build_resnet(num_layers, pretrained, num_input_images, weights_path)
        self.encoder.fc.requires_grad_(False)
        self.num_ch_enc = (
            [64, 64, 128, 256, 512] if num_layers <= 34 else [64, 256, 512, 1024, 2048]
        )

    def forward(self, images: Tensor) -> list[Tensor]:
        """``images``: (B, 3·n, H, W) RGB in [0, 1]; returns the list of 5 features."""
        expected = 3 * self.num_input_images
        if images.dim() != 4 or images.shape[1] != expected:
            raise ConfigError(
                f"encoder input has shape {tuple(images.shape)}; expected (B, {expected}, H, W) "
                f"for num_input_images={self.num_input_images}"
            )
        net = self.encoder
        x = (images - INPUT_MEAN) / INPUT_STD
        f0 = net.relu(net.bn1(net.conv1(x)))
        f1 = net.layer1(net.maxpool(f0))
        f2 = net.layer2(f1)
        f3 = net.layer3(f2)
        f4 = net.layer4(f3)
        return [f0, f1, f2, f3, f4]
