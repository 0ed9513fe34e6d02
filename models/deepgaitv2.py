"""DeepGaitV2, pseudo-3-D variant (Fan et al., "Exploring Deep Models for Practical Gait Recognition", 2023).

Stages 0–1 are per-frame 2-D convolutions; stages 2–4 use pseudo-3-D residual blocks: a 2-D
spatial convolution per frame followed by a temporal 3×1×1 convolution added as a residual,
so that short-range motion is modelled before the frame-order-free temporal max. Heads are
the same as GaitBase's. Parameter names follow OpenGait's checkpoint layout.

Temporal convolutions mix neighbouring frames, so padded frames are zeroed before each of
them: a sequence in a padded batch then sees exactly the zero padding it would see alone.
"""

import torch
from torch import nn

from models.configs import DeepGaitV2Config
from models.layers import (
    PerFrame,
    ResidualBlock2D,
    SeparateBNNecks,
    SeparateFCs,
    conv3x3,
    horizontal_pyramid_pool,
    temporal_max,
    zero_padded_frames,
)
from models.outputs import GaitOutput, neck_output


def conv_bn(in_channels: int, out_channels: int, stride: int, relu: bool) -> PerFrame:
    """A per-frame 3×3 convolution + BatchNorm (+ ReLU)."""
    layers: list[nn.Module] = [conv3x3(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return PerFrame(nn.Sequential(*layers))


class Pseudo3DBlock(nn.Module):
    """Residual block: spatial conv → (+ temporal 3×1×1 conv) → spatial conv, with a 1×1×1 shortcut."""

    def __init__(self, in_channels: int, out_channels: int, spatial_stride: int) -> None:
        super().__init__()
        self.conv1 = conv_bn(in_channels, out_channels, spatial_stride, relu=True)
        self.shortcut3d = nn.Conv3d(out_channels, out_channels, (3, 1, 1), padding=(1, 0, 0), bias=False)
        self.sbn = nn.BatchNorm3d(out_channels)
        self.conv2 = conv_bn(out_channels, out_channels, 1, relu=False)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if spatial_stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, 1, stride=(1, spatial_stride, spatial_stride), bias=False),
                nn.BatchNorm3d(out_channels),
            )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.conv1(x)
        out = self.relu(out + self.sbn(self.shortcut3d(zero_padded_frames(out, mask))))
        out = self.conv2(out)
        return self.relu(out + shortcut)


class PseudoStage(nn.ModuleList):
    """A stage of pseudo-3-D blocks; a ModuleList so the mask can be passed to every block."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:  # type: ignore[override]
        for block in self:
            x = block(x, mask)
        return x


def pseudo_stage(in_channels: int, out_channels: int, blocks: int, spatial_stride: int) -> PseudoStage:
    """``blocks`` pseudo-3-D blocks; only the first changes channels and stride."""
    return PseudoStage(
        Pseudo3DBlock(in_channels if i == 0 else out_channels, out_channels, spatial_stride if i == 0 else 1)
        for i in range(blocks)
    )


class DeepGaitV2(nn.Module):
    """DeepGaitV2-P3D: 2-D stem and stage 1, pseudo-3-D stages 2–4, temporal max, HPP, FCs, BNNeck."""

    def __init__(self, config: DeepGaitV2Config = DeepGaitV2Config()) -> None:
        super().__init__()
        self.config = config
        c0, c1, c2, c3 = config.channels
        self.layer0 = PerFrame(nn.Sequential(conv3x3(1, c0), nn.BatchNorm2d(c0), nn.ReLU(inplace=True)))
        self.layer1 = PerFrame(nn.Sequential(*(ResidualBlock2D(c0, c0) for _ in range(config.layers[0]))))
        self.layer2 = pseudo_stage(c0, c1, config.layers[1], 2)
        self.layer3 = pseudo_stage(c1, c2, config.layers[2], 2)
        self.layer4 = pseudo_stage(c2, c3, config.layers[3], 1)
        self.FCs = SeparateFCs(config.parts, c3, config.embedding_dim)
        self.BNNecks = SeparateBNNecks(config.parts, config.embedding_dim, config.classes)

    def forward(self, sils: torch.Tensor, mask: torch.Tensor | None = None) -> GaitOutput:
        """``sils``: float ``[B, T, H, W]`` in 0..1; ``mask``: bool ``[B, T]`` of real frames or None."""
        x = self.layer1(self.layer0(sils.unsqueeze(1)))
        for stage in (self.layer2, self.layer3, self.layer4):
            x = stage(x, mask)
        pooled = temporal_max(x, mask)
        embeddings = self.FCs(horizontal_pyramid_pool(pooled, self.config.parts))
        return neck_output(embeddings, self.BNNecks, self.config.matching)
