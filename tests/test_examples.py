"""Each example runs as its own process with this interpreter and prints what the seeds show."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run_example(name: str, *args: str, **env_vars: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", **env_vars}
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.parametrize("name", ["relu_basics.py", "train_mlp.py", "plot_activations.py",
                                  "simple_cnn.py", "inspect_ir.py", "demo.py", "digits.py",
                                  "train_ddp.py"])
def test_example_has_a_docstring(name):
    source = (EXAMPLES / name).read_text()
    assert source.lstrip().startswith('"""'), f"{name} has no module docstring"


def test_relu_basics_prints_the_seed_values():
    out = run_example("relu_basics.py")
    for expected in [
        # seed 000: nn.ReLU, alone and inside a Module
        "Tensor([[0.0, 2.0, 0.0, 3.0]], grad=None)\nTensor([[0.0, 1.0, 0.0, 1.0]])",
        "Tensor([[0.0, 0.5, 1.5, 0.0]], grad=None)\nTensor([[0.0, 1.0, 1.0, 0.0]])",
        # seed 002: nn.LeakyReLU, default slope and 0.1 (gradient at 0 is the slope)
        "Tensor([[-0.01, 2.0, -0.005, 3.0]], grad=None)\nTensor([[0.01, 1.0, 0.01, 1.0]])",
        "Tensor([[-0.2, 0.0, 1.5, -0.3]], grad=None)\nTensor([[0.1, 0.1, 1.0, 0.1]])",
    ]:
        assert expected in out
    # The two small networks print a (1, 2) output and a (1, 3) input gradient.
    blocks = out.split("# ")
    for title in ("Linear -> ReLU -> Linear", "Linear -> LeakyReLU(0.05)"):
        block = next(b for b in blocks if b.startswith(title))
        output, grad = block.splitlines()[1:3]
        assert re.fullmatch(r"Tensor\(\[\[[-0-9.e]+, [-0-9.e]+\]\], grad=None\)", output)
        assert re.fullmatch(r"Tensor\(\[\[[-0-9.e]+, [-0-9.e]+, [-0-9.e]+\]\]\)", grad)


def test_train_mlp_prints_a_falling_loss_per_epoch():
    out = run_example("train_mlp.py")
    matches = re.findall(r"^Epoch \[(\d+)/10\], Loss: (\S+)$", out, flags=re.M)
    assert [int(e) for e, _ in matches] == list(range(1, 11))
    losses = [float(v) for _, v in matches]
    assert 0.6 < losses[0] < 0.8  # about log(2): a fresh network guesses 0.5
    assert losses[-1] < losses[0] - 0.05


def test_plot_activations_writes_one_png(tmp_path):
    path = tmp_path / "plots" / "activations.png"
    out = run_example("plot_activations.py", str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
    rows = {line.split()[0]: line for line in out.splitlines() if "f'(2)=" in line}
    assert set(rows) == {"ReLU", "LeakyReLU(0.1)", "GELU", "Sigmoid", "Tanh", "ELU"}
    assert "f(-2)=+0.0000  f(2)=+2.0000  f'(-2)=+0.0000  f'(2)=+1.0000" in rows["ReLU"]
    assert "f(-2)=-0.2000  f(2)=+2.0000  f'(-2)=+0.1000  f'(2)=+1.0000" in rows["LeakyReLU(0.1)"]
    assert "f(-2)=-0.9640  f(2)=+0.9640  f'(-2)=+0.0707  f'(2)=+0.0707" in rows["Tanh"]
    assert "f(-2)=+0.1192  f(2)=+0.8808  f'(-2)=+0.1050  f'(2)=+0.1050" in rows["Sigmoid"]
    assert "f(-2)=-0.8647  f(2)=+2.0000  f'(-2)=+0.1353  f'(2)=+1.0000" in rows["ELU"]
    assert "f(-2)=-0.0455  f(2)=+1.9545  f'(-2)=-0.0852  f'(2)=+1.0852" in rows["GELU"]
    assert str(path) in out


def test_simple_cnn_prints_the_model_and_output_shape():
    out = run_example("simple_cnn.py")
    expected_model = (
        "SimpleCNN(\n"
        "  (conv1): Conv2d(3, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
        "  (relu1): ReLU()\n"
        "  (conv2): Conv2d(32, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
        "  (relu2): ReLU()\n"
        "  (pool): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        ")"
    )
    assert expected_model in out
    assert "Input shape: (1, 3, 32, 32)" in out
    assert "Output shape: (1, 64, 8, 8)" in out


def test_inspect_ir_shows_the_graphs_a_report_a_graph_break_and_dot(tmp_path):
    path = tmp_path / "forward.dot"
    out = run_example("inspect_ir.py", str(path))
    losses = [float(v) for v in re.findall(r"^Epoch \[\d/5\], Loss: (\S+)$", out, flags=re.M)]
    assert len(losses) == 5 and losses[-1] < losses[0]
    # The compiled forward's IR at each stage, and the backward graph it traced.
    for stage in ("traced", "optimized", "backward", "backward_optimized"):
        assert f"-- compiled_model.ir('{stage}')" in out
    assert "%9: f32[32,128] = relu %8" in out
    assert "%0: f32[32,2] grad_output0," in out
    # LUCID_JIT_LOG, the explain report, and the graph break with its line.
    assert "[lucid_jit:recompiles] NeuralNetwork.forward: retracing (entry 1) because" in out
    assert "=== lucid_jit.explain: main.<locals>.train_step ===" in out
    assert "5 calls, 2 cache entries (2 compiled, 0 eager), 1 recompile, 0 graph breaks" in out
    assert "set optimizer.state[model.fc1.weight]['exp_avg'] <- output 10" in out
    line = next(i for i, text in enumerate((EXAMPLES / "inspect_ir.py").read_text().splitlines(),
                                           1) if "loss.item() > 10.0" in text)
    assert (f"graph break at inspect_ir.py:{line}: item() needs a tensor's value" in out)
    assert "with fullgraph=True: GraphBreakError:" in out
    assert path.read_text().startswith("digraph forward {")


def test_demo_trains_eagerly_and_compiled_alike_and_shows_the_fused_kernels():
    out = run_example("demo.py", "3", "5")
    lines = re.findall(r"^Epoch \[(\d)/3\]  eager loss (\S+)  compiled loss (\S+)$", out,
                       flags=re.M)
    assert [int(e) for e, _, _ in lines] == [1, 2, 3]
    for _, eager, compiled in lines:
        assert abs(float(eager) - float(compiled)) <= 1e-4 * max(1.0, float(eager))
    assert re.search(r"compiled: +[\d.]+ us per step \([\d.]+x faster\)", out)
    assert re.search(r"fused_\d+ \(matmul_epilogue\): matmul", out)


def test_digits_trains_with_a_loader_a_schedule_and_a_checkpoint(tmp_path):
    pytest.importorskip("sklearn")
    # (the default compile mode, as a user runs it: no call waits for numba)
    out = run_example("digits.py", "6", str(tmp_path), LUCID_JIT_MODE="async")
    assert "checkpoint saved and reloaded at epoch 3" in out
    acc = float(re.search(r"test accuracy: ([\d.]+)", out).group(1))
    assert acc > 0.9, out
    assert (tmp_path / "digits_loss.png").stat().st_size > 1000
    assert (tmp_path / "digits_checkpoint.pt").exists()
