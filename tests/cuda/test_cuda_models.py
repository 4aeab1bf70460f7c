"""The seed models on the cuda device: compiled forward, and compiled training steps tracking
eager CPU ones step by step, with parameters, gradients and optimizer state kept on the device.
Small batches: under the simulator every kernel thread runs as Python."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid.nn.functional as F  # noqa: N812
from lucid.device import is_device_array
from lucid.optim import SGD, Adam
from tests.helpers import assert_close_scaled as assert_close
from tests.models import NeuralNetwork, SimpleCNN, train_step

# name: (constructor, input shape, loss, target shape)
MODELS = {
    "mlp": (lambda: NeuralNetwork(64, 128, 2), (2, 64), nn.BCELoss(), (2, 2)),
    "cnn": (SimpleCNN, (1, 3, 4, 4), F.mse_loss, (1, 64, 1, 1)),
}
OPTIMIZERS = {
    "sgd_momentum": lambda params: SGD(params, lr=0.05, momentum=0.9),
    "adam": lambda params: Adam(params, lr=0.01),
}


def _pair(name: str):
    lucid.manual_seed(3)
    cpu = MODELS[name][0]()
    lucid.manual_seed(3)
    dev = MODELS[name][0]().to("cuda")
    return cpu, dev


def _data(name: str, n: int, seed: int):
    rng = np.random.default_rng(seed)
    shape, target = MODELS[name][1], MODELS[name][3]
    out = []
    for _ in range(n):
        x = rng.standard_normal(shape).astype(np.float32)
        y = (rng.random(target) > 0.5).astype(np.float32) if name == "mlp" else \
            rng.random(target).astype(np.float32)
        out.append((x, y))
    return out


@pytest.mark.parametrize("name", list(MODELS))
def test_compiled_forward_on_the_device_matches_eager_cpu(name):
    cpu, dev = _pair(name)
    compiled = lucid.compile(dev)
    for x, _ in _data(name, 2, seed=0):
        out = compiled(lucid.tensor(x, device="cuda"))
        assert out.device == "cuda"
        assert_close(out, cpu(lucid.tensor(x)), "forward")
    entries = compiled._compiled_forward.entries
    assert [e.kind for e in entries] == ["compiled"]
    assert entries[0].backend.name == "cuda"


@pytest.mark.parametrize("name, opt_name, steps", [("mlp", "adam", 3),
                                                   ("mlp", "sgd_momentum", 2),
                                                   ("cnn", "sgd_momentum", 2)])
def test_compiled_training_step_on_the_device_tracks_eager_cpu(name, opt_name, steps):
    cpu, dev = _pair(name)
    loss_fn = MODELS[name][2]
    cpu_opt, opt = OPTIMIZERS[opt_name](cpu.parameters()), OPTIMIZERS[opt_name](dev.parameters())
    eager = train_step(cpu, cpu_opt, loss_fn)
    step = lucid.compile(train_step(dev, opt, loss_fn))
    arrays = [p.data for p in dev.parameters()]
    for i, (x, y) in enumerate(_data(name, steps, seed=1)):
        expected = eager(lucid.tensor(x), lucid.tensor(y))
        loss = step(lucid.tensor(x, device="cuda"), lucid.tensor(y, device="cuda"))
        assert loss.device == "cuda"
        assert_close(loss, expected, f"step {i}: loss")
        for (pname, p), q in zip(dev.named_parameters(), cpu.parameters(), strict=True):
            assert_close(p, q, f"step {i}: {pname}")
            assert_close(p.grad, q.grad, f"step {i}: {pname}.grad")
        for p, q in zip(dev.parameters(), cpu.parameters(), strict=True):
            for key, value in opt.state[p].items():
                assert value.device == "cuda", f"optimizer state {key} left the device"
                assert_close(value, cpu_opt.state[q][key], f"step {i}: state {key}")
    # Parameters were updated in their own device arrays, never replaced or copied to the host.
    assert all(p.data is a for p, a in zip(dev.parameters(), arrays, strict=True))
    assert all(is_device_array(p.data) and is_device_array(p.grad.data)
               for p in dev.parameters())
    assert len(step.entries) <= 2, step.recompiles
    assert all(e.kind == "compiled" and e.backend.name == "cuda" for e in step.entries)
    # The whole step runs in device kernels: convolutions, pooling and its gradient included.
    host = {name for e in step.entries for prog in e.backend.programs.values()
            for name in prog.host_nodes}
    assert not host, f"ops run on the host: {sorted(host)}"
