"""Name → network class and configuration, so that checkpoints, model cards and the CLI agree.

A configuration can be given explicitly (a model card's ``config`` mapping) or inferred from a
checkpoint's tensor shapes, so that narrower networks and any BNNeck class count load without
hand-written settings.
"""

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from models.configs import ArchConfig, config_class
from models.deepgaitv2 import DeepGaitV2
from models.gaitbase import GaitBase

_NETWORKS: dict[str, type[nn.Module]] = {"gaitbase": GaitBase, "deepgaitv2": DeepGaitV2}


def build_model(arch: str, config: ArchConfig | None = None) -> nn.Module:
    """Instantiate an architecture (randomly initialised) from its config."""
    config_cls = config_class(arch)
    return _NETWORKS[arch](config or config_cls())


# Per architecture, the weight of each stage's first convolution, by block index: stage widths
# and depths are read off these.
_STAGE_CONV_KEYS: dict[str, tuple[str, ...]] = {
    "gaitbase": tuple(f"Backbone.forward_block.layer{stage}.{{block}}.conv1.weight" for stage in range(1, 5)),
    "deepgaitv2": (
        "layer1.forward_block.{block}.conv1.weight",
        "layer2.{block}.conv1.forward_block.0.weight",
        "layer3.{block}.conv1.forward_block.0.weight",
        "layer4.{block}.conv1.forward_block.0.weight",
    ),
}


def _stages(arch: str, state: Mapping[str, torch.Tensor]) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Output channels and block count of stages 1–4, or None when the keys are not there."""
    widths, depths = [], []
    for key in _STAGE_CONV_KEYS[arch]:
        blocks = 0
        while key.format(block=blocks) in state:
            blocks += 1
        if blocks == 0:
            return None
        widths.append(int(state[key.format(block=0)].shape[0]))
        depths.append(blocks)
    return tuple(widths), tuple(depths)


def infer_config(arch: str, state: Mapping[str, torch.Tensor], base: ArchConfig | None = None) -> ArchConfig:
    """Read widths, depths, embedding size and class count off a state dict.

    Falls back to ``base`` (or the defaults) for anything the tensors do not show, such as
    strides; a checkpoint of another architecture is left to the strict load to report.
    """
    config = base or config_class(arch)()
    updates: dict[str, Any] = {}
    stages = _stages(arch, state)
    if stages is not None:
        updates["channels"], updates["layers"] = stages
    fcs, necks = state.get("FCs.fc_bin"), state.get("BNNecks.fc_bin")
    if fcs is not None and fcs.ndim == 3:
        updates["parts"], updates["embedding_dim"] = int(fcs.shape[0]), int(fcs.shape[2])
    if necks is not None and necks.ndim == 3:
        updates["classes"] = int(necks.shape[2])
    return replace(config, **updates)
