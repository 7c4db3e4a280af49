"""ECAPA-TDNN's forward written for fast static graphs (``paddle.inference``, ONNX).

The same function as PaddleSpeech's ``EcapaTdnn.forward`` for one unpadded
length (``lengths=None``), written with ops that CPU kernels run fast:
reflect padding as slices + concat (paddle's pad3d is slow), squares as
products (pow is slow), no all-ones masks, and the attention TDNN on
``[x; mean; std]`` split into a convolution of ``x`` plus a per-clip bias
instead of a 3x wider concatenation. Parameters are the backbone's own. An
export of it is used only after it matches PaddleSpeech's forward
(:mod:`voiceprint.encoders.exports`).
"""
from __future__ import annotations

from typing import Any


def _reflect_pad(x: Any, p: int) -> Any:
    """Reflect-pad the time axis by ``p`` frames each side (``p`` < length)."""
    import paddle

    left = [x[:, :, i:i + 1] for i in range(p, 0, -1)]
    right = [x[:, :, -i - 1:-i] for i in range(1, p + 1)]
    return paddle.concat([*left, x, *right], axis=2)


def _conv(mod: Any, x: Any) -> Any:
    """PaddleSpeech ``Conv1d`` (padding "same", reflect, stride 1)."""
    pad = mod.dilation * (mod.kernel_size - 1) // 2
    return mod.conv(_reflect_pad(x, pad) if pad else x)


def _tdnn(block: Any, x: Any) -> Any:
    return block.norm(block.activation(_conv(block.conv, x)))


def _res2net(block: Any, x: Any) -> Any:
    import paddle

    ys = []
    y = None
    for i, x_i in enumerate(paddle.chunk(x, block.scale, axis=1)):
        if i == 0:
            y = x_i
        elif i == 1:
            y = _tdnn(block.blocks[i - 1], x_i)
        else:
            y = _tdnn(block.blocks[i - 1], x_i + y)
        ys.append(y)
    return paddle.concat(ys, axis=1)


def _se(block: Any, x: Any) -> Any:
    import paddle.nn.functional as F

    s = x.mean(axis=2, keepdim=True)
    s = F.relu(block.conv1.conv(s))
    return F.sigmoid(block.conv2.conv(s)) * x


def _se_res2net(block: Any, x: Any) -> Any:
    residual = _conv(block.shortcut, x) if block.shortcut else x
    y = _tdnn(block.tdnn2, _res2net(block.res2net_block, _tdnn(block.tdnn1, x)))
    return _se(block.se_block, y) + residual


def _stats(x: Any, w: Any, eps: float) -> tuple[Any, Any]:
    """Weighted mean and std over time; ``w`` sums to 1 along axis 2."""
    mean = (w * x).sum(axis=2, keepdim=True)
    d = x - mean
    return mean, (w * d * d).sum(axis=2, keepdim=True).clip(min=eps).sqrt()


def _asp(asp: Any, x: Any) -> Any:
    import paddle
    import paddle.nn.functional as F

    channels = x.shape[1]
    if asp.global_context:
        mean = x.mean(axis=2, keepdim=True)
        d = x - mean
        std = (d * d).mean(axis=2, keepdim=True).clip(min=asp.eps).sqrt()
        conv = asp.tdnn.conv.conv  # kernel 1 over [x; mean; std]
        w = conv.weight
        h = F.conv1d(x, w[:, :channels], bias=conv.bias)
        h = h + F.conv1d(mean, w[:, channels:2 * channels]) + F.conv1d(std, w[:, 2 * channels:])
        h = asp.tdnn.norm(asp.tdnn.activation(h))
    else:
        h = _tdnn(asp.tdnn, x)
    attn = F.softmax(asp.conv.conv(asp.tanh(h)), axis=2)
    mean, std = _stats(x, attn, asp.eps)
    return paddle.concat([mean, std], axis=1)


def _fast_forward(model: Any, x: Any) -> Any:
    import paddle

    xl = []
    for i, layer in enumerate(model.blocks):
        x = _tdnn(layer, x) if i == 0 else _se_res2net(layer, x)
        xl.append(x)
    x = _tdnn(model.mfa, paddle.concat(xl[1:], axis=1))
    x = model.asp_bn(_asp(model.asp, x))
    return model.fc.conv(x).squeeze(-1)


def layers(backbone: Any) -> tuple[Any, Any]:
    """(reference, fast): Layers mapping features ``[B, n_mels, T]`` to
    embeddings ``[B, dim]``, with PaddleSpeech's forward / the fast one."""
    import paddle

    class _Reference(paddle.nn.Layer):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, feats: Any) -> Any:
            return self.inner(feats).squeeze(-1)

    class _Fast(paddle.nn.Layer):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, feats: Any) -> Any:
            return _fast_forward(self.inner, feats)

    reference, fast = _Reference(backbone), _Fast(backbone)
    reference.eval()
    fast.eval()
    return reference, fast
