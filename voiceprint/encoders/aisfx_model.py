"""The aiSFX embedding network (PyTorch), vendored from the ``aisfx`` 0.1.2 wheel.

Source: ``aisfx/models/cnn2d.py`` of https://github.com/alisonbma/aisfx (code
MIT licence, (c) Alison Bernice Ma and Alexander Lerch), whose
``EmbeddingNet`` is in turn the DCASE 2018 cross-task baseline CNN
(Kong et al., arXiv:1808.00773). Only the embedding part is kept: the
package's ``CrossNet`` adds per-dataset classifier heads that inference does
not use. Layer names are unchanged, so the wheel's ``checkpoint.pth``
(``embedding_net.*`` tensors) loads into it as is.

The weights (``aisfx/models/checkpoint.pth``, model "X-Sequential-CE" of
Ma & Lerch, "Representation Learning for the Automatic Indexing of Sound
Effects Libraries", ISMIR 2022) are licensed CC BY 4.0 by their authors.

Network: four blocks of two 3x3 convolutions (64, 128, 256, 512 channels)
with batch norm and ReLU, 2x2 max pooling after the first three; then the
mean over frequency and the max over time give one 512-dim vector per input
of shape ``(batch, frames, 96 mel bands)``.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, ks: int = 3, strd: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=(ks, ks),
                               stride=(strd, strd), padding=(1, 1), bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=(ks, ks),
                               stride=(strd, strd), padding=(1, 1), bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, pool: tuple[int, int] = (2, 2)) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        if pool != (1, 1):
            x = F.max_pool2d(x, kernel_size=pool)
        return x


class EmbeddingNet(nn.Module):
    """``(batch, frames, bands)`` log-mel blocks -> ``(batch, 8 * width)`` embeddings."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        widths = (width, width * 2, width * 4, width * 8)
        self.conv_block1 = ConvBlock(1, widths[0])
        self.conv_block2 = ConvBlock(widths[0], widths[1])
        self.conv_block3 = ConvBlock(widths[1], widths[2])
        self.conv_block4 = ConvBlock(widths[2], widths[3])
        self.out_dim = widths[3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1)
        x = self.conv_block1(x)
        x = self.conv_block2(x)
        x = self.conv_block3(x)
        x = self.conv_block4(x, pool=(1, 1))
        x = x.mean(dim=3)             # over frequency: (batch, channels, frames)
        return x.max(dim=2).values    # over time: (batch, channels)
