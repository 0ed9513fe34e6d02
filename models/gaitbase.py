"""GaitBase (Fan et al., "OpenGait: Revisiting Gait Recognition Toward Better Practicality", CVPR 2023).

A per-frame ResNet-9 style backbone (stem 3×3 convolution, four stages of basic residual
blocks), max over frames (the "set" pooling that makes the model order-free), horizontal
pyramid pooling into 16 parts (mean + max), a separate linear map per part (the embedding),
and a BNNeck classifier used only for training. Parameter names follow OpenGait's
checkpoint layout (``Backbone.forward_block.*``, ``FCs.fc_bin``, ``BNNecks.*``).
"""

import torch
from torch import nn

from models.configs import GaitBaseConfig
from models.layers import (
    PerFrame,
    ResidualBlock2D,
    SeparateBNNecks,
    SeparateFCs,
    horizontal_pyramid_pool,
    temporal_max,
)
from models.outputs import GaitOutput, neck_output


class StemConv(nn.Module):
    """The stem convolution, wrapped so its weight is named ``conv1.conv.weight`` as in OpenGait."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ResNet9(nn.Module):
    """Single-frame backbone: ``[N, 1, 64, 44]`` → ``[N, C4, 16, 11]`` with the default strides."""

    def __init__(self, config: GaitBaseConfig) -> None:
        super().__init__()
        self.conv1 = StemConv(1, config.channels[0])
        self.bn1 = nn.BatchNorm2d(config.channels[0])
        self.relu = nn.ReLU(inplace=True)
        in_channels = config.channels[0]
        stages = []
        for out_channels, blocks, stride in zip(config.channels, config.layers, config.strides, strict=True):
            stage = []
            for index in range(blocks):
                stage.append(ResidualBlock2D(in_channels, out_channels, stride if index == 0 else 1))
                in_channels = out_channels
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class GaitBase(nn.Module):
    """GaitBase: per-frame ResNet-9, temporal max, 16-part HPP, part-wise FCs, BNNeck."""

    def __init__(self, config: GaitBaseConfig = GaitBaseConfig()) -> None:
        super().__init__()
        self.config = config
        self.Backbone = PerFrame(ResNet9(config))
        self.FCs = SeparateFCs(config.parts, config.channels[3], config.embedding_dim)
        self.BNNecks = SeparateBNNecks(config.parts, config.embedding_dim, config.classes)

    def forward(self, sils: torch.Tensor, mask: torch.Tensor | None = None) -> GaitOutput:
        """``sils``: float ``[B, T, H, W]`` in 0..1; ``mask``: bool ``[B, T]`` of real frames or None."""
        features = self.Backbone(sils.unsqueeze(1))  # [B, C, T, h, w]
        pooled = temporal_max(features, mask)
        embeddings = self.FCs(horizontal_pyramid_pool(pooled, self.config.parts))
        return neck_output(embeddings, self.BNNecks, self.config.matching)
