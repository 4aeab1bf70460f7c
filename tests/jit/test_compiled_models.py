"""The seed models, compiled, against the same models run eagerly.

Seed 001's MLP (Linear -> ReLU -> Linear -> Sigmoid) and seed 004's SimpleCNN (Conv2d -> ReLU ->
MaxPool2d, twice; 3x16x16 inputs): the forward of `lucid.compile(model)` and of a compiled function
that calls the model; parameter and input gradients through the compiled backward; a whole
compiled training step (forward, loss, zero_grad, backward, step) with SGD (momentum) and Adam for
20 steps beside an identically initialised eager copy (losses, parameters, gradients and optimizer
state every step, at most one retrace); seed 001's loop as the seed writes it, compiled, printing
the eager run's numbers; and `eval()` switching a compiled model with Dropout to its deterministic
eval graph.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid.nn.functional as F  # noqa: N812
from lucid import Tensor
from lucid.optim import SGD, Adam
from tests.helpers import assert_close_scaled
from tests.models import NeuralNetwork, SimpleCNN, train_step

RTOL = 1e-5


# name: (constructor, input shape, another batch size, loss(output, target), a target batch)
MODELS = {
    "mlp": (lambda: NeuralNetwork(64, 128, 2), (32, 64), 8, nn.BCELoss(),
            lambda: lucid.randint(0, 2, (32, 2), dtype=lucid.float32)),
    "cnn": (SimpleCNN, (4, 3, 16, 16), 2, F.mse_loss, lambda: lucid.rand(4, 64, 4, 4)),
}
OPTIMIZERS = {
    "sgd_momentum": lambda params: SGD(params, lr=0.05, momentum=0.9),
    "adam": lambda params: Adam(params, lr=0.01),
}


def assert_close(actual, expected, what: str) -> None:
    assert_close_scaled(actual, expected, what, RTOL)


def _kinds(compiled) -> list[str]:
    return [e.kind for e in compiled.entries]


def assert_all_compiled(compiled) -> None:
    """Every entry is a graph, and the cache limit (past which calls run eagerly, adding no
    entry) was not reached."""
    assert compiled.entries and _kinds(compiled) == ["compiled"] * len(compiled.entries), \
        [getattr(e, "reason", None) for e in compiled.entries]
    assert len(compiled.entries) < compiled.cache_limit, compiled.recompiles


def _make(name: str, seed: int) -> nn.Module:
    lucid.manual_seed(seed)
    return MODELS[name][0]()


def _batch(name: str, n: int | None = None) -> Tensor:
    shape = MODELS[name][1]
    return lucid.randn(*((n,) + shape[1:] if n else shape))


# ----------------------------------------------------------------------------- forward/backward


@pytest.fixture(scope="module", params=list(MODELS))
def compiled_model(request):
    """(name, model, lucid.compile(model), a compiled function calling model), shared."""
    model = _make(request.param, seed=0)
    return (request.param, model, lucid.compile(model),
            lucid.compile(lambda x: model(x)))


def test_compiled_forward_matches_eager(compiled_model):
    name, model, cmodel, cfn = compiled_model
    before = len(cmodel._compiled_forward.entries), len(cfn.entries)
    batches = [_batch(name) for _ in range(3)] + [_batch(name, MODELS[name][2])]
    outs = []
    for x in batches:
        expected = model(x)
        for compiled in (cmodel, cfn):
            out = compiled(x)
            assert_close(out, expected, f"{name}: {compiled!r}")
            assert out.requires_grad  # parameters require grad: the output has a backward
        outs.append(expected.numpy())
    assert not np.allclose(outs[0], outs[1])  # the inputs really differ
    with lucid.no_grad():
        x = batches[0]
        expected = model(x)
        for compiled in (cmodel, cfn):
            out = compiled(x)
            assert_close(out, expected, f"{name} under no_grad: {compiled!r}")
            assert not out.requires_grad
    for compiled, n in zip((cmodel._compiled_forward, cfn), before, strict=True):
        # One entry per batch size and per grad mode; the same shape reuses its entry.
        assert len(compiled.entries) - n <= 3, compiled.recompiles
        assert_all_compiled(compiled)


def test_compiled_backward_gives_eager_parameter_and_input_grads(compiled_model):
    name, model, cmodel, cfn = compiled_model
    params = list(model.parameters())
    rng = np.random.default_rng(0)
    for _ in range(2):
        x = _batch(name)
        gradient = None
        for run in ("eager", "module", "function"):
            model.zero_grad()
            xr = x.detach().requires_grad_()
            out = {"eager": model, "module": cmodel, "function": cfn}[run](xr)
            if gradient is None:
                gradient = Tensor(rng.standard_normal(out.shape).astype(np.float32))
            out.backward(gradient)
            grads = [p.grad for p in params] + [xr.grad]
            if run == "eager":
                expected = grads
                continue
            for i, (g, e) in enumerate(zip(grads, expected, strict=True)):
                assert g is not None, f"{name} {run}: no gradient for #{i}"
                assert_close(g, e, f"{name} {run}: gradient #{i}")
    for compiled in (cmodel._compiled_forward, cfn):
        assert_all_compiled(compiled)
        assert compiled.last_entry.backward is not None


def test_compiled_backward_accumulates_into_grad_like_eager(compiled_model):
    name, model, cmodel, _ = compiled_model
    target_fn, loss_fn = MODELS[name][4], MODELS[name][3]
    batches = [(_batch(name), target_fn()) for _ in range(2)]
    result = {}
    for run, m in (("eager", model), ("compiled", cmodel)):
        model.zero_grad()
        for x, y in batches:  # no zero_grad in between: .grad accumulates
            loss_fn(m(x), y).backward()
        result[run] = [p.grad.numpy().copy() for p in model.parameters()]
    for i, (g, e) in enumerate(zip(result["compiled"], result["eager"], strict=True)):
        assert_close(Tensor(g), Tensor(e), f"{name}: accumulated gradient #{i}")
    assert_all_compiled(cmodel._compiled_forward)


# ----------------------------------------------------------------------------- training steps


def _state_tensors(opt) -> dict:
    sd = opt.state_dict()
    return {(p, k): v for p, s in sd["state"].items() for k, v in s.items()}


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
@pytest.mark.parametrize("name", list(MODELS))
def test_compiled_training_step_tracks_eager_for_20_steps(name, opt_name):
    _, _, _, loss_fn, target_fn = MODELS[name]
    eager_model, model = _make(name, seed=3), _make(name, seed=3)
    eager_opt = OPTIMIZERS[opt_name](eager_model.parameters())
    opt = OPTIMIZERS[opt_name](model.parameters())
    eager_step = train_step(eager_model, eager_opt, loss_fn)
    step = lucid.compile(train_step(model, opt, loss_fn))
    initial = [p.numpy().copy() for p in model.parameters()]
    lucid.manual_seed(4)
    data = [(_batch(name), target_fn()) for _ in range(20)]
    losses = []
    for i, (x, y) in enumerate(data):
        expected = eager_step(x, y)
        loss = step(x, y)
        assert_close(loss, expected, f"step {i}: loss")
        assert loss.requires_grad == expected.requires_grad
        for (pname, p), pe in zip(model.named_parameters(), eager_model.parameters(),
                                  strict=True):
            assert_close(p, pe, f"step {i}: {pname}")
            assert_close(p.grad, pe.grad, f"step {i}: {pname}.grad")
        state, eager_state = _state_tensors(opt), _state_tensors(eager_opt)
        assert state.keys() == eager_state.keys()
        assert state, "no optimizer state"
        for key, value in state.items():
            # (a momentum buffer sums up to 20 gradients; where they cancel, as a bias's can,
            # float32 rounding of the sum reaches a few 1e-5 of the buffer's largest entry)
            assert_close_scaled(value, eager_state[key], f"step {i}: optimizer state {key}",
                                3 * RTOL)
        assert opt.state_dict()["param_groups"] == eager_opt.state_dict()["param_groups"]
        losses.append(loss.item())
    # The first step creates the optimizer state (and the .grads): one retrace, then none.
    assert len(step.entries) <= 2, step.recompiles
    assert_all_compiled(step)
    assert step.last_entry.effects, "the step wrote nothing back"
    for p, p0 in zip(model.parameters(), initial, strict=True):
        assert not np.allclose(p.numpy(), p0)  # the parameters really moved
    assert len(set(losses)) == len(losses)  # a new batch each step


# ----------------------------------------------------------------------------- seed 001's loop

_EPOCH_LINE = re.compile(r"Epoch \[(\d+)/(\d+)\], Loss: (\S+)")


def seed_001(compile_what: str | None, n_epochs: int = 10) -> list[Tensor]:
    """Seed 001's program (examples/train_mlp.py); `compile_what` is None (eager), "model"
    (`model = lucid.compile(model)`) or "step" (the loop body as a compiled function)."""
    lucid.manual_seed(0)
    input_size, hidden_size, output_size = 64, 128, 2
    input_data = lucid.rand(32, input_size)
    target = lucid.randint(0, 2, (32, output_size), dtype=lucid.float32)
    model = NeuralNetwork(input_size, hidden_size, output_size)
    if compile_what == "model":
        model = lucid.compile(model)
    criterion = nn.BCELoss()
    optimizer = lucid.optim.Adam(model.parameters(), lr=0.01)

    if compile_what == "step":
        @lucid.compile
        def train_step(input_data, target):
            outputs = model(input_data)
            loss = criterion(outputs, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss

        for epoch in range(n_epochs):
            loss = train_step(input_data, target)
            print(f"Epoch [{epoch + 1}/{n_epochs}], Loss: {loss.item()}")
        assert len(train_step.entries) <= 2, train_step.recompiles
        assert_all_compiled(train_step)
        return list(model.parameters())

    for epoch in range(n_epochs):
        outputs = model(input_data)
        loss = criterion(outputs, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print(f"Epoch [{epoch + 1}/{n_epochs}], Loss: {loss.item()}")
    if compile_what == "model":
        # Epoch 1 runs with every .grad None, later epochs with .grads set (zero_grad comes
        # after the forward): one retrace.
        forward = model._compiled_forward
        assert len(forward.entries) <= 2, forward.recompiles
        assert_all_compiled(forward)
    return list(model.parameters())


@pytest.fixture(scope="module")
def seed_001_eager():
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        params = seed_001(None)
    return out.getvalue(), [p.numpy().copy() for p in params]


@pytest.mark.parametrize("compile_what", ["model", "step"])
def test_seed_001_loop_compiled_prints_the_eager_numbers(compile_what, seed_001_eager, capsys):
    eager_out, eager_params = seed_001_eager
    params = seed_001(compile_what)
    out = capsys.readouterr().out
    lines, eager_lines = out.splitlines(), eager_out.splitlines()
    assert len(lines) == len(eager_lines) == 10
    for line, eager_line in zip(lines, eager_lines, strict=True):
        got, want = _EPOCH_LINE.fullmatch(line), _EPOCH_LINE.fullmatch(eager_line)
        assert got and want, (line, eager_line)
        assert got.group(1, 2) == want.group(1, 2)
        np.testing.assert_allclose(float(got[3]), float(want[3]), rtol=RTOL, err_msg=line)
    first, last = float(_EPOCH_LINE.fullmatch(lines[0])[3]), float(
        _EPOCH_LINE.fullmatch(lines[-1])[3])
    assert abs(first - np.log(2)) < 0.1 and last < first  # it trains, as the seed shows
    # Adam's first step moves each weight by lr * g / (|g| + eps): a gradient that cancels to
    # ~eps (5.8e-9 for one fc1 weight here, its rounding 1% of it) moves by lr times its relative
    # rounding error, so the parameters agree to a fraction of lr, not to float32 rounding.
    for p, pe in zip(params, eager_params, strict=True):
        np.testing.assert_allclose(p.numpy(), pe, rtol=RTOL, atol=0.01 * 0.01,
                                   err_msg="final parameter")


# ----------------------------------------------------------------------------- dropout, eval()


def test_eval_switches_a_compiled_model_with_dropout():
    lucid.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 4))
    cmodel = lucid.compile(model)
    forward = cmodel._compiled_forward
    x = lucid.randn(8, 16)

    # Training: the compiled dropout draws the eager mask from the same seed, and a fresh one
    # on each call.
    lucid.manual_seed(5)
    expected = model(x)
    lucid.manual_seed(5)
    train_out = cmodel(x)
    assert_close(train_out, expected, "train mode, same seed")
    assert not np.allclose(cmodel(x).numpy(), train_out.numpy())
    assert "uniform" in forward.ir("traced")

    cmodel.eval()  # through the wrapper
    assert not model.training and not model[2].training
    eval_a, eval_b = cmodel(x), cmodel(x)
    with lucid.no_grad():
        expected = model(x)  # eager, eval mode
    assert_close(eval_a, expected, "eval mode")
    np.testing.assert_array_equal(eval_a.numpy(), eval_b.numpy())  # deterministic
    assert not np.allclose(eval_a.numpy(), train_out.numpy())
    assert "uniform" not in forward.ir("traced")  # the eval graph has no dropout mask
    assert len(forward.entries) == 2
    assert_all_compiled(forward)
    assert any("training" in reason for _, reasons in forward.recompiles for reason in reasons)

    model.train()  # through the wrapped module: the training entry runs again, no retrace
    again = [cmodel(x).numpy() for _ in range(2)]
    assert not np.allclose(again[0], again[1])
    assert not np.allclose(again[0], eval_a.numpy())
    model.eval()
    np.testing.assert_array_equal(cmodel(x).numpy(), eval_a.numpy())
    assert len(forward.entries) == 2


def test_large_mlp_training_step_matches_eager_on_the_native_tier():
    """The large benchmark step (784 -> 1024 -> 1024 -> 10, ReLU, cross-entropy, SGD momentum;
    batch 64 here) on the cpu backend, several steps past the switch to one native call."""
    def make():
        lucid.manual_seed(11)
        model = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                              nn.Linear(1024, 10))
        opt = SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        return model, opt, step

    eager_model, eager_opt, eager_step = make()
    model, opt, step = make()
    step = lucid.compile(step)
    lucid.manual_seed(12)
    for i in range(5):
        x, y = lucid.randn(64, 784), lucid.randint(0, 10, (64,))
        assert_close(step(x, y), eager_step(x, y), f"step {i}: loss")
        for (pname, p), pe in zip(model.named_parameters(), eager_model.parameters(),
                                  strict=True):
            assert_close(p, pe, f"step {i}: {pname}")
            assert_close(p.grad, pe.grad, f"step {i}: {pname}.grad")
    for key, value in _state_tensors(opt).items():
        assert_close(value, _state_tensors(eager_opt)[key], f"momentum buffer {key}")
    entry = step.last_entry
    assert entry.backend.program(entry.forward).tier == "native"
