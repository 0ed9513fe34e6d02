"""Building blocks shared by the gait networks: temporal pooling, part pooling, part-wise heads.

Tensor layout throughout is ``[B, C, T, H, W]`` (batch, channels, frames, height, width);
``mask`` is a bool ``[B, T]`` that marks real frames when sequences of different lengths are
padded into one batch. Every block here treats padded frames so that a sequence's result in a
padded batch equals its result alone.
"""

import torch
import torch.nn.functional as functional
from torch import nn


def frames_to_batch(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Fold the frame axis into the batch axis so that 2-D layers run per frame.

    ``[B, C, T, H, W]`` → ``[B*T, C, H, W]``; returns the frame count to undo it.
    """
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b * t, c, h, w), t


def batch_to_frames(x: torch.Tensor, frames: int) -> torch.Tensor:
    """Inverse of :func:`frames_to_batch`: ``[B*T, C, H, W]`` → ``[B, C, T, H, W]``."""
    bt, c, h, w = x.shape
    return x.reshape(bt // frames, frames, c, h, w).transpose(1, 2)


class PerFrame(nn.Module):
    """Runs a 2-D module on every frame of a ``[B, C, T, H, W]`` clip independently.

    The wrapped module is stored as ``forward_block`` so that state-dict keys match the
    OpenGait checkpoint layout.
    """

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.forward_block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        folded, frames = frames_to_batch(x)
        return batch_to_frames(self.forward_block(folded), frames)


def zero_padded_frames(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Zero the padded frames of ``x`` so temporal convolutions see what zero padding gives."""
    if mask is None:
        return x
    return x * mask[:, None, :, None, None].to(x.dtype)


def temporal_max(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Max over the frame axis, ignoring padded frames: ``[B, C, T, H, W]`` → ``[B, C, H, W]``."""
    if mask is not None:
        x = x.masked_fill(~mask[:, None, :, None, None], float("-inf"))
    return x.amax(dim=2)


def horizontal_pyramid_pool(x: torch.Tensor, bins: int) -> torch.Tensor:
    """Split the map into ``bins`` horizontal strips and pool each by mean + max.

    ``[B, C, H, W]`` → ``[B, C, bins]``; ``H`` must be divisible by ``bins``.
    """
    b, c = x.shape[:2]
    strips = x.reshape(b, c, bins, -1)
    return strips.mean(dim=-1) + strips.amax(dim=-1)


class SeparateFCs(nn.Module):
    """One linear map per horizontal part (no bias): ``[B, C_in, P]`` → ``[B, C_out, P]``."""

    def __init__(self, parts: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.fc_bin = nn.Parameter(torch.empty(parts, in_channels, out_channels))
        nn.init.xavier_uniform_(self.fc_bin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        per_part = x.permute(2, 0, 1)  # [P, B, C_in]
        return per_part.matmul(self.fc_bin).permute(1, 2, 0)


class SeparateBNNecks(nn.Module):
    """BNNeck for training: BatchNorm over all part features, then a cosine classifier per part.

    Returns the normalised features and the logits ``[B, classes, P]``. At inference the
    service uses the embedding before this neck, as OpenGait does.
    """

    def __init__(self, parts: int, in_channels: int, classes: int) -> None:
        super().__init__()
        self.parts = parts
        self.fc_bin = nn.Parameter(torch.empty(parts, in_channels, classes))
        nn.init.xavier_uniform_(self.fc_bin)
        self.bn1d = nn.BatchNorm1d(in_channels * parts)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, p = x.shape
        normed = self.bn1d(x.reshape(b, c * p)).reshape(b, c, p)
        features = functional.normalize(normed.permute(2, 0, 1), dim=-1)  # [P, B, C]
        logits = features.matmul(functional.normalize(self.fc_bin, dim=1))  # [P, B, classes]
        return features.permute(1, 2, 0), logits.permute(1, 2, 0)


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3×3 convolution with padding 1 and no bias (a BatchNorm always follows)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class ResidualBlock2D(nn.Module):
    """The ResNet basic block (two 3×3 convolutions and a shortcut), applied to single frames."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)
