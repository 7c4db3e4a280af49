"""``python -m eval.bench_encoders --quick`` as a CI smoke test, and its FLOP counter."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def test_flop_count_of_a_conv_and_matmul_graph(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from eval.onnx_flops import graph_flops

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv1d(8, 16, 3, padding=2, dilation=2)
            self.fc = torch.nn.Linear(16, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.conv(x).mean(-1))

    path = tmp_path / "net.onnx"
    torch.onnx.export(Net().eval(), (torch.zeros(1, 8, 10),), str(path), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "b", 2: "t"}})
    total, per_op = graph_flops(path, np.zeros((3, 8, 50), np.float32))
    conv = 2 * 3 * 16 * 50 * 8 * 3
    fc = 2 * 3 * 16 * 4
    assert per_op["Conv"] == conv and total == conv + fc


def test_quick_benchmark_prints_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("resemblyzer")
    pytest.importorskip("onnxruntime")
    from eval import bench_encoders

    code = bench_encoders.main(["--quick", "--encoders", "ge2e", "--repeat", "2",
                                "--cache-dir", str(tmp_path / "cache")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "fp32 peak:" in out
    row = next(line for line in out.splitlines() if line.startswith("| ge2e |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "onnxruntime" and cells[3] == "real"
    median_ms, gflop, seed_ratio = float(cells[4]), float(cells[7]), cells[-1]
    assert median_ms > 0 and 1.0 < gflop < 10.0 and seed_ratio.endswith("x")
