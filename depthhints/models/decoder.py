"""Depth decoder with sigmoid disparities at several scales and disp→depth.

docs/method.md#decoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from depthhints.errors import ConfigError

NUM_CH_DEC = (16, 32, 64, 128, 256)


class Conv3x3(nn.Module):
    """Reflection pad 1 + 3×3 conv with bias (key names ``conv.weight``/``conv.bias``)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(in_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.pad(x))


class ConvBlock(nn.Module):
    """Conv3x3 + ELU (key names ``conv.conv.weight``/``conv.conv.bias``)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = Conv3x3(in_channels, out_channels)
        self.nonlin = nn.ELU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.nonlin(self.conv(x))


class DepthDecoder(nn.Module):
    """U-Net style decoder returning ``{("disp", s): (B, C_out, H/2^s, W/2^s)}`` in (0, 1).

    Layers live in one ``nn.ModuleList`` named ``decoder`` in the published order: for i = 4..0
    ``upconv(i,0)`` then ``upconv(i,1)``, followed by ``dispconv(s)`` for each scale in ascending
    order. With the default scales that is indices 0–9 (ConvBlocks, keys
    ``decoder.<k>.conv.conv.weight``) and 10–13 (dispconvs, keys ``decoder.<k>.conv.weight``).
    """

    def __init__(
        self,
        num_ch_enc: Sequence[int],
        scales: Sequence[int] = (0, 1, 2, 3),
        num_output_channels: int = 1,
        use_skips: bool = True,
    ) -> None:
        super().__init__()
        if len(num_ch_enc) != 5:
            raise ConfigError(f"num_ch_enc={list(num_ch_enc)} must list 5 encoder channel counts")
        bad = [s for s in scales if s not in range(5)]
        if bad or len(set(scales)) != len(scales):
            raise ConfigError(f"scales={list(scales)} must be distinct values in 0..4")
        self.num_ch_enc = list(num_ch_enc)
        self.num_ch_dec = list(NUM_CH_DEC)
        self.scales = sorted(scales)
        self.use_skips = use_skips
        self.num_output_channels = num_output_channels

        layers: list[nn.Module] = []
        self._upconv_idx: dict[tuple[int, int], int] = {}
        self._dispconv_idx: dict[int, int] = {}
        for i in range(4, -1, -1):
            in_ch = self.num_ch_enc[-1] if i == 4 else self.num_ch_dec[i + 1]
            self._upconv_idx[(i, 0)] = len(layers)
            layers.append(ConvBlock(in_ch, self.num_ch_dec[i]))
            in_ch = self.num_ch_dec[i] + (self.num_ch_enc[i - 1] if use_skips and i > 0 else 0)
            self._upconv_idx[(i, 1)] = len(layers)
            layers.append(ConvBlock(in_ch, self.num_ch_dec[i]))
        for s in self.scales:
            self._dispconv_idx[s] = len(layers)
            layers.append(Conv3x3(self.num_ch_dec[s], num_output_channels))
        self.decoder = nn.ModuleList(layers)

    def forward(self, features: Sequence[Tensor]) -> dict[tuple[str, int], Tensor]:
        """``features``: the encoder's 5 maps; returns sigmoid disparities per scale."""
        outputs: dict[tuple[str, int], Tensor] = {}
        x = features[-1]
        for i in range(4, -1, -1):
            x = self.decoder[self._upconv_idx[(i, 0)]](x)
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            if self.use_skips and i > 0:
                x = torch.cat([x, features[i - 1]], dim=1)
            x = self.decoder[self._upconv_idx[(i, 1)]](x)
            if i in self._dispconv_idx:
                # The sigmoid in fp32 even under bf16 autocast: disparities rounded to bf16's
                # 2^-8 steps stall training (measured); in fp32 ``.float()`` is a no-op.
                logits = self.decoder[self._dispconv_idx[i]](x).float()
                outputs[("disp", i)] = torch.sigmoid(logits)
        return outputs


def disp_to_depth(
    disp: Tensor, min_depth: float = 0.1, max_depth: float = 100.0
) -> tuple[Tensor, Tensor]:
    """Map sigmoid output to ``(scaled_disp, depth)`` with depth in [min_depth, max_depth]."""
    if not 0 < min_depth < max_depth:
        raise ConfigError(
            f"need 0 < min_depth < max_depth, got min_depth={min_depth}, max_depth={max_depth}"
        )
    min_disp = 1.0 / max_depth
    max_disp = 1.0 / min_depth
    scaled_disp = min_disp + (max_disp - min_disp) * disp
    return scaled_disp, 1.0 / scaled_disp
