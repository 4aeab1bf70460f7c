"""lucid.save / lucid.load: tensors, state dicts, optimizer and scheduler states and whole
checkpoints round-trip; weights_only loading refuses code; files are written whole."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

import lucid
import lucid.nn as nn
from lucid.optim.lr_scheduler import StepLR


def _roundtrip(obj, **kw):
    buf = io.BytesIO()
    lucid.save(obj, buf)
    buf.seek(0)
    return lucid.load(buf, **kw)


def test_tensors_keep_values_dtype_shape_and_requires_grad():
    for t in (lucid.randn(3, 4), lucid.arange(6).reshape(2, 3), lucid.tensor(True),
              lucid.randn(2, 2, dtype=lucid.float64, requires_grad=True), lucid.zeros(0, 3)):
        u = _roundtrip(t)
        assert type(u) is lucid.Tensor and u.dtype == t.dtype and u.shape == t.shape
        assert u.requires_grad == t.requires_grad and u.grad is None
        np.testing.assert_array_equal(u.numpy(), t.numpy())
    strided = lucid.randn(4, 6).permute(1, 0)[::2]
    np.testing.assert_array_equal(_roundtrip(strided).numpy(), strided.numpy())
    p = nn.Parameter(lucid.randn(3))
    assert isinstance(_roundtrip(p), nn.Parameter)


def test_a_training_checkpoint_resumes_exactly(tmp_path):
    def make():
        lucid.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        opt = lucid.optim.Adam(model.parameters(), lr=0.01)
        return model, opt, StepLR(opt, step_size=2, gamma=0.5)

    def train(model, opt, sched, steps, seed):
        lucid.manual_seed(seed)
        for _ in range(steps):
            x, y = lucid.randn(5, 4), lucid.randn(5, 1)
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            sched.step()
        return loss.item()

    model, opt, sched = make()
    train(model, opt, sched, 3, seed=1)
    path = tmp_path / "ckpt.pt"
    lucid.save({"model": model.state_dict(), "opt": opt.state_dict(),
                "sched": sched.state_dict(), "epoch": 3}, path)
    lr_at_save = sched.get_last_lr()
    expected = train(model, opt, sched, 4, seed=2)

    model2, opt2, sched2 = make()
    ckpt = lucid.load(path)
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    assert ckpt["epoch"] == 3 and sched2.get_last_lr() == lr_at_save
    assert opt2.param_groups[0]["lr"] == lr_at_save[0]
    assert train(model2, opt2, sched2, 4, seed=2) == pytest.approx(expected, rel=1e-6)
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not list(tmp_path.glob("*.tmp"))


def test_weights_only_refuses_code_and_whole_modules():
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    buf = io.BytesIO()
    buf.write(lucid.serialization.MAGIC + pickle.dumps({"x": Payload()}))
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match="refuses builtins.print"):
        lucid.load(buf)
    model = nn.Linear(2, 2)
    with pytest.raises(pickle.UnpicklingError, match="weights_only=False"):
        _roundtrip(model)
    whole = _roundtrip(model, weights_only=False)
    np.testing.assert_array_equal(whole.weight.numpy(), model.weight.numpy())


def test_not_a_lucid_file_is_a_clear_error(tmp_path):
    path = tmp_path / "other.bin"
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(pickle.UnpicklingError, match="not a file written by lucid.save"):
        lucid.load(path)


def test_map_location_cpu_keeps_tensors_on_the_host():
    u = _roundtrip({"a": lucid.ones(2)}, map_location="cpu")
    assert u["a"].device == "cpu"
