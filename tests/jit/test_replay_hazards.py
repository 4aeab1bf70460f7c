"""Replay hazards: a compiled function replays a graph traced once, so every way a later call can
differ from the traced one must either retrace or be a runtime input. Each test runs the same
code eagerly and compiled over several calls and compares them call by call."""

from __future__ import annotations

import numpy as np

import lucid
import lucid.nn as nn
from lucid.optim import SGD, Adam
from tests.helpers import assert_close

SCALE = 2.0
WEIGHT = lucid.ones(3)
SHIFT = 1
USE_RELU = True
MODE = "double"



def data(*shape, seed=0):
    return lucid.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def twin_models(make, seed=0):
    """Two modules with equal parameters: one runs eagerly, the other compiled."""
    lucid.manual_seed(seed)
    a = make()
    lucid.manual_seed(seed)
    b = make()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())
    return a, b


def train_step(model, opt):
    def step(x, y):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss
    return step


# ----------------------------------------------------------------------------- Python constants


def test_global_float_changed_between_calls(monkeypatch):
    def f(x):
        return x * SCALE

    cf = lucid.compile(f)
    x = data(3)
    for scale in (2.0, 3.0, 0.5, 2.0):
        monkeypatch.setitem(globals(), "SCALE", scale)
        assert_close(cf(x), x.numpy() * scale)


def test_globals_read_inside_comprehensions_and_lambdas(monkeypatch):
    def f(x, *ys):
        scaled = [y * SCALE for y in ys]  # nested code objects: their globals are guarded too
        return sum((s + SHIFT for s in scaled), x) + (lambda t: t * SCALE)(x)

    cf = lucid.compile(f)
    x, y = data(3), data(3, seed=1)
    for scale, shift in ((2.0, 1), (3.0, 1), (3.0, 4)):
        monkeypatch.setitem(globals(), "SCALE", scale)
        monkeypatch.setitem(globals(), "SHIFT", shift)
        assert_close(cf(x, y, y), x.numpy() * (1 + scale) + 2 * (y.numpy() * scale + shift))


def test_global_int_changed_between_calls(monkeypatch):
    def f(x):
        return x + SHIFT

    cf = lucid.compile(f)
    x = data(3)
    for shift in (1, 5, -2, 1):
        monkeypatch.setitem(globals(), "SHIFT", shift)
        assert_close(cf(x), f(x))
        assert_close(cf(x), x.numpy() + shift)


def test_global_bool_choosing_a_branch(monkeypatch):
    def f(x):
        return x.relu() if USE_RELU else x.exp()

    cf = lucid.compile(f)
    x = data(4)
    for flag in (True, False, True):
        monkeypatch.setitem(globals(), "USE_RELU", flag)
        assert_close(cf(x), np.maximum(x.numpy(), 0) if flag else np.exp(x.numpy()))


def test_closure_float_changed_between_calls():
    scale = 2.0

    def f(x):
        return x * scale

    cf = lucid.compile(f)
    x = data(3)
    for scale in (2.0, 4.0, -1.0):  # noqa: B007 (rebinding the closure cell is the point)
        assert_close(cf(x), x.numpy() * scale)


def test_attribute_float_on_module_changed_between_calls():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)
            self.scale = 1.0

        def forward(self, x):
            return self.fc(x) * self.scale

    eager, model = twin_models(Scaled)
    compiled = lucid.compile(model)
    x = data(4, 3)
    for scale in (1.0, 2.5, 0.1):
        eager.scale = model.scale = scale
        assert_close(compiled(x), eager(x))


# ----------------------------------------------------------------------------- Python branches


def test_int_argument_choosing_a_branch():
    def f(x, n):
        for _ in range(n):
            x = x * 2 + 1
        return x if n else -x

    cf = lucid.compile(f)
    x = data(3)
    for n in (0, 1, 2, 1, 0, 3):
        assert_close(cf(x, n), f(x, n))
    assert len(cf.entries) == 4


def test_bool_and_str_arguments_choosing_a_branch():
    def f(x, flag, mode):
        y = x.exp() if flag else x.tanh()
        if mode == "double":
            return y * 2
        if mode == "neg":
            return -y
        return y

    cf = lucid.compile(f)
    x = data(5)
    for flag, mode in [(True, "double"), (False, "double"), (True, "neg"), (False, "plain"),
                       (True, "double")]:
        assert_close(cf(x, flag, mode), f(x, flag, mode))
    assert len(cf.entries) == 4


def test_global_str_choosing_a_branch(monkeypatch):
    def f(x):
        return x * 2 if MODE == "double" else x * 3

    cf = lucid.compile(f)
    x = data(3)
    for mode in ("double", "triple", "double"):
        monkeypatch.setitem(globals(), "MODE", mode)
        assert_close(cf(x), x.numpy() * (2 if mode == "double" else 3))


# ----------------------------------------------------------------------------- random ops


def test_random_ops_draw_fresh_numbers_every_call():
    def f(x):
        return x + lucid.randn(*x.shape)

    cf = lucid.compile(f)
    x = lucid.zeros(6)
    outs = [cf(x).numpy().copy() for _ in range(3)]
    assert not np.array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[1], outs[2])


def test_random_ops_match_eager_when_seeded_alike():
    def f(x):
        a = lucid.rand(*x.shape)
        b = lucid.randn(*x.shape)
        return x * a + b, nn.functional.dropout(x, 0.5, training=True)

    cf = lucid.compile(f)
    x = data(8)
    lucid.manual_seed(7)
    eager = [f(x) for _ in range(3)]
    lucid.manual_seed(7)
    compiled = [cf(x) for _ in range(3)]
    for (ea, eb), (ca, cb) in zip(eager, compiled, strict=True):
        assert_close(ca, ea)
        assert_close(cb, eb)


# ----------------------------------------------------------------------------- in-place ops


def test_inplace_op_on_an_input_is_seen_by_the_caller():
    def f(x):
        x.add_(1)
        return x * 2

    cf = lucid.compile(f)
    xe, xc = data(4), data(4)
    for _ in range(3):
        v = xc._version[0]
        ye, yc = f(xe), cf(xc)
        assert_close(yc, ye)
        assert_close(xc, xe)
        assert xc._version[0] > v


def test_inplace_ops_on_two_inputs_and_a_read_after_the_write():
    def f(a, b):
        before = a * 1
        a.mul_(2)
        b.sub_(a)
        return before + a + b

    cf = lucid.compile(f)
    ae, be, ac, bc = data(3), data(3, seed=1), data(3), data(3, seed=1)
    for _ in range(3):
        assert_close(cf(ac, bc), f(ae, be))
        assert_close(ac, ae)
        assert_close(bc, be)


def test_same_tensor_passed_twice_then_two_tensors():
    def f(a, b):
        a.add_(1)
        return a * b

    cf = lucid.compile(f)
    xe, xc = data(3), data(3)
    ye, yc = data(3, seed=1), data(3, seed=1)
    for args_e, args_c in [((xe, xe), (xc, xc)), ((xe, ye), (xc, yc)), ((ye, ye), (yc, yc)),
                           ((ye, xe), (yc, xc))]:
        assert_close(cf(*args_c), f(*args_e))
        assert_close(xc, xe)
        assert_close(yc, ye)


def test_captured_buffer_updated_in_place_inside_the_function():
    count = lucid.zeros(())
    total = lucid.zeros(3)

    @lucid.compile
    def f(x):
        with lucid.no_grad():
            count.add_(1)
            total.add_(x)
        return total / count

    xs = [data(3, seed=k) for k in range(4)]
    for k, x in enumerate(xs, 1):
        mean = np.mean([v.numpy() for v in xs[:k]], axis=0)
        assert_close(f(x), mean)
        assert count.item() == k


def test_grad_accumulates_across_calls_without_zero_grad():
    eager, model = twin_models(lambda: nn.Linear(3, 2))

    def make(m):
        def f(x):
            loss = m(x).pow(2).sum()
            loss.backward()
            return loss
        return f

    fe, fc = make(eager), lucid.compile(make(model))
    for k in range(3):
        x = data(4, 3, seed=k)
        assert_close(fc(x), fe(x))
        for pe, pc in zip(eager.parameters(), model.parameters(), strict=True):
            assert_close(pc.grad, pe.grad)


# ----------------------------------------------------------------------------- aliasing outputs


def test_returning_an_input():
    cf = lucid.compile(lambda x, y: (x, y * 2))
    x, y = data(3), data(3, seed=1)
    for _ in range(2):
        a, b = cf(x, y)
        assert a is x
        assert_close(b, y.numpy() * 2)


def test_returning_an_input_after_an_inplace_op():
    def f(x):
        x.mul_(3)
        return x

    cf = lucid.compile(f)
    xe, xc = data(3), data(3)
    for _ in range(3):
        out = cf(xc)
        f(xe)
        assert_close(out, xe)
        assert_close(xc, xe)
        assert out is xc  # as eagerly: the argument itself, not a copy


def test_returning_a_view_of_an_input():
    def f(x):
        return x.reshape(2, 3), x[0]

    cf = lucid.compile(f)
    x = data(6)
    for _ in range(3):
        with lucid.no_grad():
            x.add_(1.0)
        a, b = cf(x)
        e_a, e_b = f(x)
        assert_close(a, e_a)
        assert_close(b, e_b)


def test_returning_a_view_of_an_input_is_not_stale_after_the_input_changes():
    def f(x):
        return x.reshape(2, 2)

    cf = lucid.compile(f)
    x = lucid.tensor(np.arange(4, dtype=np.float32))
    cf(x)
    with lucid.no_grad():
        x.mul_(10)
    assert_close(cf(x), np.arange(4, dtype=np.float32).reshape(2, 2) * 10)


def test_view_output_shares_storage_with_its_input():
    def f(x):
        return x.reshape(2, 2)

    cf = lucid.compile(f)
    results = []
    for g in (f, cf, cf):
        x = lucid.tensor(np.arange(4, dtype=np.float32))
        view = g(x)
        with lucid.no_grad():
            x.add_(10)
        results.append(view.numpy().copy())
    np.testing.assert_array_equal(results[0], np.arange(4).reshape(2, 2) + 10)
    np.testing.assert_array_equal(results[1], results[0])
    np.testing.assert_array_equal(results[2], results[0])


# ----------------------------------------------------------------------------- several modules


def test_one_compiled_function_on_two_module_instances():
    def f(model, x):
        return model(x).tanh().sum()

    cf = lucid.compile(f)
    lucid.manual_seed(0)
    m1 = nn.Linear(3, 2)
    lucid.manual_seed(1)
    m2 = nn.Linear(3, 2)
    x = data(4, 3)
    for _ in range(2):
        assert_close(cf(m1, x), f(m1, x))
        assert_close(cf(m2, x), f(m2, x))
    assert not np.allclose(cf(m1, x).numpy(), cf(m2, x).numpy())


def test_training_two_module_instances_with_one_compiled_step():
    def step(model, opt, x, y):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    cstep = lucid.compile(step)
    x, y = data(4, 3), data(4, 2, seed=1)
    models = {}
    for seed in (0, 1):
        e, c = twin_models(lambda: nn.Linear(3, 2), seed)
        models[seed] = (e, SGD(e.parameters(), lr=0.1), c, SGD(c.parameters(), lr=0.1))
    for _ in range(3):
        for e, eo, c, co in models.values():
            assert_close(cstep(c, co, x, y), step(e, eo, x, y))
            for pe, pc in zip(e.parameters(), c.parameters(), strict=True):
                assert_close(pc, pe)


def test_compiled_method_on_two_instances():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        @lucid.compile
        def score(self, x):
            return self.fc(x).relu().sum(1)

        def score_eager(self, x):
            return self.fc(x).relu().sum(1)

    lucid.manual_seed(0)
    a = Net()
    lucid.manual_seed(1)
    b = Net()
    x = data(5, 3)
    for _ in range(2):
        assert_close(a.score(x), a.score_eager(x))
        assert_close(b.score(x), b.score_eager(x))


# ----------------------------------------------------------------------------- arg also captured


def test_argument_that_is_also_captured():
    w = data(3)

    def f(v):
        return v * w + w

    cf = lucid.compile(f)
    for _ in range(2):
        assert_close(cf(w), w.numpy() * w.numpy() + w.numpy())
    other = data(3, seed=1)
    assert_close(cf(other), f(other))
    assert_close(cf(w), f(w))


def test_argument_that_is_also_captured_written_in_place():
    we, wc = data(3), data(3)

    def make(w):
        def f(v):
            v.add_(1)
            return v * w

        return f

    fe, fc = make(we), lucid.compile(make(wc))
    for _ in range(3):
        assert_close(fc(wc), fe(we))
        assert_close(wc, we)
    oe, oc = data(3, seed=2), data(3, seed=2)
    assert_close(fc(oc), fe(oe))
    assert_close(oc, oe)
    assert_close(wc, we)


# ----------------------------------------------------------------------------- outputs kept


def test_outputs_of_one_call_are_not_overwritten_by_the_next():
    def f(x):
        y = x * 2
        return y, y + 1, {"s": y.sum()}

    cf = lucid.compile(f)
    x1, x2 = data(3), data(3, seed=1)
    a1, b1, d1 = cf(x1)
    keep = (a1.numpy().copy(), b1.numpy().copy(), d1["s"].numpy().copy())
    cf(x2)
    cf(x2 * 3)
    np.testing.assert_array_equal(a1.numpy(), keep[0])
    np.testing.assert_array_equal(b1.numpy(), keep[1])
    np.testing.assert_array_equal(d1["s"].numpy(), keep[2])


def test_grads_of_one_call_are_not_overwritten_by_the_next():
    model = nn.Linear(3, 2)

    @lucid.compile
    def f(x):
        model.zero_grad()
        loss = model(x).pow(2).sum()
        loss.backward()
        return loss

    f(data(4, 3))
    g1 = model.weight.grad
    keep = g1.numpy().copy()
    f(data(4, 3, seed=1))
    assert model.weight.grad is not g1
    np.testing.assert_array_equal(g1.numpy(), keep)
    assert not np.allclose(model.weight.grad.numpy(), keep)


def test_backward_of_an_old_output_after_a_new_call():
    w = lucid.tensor(np.ones(3, np.float32), requires_grad=True)
    cf = lucid.compile(lambda x: (x * w).sum())
    x1, x2 = data(3), data(3, seed=1)
    out1 = cf(x1)
    cf(x2)
    out1.backward()
    assert_close(w.grad, x1)


# ----------------------------------------------------------------------------- hyperparameters


def test_learning_rate_changed_mid_training():
    eager, model = twin_models(lambda: nn.Linear(3, 2))
    eo, co = SGD(eager.parameters(), lr=0.1), SGD(model.parameters(), lr=0.1)
    estep, cstep = train_step(eager, eo), lucid.compile(train_step(model, co))
    x, y = data(4, 3), data(4, 2, seed=1)
    for _ in range(2):  # the first call, and the first one where .grad exists
        assert_close(cstep(x, y), estep(x, y))
    traced = len(cstep.entries)
    for lr in (0.05, 0.01, 0.2, 0.001):
        for o in (eo, co):
            o.param_groups[0]["lr"] = lr
        assert_close(cstep(x, y), estep(x, y))
        for pe, pc in zip(eager.parameters(), model.parameters(), strict=True):
            assert_close(pc, pe)
    assert len(cstep.entries) == traced


def test_momentum_changed_mid_training():
    eager, model = twin_models(lambda: nn.Linear(3, 2))
    eo, co = (SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (eager, model))
    estep, cstep = train_step(eager, eo), lucid.compile(train_step(model, co))
    x, y = data(4, 3), data(4, 2, seed=1)
    for momentum in (0.9, 0.9, 0.5, 0.0, 0.8):
        for o in (eo, co):
            o.param_groups[0]["momentum"] = momentum
        assert_close(cstep(x, y), estep(x, y))
        for pe, pc in zip(eager.parameters(), model.parameters(), strict=True):
            assert_close(pc, pe)


def test_adam_betas_and_lr_changed_mid_training():
    eager, model = twin_models(lambda: nn.Linear(3, 2))
    eo, co = (Adam(m.parameters(), lr=0.01) for m in (eager, model))
    estep, cstep = train_step(eager, eo), lucid.compile(train_step(model, co))
    x, y = data(4, 3), data(4, 2, seed=1)
    for _ in range(3):
        assert_close(cstep(x, y), estep(x, y))
    traced = len(cstep.entries)
    for lr, betas in [(0.02, (0.8, 0.99)), (0.005, (0.95, 0.9)), (0.01, (0.9, 0.999))]:
        for o in (eo, co):
            o.param_groups[0]["lr"] = lr
            o.param_groups[0]["betas"] = betas
        assert_close(cstep(x, y), estep(x, y), rtol=1e-5, atol=1e-6)
        for pe, pc in zip(eager.parameters(), model.parameters(), strict=True):
            assert_close(pc, pe, rtol=1e-5, atol=1e-6)
    assert len(cstep.entries) == traced


# ----------------------------------------------------------------------------- train / eval


def test_eval_after_compiling_a_dropout_model():
    def make():
        return nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))

    eager, model = twin_models(make)
    compiled = lucid.compile(model)
    x = data(16, 4)
    lucid.manual_seed(3)
    e_train = eager(x)
    lucid.manual_seed(3)
    c_train = compiled(x)
    assert_close(c_train, e_train)
    compiled.eval()
    eager.eval()
    assert not model.training and not model[1].training
    c1, c2 = compiled(x), compiled(x)
    assert_close(c1, eager(x))
    np.testing.assert_array_equal(c1.numpy(), c2.numpy())
    compiled.train()
    eager.train()
    lucid.manual_seed(4)
    e_again = eager(x)
    lucid.manual_seed(4)
    assert_close(compiled(x), e_again)
    assert not np.allclose(e_again.numpy(), c1.numpy())


def test_eval_on_a_submodule_after_compiling_a_function():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.9))
    cf = lucid.compile(lambda x: model(x))
    x = data(8, 4)
    cf(x)
    model[1].eval()
    assert_close(cf(x), model[0](x))


# ----------------------------------------------------------------------------- replaced captures


def test_parameter_replaced_between_calls():
    model = nn.Linear(3, 2)
    compiled = lucid.compile(model)
    x = data(4, 3)
    assert_close(compiled(x), model.forward(x))
    model.weight = nn.Parameter(lucid.ones(2, 3))
    assert_close(compiled(x), x.numpy() @ np.ones((3, 2), np.float32) + model.bias.numpy())
    model.bias = nn.Parameter(lucid.zeros(2))
    assert_close(compiled(x), x.numpy() @ np.ones((3, 2), np.float32))


def test_parameter_replaced_between_training_steps():
    eager, model = twin_models(lambda: nn.Linear(3, 2))
    estep = train_step(eager, SGD(eager.parameters(), lr=0.1))
    co = SGD(model.parameters(), lr=0.1)
    cstep = lucid.compile(train_step(model, co))
    x, y = data(4, 3), data(4, 2, seed=1)
    cstep(x, y)
    estep(x, y)
    w = nn.Parameter(lucid.full((2, 3), 0.5))
    model.weight = w
    co.param_groups[0]["params"][0] = w
    eager.weight = nn.Parameter(lucid.full((2, 3), 0.5))
    estep = train_step(eager, SGD(eager.parameters(), lr=0.1))
    for _ in range(2):
        assert_close(cstep(x, y), estep(x, y))
        assert_close(model.weight, eager.weight)
    assert model.weight is w


def test_optimizer_load_state_dict_between_calls():
    eager, model = twin_models(lambda: nn.Linear(3, 2))
    eo, co = (SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (eager, model))
    estep, cstep = train_step(eager, eo), lucid.compile(train_step(model, co))
    x, y = data(4, 3), data(4, 2, seed=1)
    for _ in range(2):
        assert_close(cstep(x, y), estep(x, y))
    saved = {"state": {i: {"momentum_buffer": lucid.full(p.shape, 0.25)}
                       for i, p in enumerate(model.parameters())},
             "param_groups": [{**{k: v for k, v in eo.param_groups[0].items() if k != "params"},
                               "lr": 0.05, "params": [0, 1]}]}
    eo.load_state_dict(saved)
    co.load_state_dict(saved)
    for _ in range(2):
        assert_close(cstep(x, y), estep(x, y))
        for pe, pc in zip(eager.parameters(), model.parameters(), strict=True):
            assert_close(pc, pe)
    for pe, pc in zip(eager.parameters(), model.parameters(), strict=True):
        assert_close(co.state[pc]["momentum_buffer"], eo.state[pe]["momentum_buffer"])


def test_closure_tensor_rebound_between_calls():
    w = data(3)

    def f(x):
        return x * w

    cf = lucid.compile(f)
    x = data(3, seed=1)
    assert_close(cf(x), x.numpy() * w.numpy())
    w = lucid.full((3,), 4.0)  # noqa: F841 (the closure cell now holds a new tensor)
    assert_close(cf(x), x.numpy() * 4.0)


def test_global_tensor_rebound_between_calls(monkeypatch):
    def f(x):
        return x * WEIGHT

    cf = lucid.compile(f)
    x = data(3)
    assert_close(cf(x), x)
    monkeypatch.setitem(globals(), "WEIGHT", lucid.full((3,), 3.0))
    assert_close(cf(x), x.numpy() * 3.0)


# ----------------------------------------------------------------------------- eager writes


def test_captured_tensor_modified_eagerly_between_calls():
    w = lucid.tensor(np.ones(3, np.float32), requires_grad=True)
    cf = lucid.compile(lambda x: (x * w).sum())
    x = data(3)
    for k in range(3):
        assert_close(cf(x), (x.numpy() * 2.0 ** k).sum())
        with lucid.no_grad():
            w.mul_(2)


def test_parameter_modified_eagerly_between_calls():
    model = nn.Linear(3, 2)
    compiled = lucid.compile(model)
    x = data(4, 3)
    for _ in range(3):
        assert_close(compiled(x), model.forward(x))
        with lucid.no_grad():
            model.weight.mul_(2)
            model.bias.add_(1)


def test_optimizer_state_modified_eagerly_between_calls():
    eager, model = twin_models(lambda: nn.Linear(3, 2))
    eo, co = (Adam(m.parameters(), lr=0.01) for m in (eager, model))
    estep, cstep = train_step(eager, eo), lucid.compile(train_step(model, co))
    x, y = data(4, 3), data(4, 2, seed=1)
    for _ in range(2):
        assert_close(cstep(x, y), estep(x, y))
    for o in (eo, co):
        for state in o.state.values():
            state["step"].fill_(50.0)
            state["exp_avg"].mul_(0.5)
    for _ in range(2):
        assert_close(cstep(x, y), estep(x, y))
        for pe, pc in zip(eager.parameters(), model.parameters(), strict=True):
            assert_close(pc, pe)


# ----------------------------------------------------------------------------- augmented assignment


def _manual_sgd(model, lr=0.05):
    """The tutorial loop: `p -= lr * p.grad` under no_grad, then `p.grad.zero_()`."""
    def step(x, y):
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        with lucid.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
                p.grad.zero_()
        return loss
    return step


class _RawMLP(nn.Module):
    """x @ w1 -> relu -> @ w2, weights stored (in, out): each weight's gradient `x.T @ g` fuses
    with its update `w - lr * grad` into one matmul kernel that writes into w itself."""

    def __init__(self):
        super().__init__()
        self.w1 = nn.Parameter(lucid.randn(4, 3))
        self.w2 = nn.Parameter(lucid.randn(3, 2))

    def forward(self, x):
        return (x @ self.w1).relu() @ self.w2


def test_manual_sgd_with_augmented_assignment_matches_eager_on_every_tier():
    # The product must not land in w before the kernel's loop has read w's old value.
    eager, compiled = twin_models(_RawMLP)
    x, y = data(5, 4), data(5, 2, seed=1)
    step_e, step_c = _manual_sgd(eager), lucid.compile(_manual_sgd(compiled))
    for _ in range(5):  # the native tier starts at the third call
        assert_close(step_c(x, y), step_e(x, y), rtol=1e-5)
        for pe, pc in zip(eager.parameters(), compiled.parameters(), strict=True):
            assert_close(pc, pe, rtol=1e-5)


def test_augmented_assignment_on_a_closure_tensor_compiled():
    w = lucid.ones(3)

    def f(x):
        nonlocal w
        w += x
        w *= 2.0
        return w.sum()

    cf = lucid.compile(f)
    ident, storage = w, w.data
    expected = np.ones(3, np.float32)
    for k in range(3):
        x = data(3, seed=k)
        expected = (expected + x.numpy()) * 2.0
        assert_close(cf(x), expected.sum(), rtol=1e-5)
        assert w is ident and w.data is storage
        assert_close(w, expected)
