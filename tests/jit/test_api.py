"""`lucid.compile`'s user-facing API: decorator forms, compiled modules, pytrees, lifted floats,
recompile logging, the cache limit, graph breaks and `explain()`, exceptions, autograd through
compiled calls, `ir()`, nesting and grad mode."""

from __future__ import annotations

import re
import traceback
import warnings

import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid_jit
from lucid.optim import SGD, Adam
from lucid_jit import CompiledFunction, CompiledModule, GraphBreakError
from tests.helpers import assert_close


def data(*shape, seed=0):
    return lucid.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def line_of(fn, text: str) -> int:
    """The line number of the first line of fn's source containing text."""
    import inspect

    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


# ----------------------------------------------------------------------------- decorator forms


def test_decorator_without_arguments():
    @lucid.compile
    def f(x):
        return x.exp() + 1

    assert isinstance(f, CompiledFunction)
    x = data(3)
    assert_close(f(x), np.exp(x.numpy()) + 1)
    assert f.__name__ == "f"


def test_decorator_with_arguments():
    @lucid.compile()
    def f(x):
        return x * 2

    @lucid.compile(backend="cpu", fullgraph=True, fastmath=False)
    def g(x):
        return x * 3

    x = data(3)
    assert_close(f(x), x.numpy() * 2)
    assert_close(g(x), x.numpy() * 3)
    assert g.fullgraph and not f.fullgraph


def test_compile_called_on_a_function_and_lucid_jit_compile_agree():
    def f(x, y):
        return (x @ y).tanh()

    x, y = data(2, 3), data(3, 4, seed=1)
    a, b = lucid.compile(f), lucid_jit.compile(f)
    assert type(a) is type(b) is CompiledFunction
    assert_close(a(x, y), f(x, y))
    assert_close(b(x, y), f(x, y))
    assert type(lucid_jit.compile(nn.Linear(2, 2))) is CompiledModule


def test_compile_rejects_what_it_cannot_compile():
    with pytest.raises(TypeError, match="expected a function or an nn.Module"):
        lucid.compile(3)
    with pytest.raises(lucid.LucidError, match="unknown backend 'nope'"):
        lucid.compile(lambda x: x, backend="nope")


# ----------------------------------------------------------------------------- compiled modules


def test_compiled_module_delegates_to_the_module():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    compiled = lucid.compile(model)
    assert isinstance(compiled, nn.Module)
    assert [id(p) for p in compiled.parameters()] == [id(p) for p in model.parameters()]
    assert [n for n, _ in compiled.named_parameters()] == [n for n, _ in
                                                           model.named_parameters()]
    assert list(compiled.state_dict()) == list(model.state_dict())
    assert repr(compiled) == "Compiled" + repr(model)
    assert dict(compiled.named_modules())["0"] is model[0]
    compiled.eval()
    assert not model.training and not model[0].training
    compiled.train()
    assert model.training and model[2].training and compiled.training
    compiled.tag = "mine"
    assert model.tag == "mine"
    x = data(5, 3)
    assert_close(compiled(x), model.forward(x))
    assert_close(compiled.forward(x), model.forward(x))


def test_compiled_module_load_state_dict_reaches_the_module():
    model = nn.Linear(3, 2)
    compiled = lucid.compile(model)
    x = data(4, 3)
    compiled(x)
    other = nn.Linear(3, 2)
    compiled.load_state_dict(other.state_dict())
    assert_close(model.weight, other.weight)
    assert_close(compiled(x), other(x))


def test_training_a_compiled_module_with_an_eager_optimizer():
    lucid.manual_seed(0)
    eager = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    lucid.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    compiled = lucid.compile(model)
    eo, co = SGD(eager.parameters(), lr=0.1), SGD(compiled.parameters(), lr=0.1)
    x, y = data(16, 3), data(16, 1, seed=1)
    losses = []
    for _ in range(5):
        for m, o in ((eager, eo), (compiled, co)):
            o.zero_grad()
            loss = ((m(x) - y) ** 2).mean()
            loss.backward()
            o.step()
            losses.append(loss.item())
        assert losses[-1] == pytest.approx(losses[-2], rel=1e-5)
        for pe, pc in zip(eager.parameters(), model.parameters(), strict=True):
            assert_close(pc.grad, pe.grad)
            assert_close(pc, pe)
    assert losses[-1] < losses[0]


# ----------------------------------------------------------------------------- pytrees


def test_nested_inputs_and_outputs():
    @lucid.compile
    def f(batch, scale, opts):
        a, (b, c) = batch["pair"][0], batch["pair"][1]
        out = a * scale + b - c
        return {"out": out, "parts": [a.sum(), (b.mean(), 7)], "scale": scale,
                "name": opts["name"], "n": opts["n"], "nothing": None}

    a, b, c = data(2, 3), data(2, 3, seed=1), data(2, 3, seed=2)
    for scale in (0.5, 2.0):
        r = f({"pair": [a, (b, c)]}, scale, {"name": "run", "n": 3})
        assert set(r) == {"out", "parts", "scale", "name", "n", "nothing"}
        assert_close(r["out"], a.numpy() * scale + b.numpy() - c.numpy())
        assert isinstance(r["parts"], list) and isinstance(r["parts"][1], tuple)
        assert_close(r["parts"][0], a.numpy().sum())
        assert_close(r["parts"][1][0], b.numpy().mean())
        assert r["parts"][1][1] == 7 and type(r["parts"][1][1]) is int
        assert r["scale"] == scale and type(r["scale"]) is float
        assert r["name"] == "run" and r["n"] == 3 and r["nothing"] is None


def test_kwargs_and_namedtuple_outputs():
    from collections import namedtuple

    Out = namedtuple("Out", "total diff")

    @lucid.compile
    def f(x, *, y):
        return Out(x + y, x - y)

    x, y = data(3), data(3, seed=1)
    r = f(x, y=y)
    assert isinstance(r, Out)
    assert_close(r.total, x.numpy() + y.numpy())
    assert_close(r.diff, x.numpy() - y.numpy())


# ----------------------------------------------------------------------------- lifted floats


def test_float_argument_is_lifted():
    @lucid.compile
    def f(x, alpha):
        return x * alpha + alpha ** 2

    x = data(3)
    for alpha in (0.5, 1.5, -2.0, 3.25):
        assert_close(f(x, alpha), x.numpy() * alpha + alpha ** 2)
    assert len(f.entries) == 1


def test_int_argument_retraces():
    @lucid.compile
    def f(x, n):
        return x * n

    x = data(3)
    for n in (1, 2, 3, 2):
        assert_close(f(x, n), x.numpy() * n)
    assert len(f.entries) == 3


def test_float_compared_in_python_retraces_only_when_the_answer_changes():
    @lucid.compile
    def f(x, t):
        return x * t if t > 1.0 else x - t

    x = data(3)
    for t in (2.0, 3.0, 0.5, 0.25, 5.0):
        assert_close(f(x, t), x.numpy() * t if t > 1.0 else x.numpy() - t)
    assert len(f.entries) == 2


# ----------------------------------------------------------------------------- recompile logging


def test_recompile_log_names_the_argument_and_the_shapes(monkeypatch, capfd):
    monkeypatch.setenv("LUCID_JIT_LOG", "recompiles")

    @lucid.compile
    def f(x):
        return x * 2

    f(data(4, 3))
    f(data(4, 3))
    assert capfd.readouterr().err == ""
    f(data(5, 3))
    err = capfd.readouterr().err
    assert "[lucid_jit:recompiles]" in err and "retracing" in err
    assert re.search(r"(argument 0|\bx\b).*float32\[4, 3\] -> float32\[5, 3\]", err), err


def test_recompile_log_for_dtype_requires_grad_and_int(monkeypatch, capfd):
    monkeypatch.setenv("LUCID_JIT_LOG", "recompiles")

    @lucid.compile
    def f(x, n):
        return x * n

    f(data(3), 2)
    f(data(3), 3)
    assert "2 -> 3" in capfd.readouterr().err
    f(data(3).double(), 3)
    assert "float32[3] -> float64[3]" in capfd.readouterr().err
    f(lucid.ones(3, dtype=lucid.float64, requires_grad=True), 3)
    assert "float64[3] -> float64[3] requires_grad" in capfd.readouterr().err


def test_recompile_log_for_a_module_switched_to_eval(monkeypatch, capfd):
    monkeypatch.setenv("LUCID_JIT_LOG", "recompiles")
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    compiled = lucid.compile(model)
    x = data(2, 3)
    compiled(x)
    compiled.eval()
    compiled(x)
    err = capfd.readouterr().err
    assert "training=True -> False" in err, err


def test_no_log_without_the_variable(monkeypatch, capfd):
    monkeypatch.delenv("LUCID_JIT_LOG", raising=False)
    f = lucid.compile(lambda x: x + 1)
    f(data(2))
    f(data(3))
    assert capfd.readouterr().err == ""
    assert len(f.recompiles) == 1


# ----------------------------------------------------------------------------- the cache limit


def test_cache_limit_warns_once_then_runs_eagerly():
    f = lucid.compile(lambda x: x.exp() * 2, cache_limit=2)
    f(data(1))
    f(data(2))
    with pytest.warns(RuntimeWarning, match="cache limit"):
        out = f(data(3))
    assert_close(out, np.exp(data(3).numpy()) * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for n in (4, 5, 1):
            assert_close(f(data(n)), np.exp(data(n).numpy()) * 2)
    assert len(f.entries) == 2


def test_default_cache_limit_is_eight():
    f = lucid.compile(lambda x: x + 1)
    for n in range(1, 9):
        f(data(n))
    with pytest.warns(RuntimeWarning, match="traced 8 times"):
        assert_close(f(data(9)), data(9).numpy() + 1)
    assert len(f.entries) == 8


# ----------------------------------------------------------------------------- graph breaks


def _bool_break(x):
    if x.sum() > 0:  # BREAK
        return x * 2
    return x * 3


def _item_break(x):
    s = x.sum().item()  # BREAK
    return x * s


def _numpy_break(x):
    arr = x.numpy()  # BREAK
    return x + float(arr.max())


def _tolist_break(x):
    values = x.tolist()  # BREAK
    return x * len(values)


def _truth_break(x):
    flag = x.max()
    if flag:  # BREAK
        return x + 1
    return x - 1


@pytest.mark.parametrize("fn, what", [(_bool_break, "bool()"), (_item_break, "item()"),
                                      (_numpy_break, "numpy()"), (_tolist_break, "tolist()"),
                                      (_truth_break, "bool()")],
                         ids=["compare", "item", "numpy", "tolist", "truth"])
def test_graph_break_falls_back_to_eager_and_explain_says_where(fn, what):
    compiled = lucid.compile(fn)
    xs = [data(4), -data(4).abs(), data(4, seed=3)]
    for x in xs:
        assert_close(compiled(x), fn(x))
    assert len(compiled.entries) == 1 and compiled.entries[0].kind == "eager"
    text = str(lucid_jit.explain(compiled))
    line = line_of(fn, "# BREAK")
    assert f"{what} needs a tensor's value" in text
    assert f"test_api.py:{line}" in text


def test_explain_compiles_and_calls_a_plain_function():
    report = lucid_jit.explain(_item_break, data(3))
    assert "item() needs a tensor's value" in str(report)
    assert f"test_api.py:{line_of(_item_break, '# BREAK')}" in str(report)


def test_explain_of_a_graph_shows_graphs_and_write_backs():
    model = nn.Linear(2, 2)
    opt = SGD(model.parameters(), lr=0.1)

    def step(x):
        opt.zero_grad()
        loss = model(x).sum()
        loss.backward()
        opt.step()
        return loss

    text = str(lucid_jit.explain(step, data(3, 2)))
    assert "graph break at" not in text
    assert re.search(r"%\d+: f32\[2,2\] ", text), text
    assert "write into model.weight" in text
    assert "set model.weight.grad" in text


def test_fullgraph_raises_graph_break_error():
    compiled = lucid.compile(_item_break, fullgraph=True)
    with pytest.raises(GraphBreakError, match=r"item\(\) needs a tensor's value") as info:
        compiled(data(3))
    assert f"test_api.py:{line_of(_item_break, '# BREAK')}" in str(info.value)
    assert isinstance(info.value, lucid.LucidError)


def test_fullgraph_raises_on_every_break_kind():
    for fn in (_bool_break, _numpy_break, _tolist_break, _truth_break):
        with pytest.raises(GraphBreakError, match="needs a tensor's value"):
            lucid.compile(fn, fullgraph=True)(data(3))


def _twin_item_steps():
    """An eager and a compiled training step that graph-break on `.item()`."""
    lucid.manual_seed(0)
    eager = nn.Linear(2, 2)
    lucid.manual_seed(0)
    model = nn.Linear(2, 2)

    def make(m):
        opt = SGD(m.parameters(), lr=0.1, momentum=0.9)

        def step(x):
            opt.zero_grad()
            loss = m(x).pow(2).sum()
            loss.backward()
            opt.step()
            return loss.item()

        return step, opt

    (estep, eo), (cstep, co) = make(eager), make(model)
    return (eager, estep, eo), (model, lucid.compile(cstep), co)


def test_a_graph_broken_step_updates_once():
    (eager, estep, eo), (model, cstep, co) = _twin_item_steps()
    x = data(3, 2)
    # The aborted trace must leave no update behind: the eager run makes the only one.
    assert cstep(x) == pytest.approx(estep(x), rel=1e-6)
    for pe, pc in zip(eager.parameters(), model.parameters(), strict=True):
        assert_close(pc, pe)
        assert_close(pc.grad, pe.grad)
        assert_close(co.state[pc]["momentum_buffer"], eo.state[pe]["momentum_buffer"])
    assert [e.kind for e in cstep.entries] == ["eager"]


def test_a_graph_broken_step_called_again():
    (eager, estep, eo), (model, cstep, co) = _twin_item_steps()
    x = data(3, 2)
    for _ in range(3):  # from the second call on, .grad exists: the `.grad is None` guard fails
        assert cstep(x) == pytest.approx(estep(x), rel=1e-6)
        for pe, pc in zip(eager.parameters(), model.parameters(), strict=True):
            assert_close(pc, pe)
            assert_close(co.state[pc]["momentum_buffer"], eo.state[pe]["momentum_buffer"])
    assert all(e.kind == "eager" for e in cstep.entries)


# ----------------------------------------------------------------------------- exceptions


class Boom(Exception):
    pass


def test_exception_in_the_traced_function_reaches_the_user_unchanged():
    def f(x):
        y = x * 2
        raise Boom(f"bad input of shape {tuple(y.shape)}")  # RAISE

    compiled = lucid.compile(f)
    with pytest.raises(Boom, match=r"bad input of shape \(3,\)") as info:
        compiled(data(3))
    frames = traceback.extract_tb(info.tb)
    assert any(fr.filename.endswith("test_api.py") and fr.lineno == line_of(f, "# RAISE")
               for fr in frames)
    assert compiled.entries == []


def test_op_error_in_the_traced_function_names_the_users_line():
    def f(x):
        return x @ x  # MATMUL

    with pytest.raises(lucid.ShapeError, match=rf"test_api.py:{line_of(f, '# MATMUL')}") as info:
        lucid.compile(f)(data(2, 3))
    assert any(fr.lineno == line_of(f, "# MATMUL") for fr in traceback.extract_tb(info.tb))


def test_exception_leaves_no_half_written_state():
    model = nn.Linear(3, 2)
    model.calls = 0
    opt = Adam(model.parameters(), lr=0.1)
    x = data(4, 3)
    w = lucid.ones(3)
    # A first, eager step: .grad and the optimizer's state exist before the failing call.
    ((model(x) ** 2).sum()).backward()
    opt.step()

    @lucid.compile
    def step(x, fail):
        with lucid.no_grad():
            w.add_(1)
        opt.zero_grad()
        loss = (model(x) ** 2).sum()
        loss.backward()
        opt.step()
        model.calls += 1
        if fail:
            raise Boom("after the step")
        return loss

    before = {
        "params": [p.numpy().copy() for p in model.parameters()],
        "grads": [p.grad.numpy().copy() for p in model.parameters()],
        "grad_ids": [id(p.grad) for p in model.parameters()],
        "state": {id(p): {k: v.numpy().copy() for k, v in s.items()}
                  for p, s in opt.state.items()},
        "lr": opt.param_groups[0]["lr"],
        "w": w.numpy().copy(),
        "version": w._version[0],
    }
    with pytest.raises(Boom):
        step(x, True)
    assert model.calls == 0
    assert w._version[0] == before["version"]
    np.testing.assert_array_equal(w.numpy(), before["w"])
    assert opt.param_groups[0]["lr"] == before["lr"] and type(opt.param_groups[0]["lr"]) is float
    for p, arr, g, gid in zip(model.parameters(), before["params"], before["grads"],
                              before["grad_ids"], strict=True):
        np.testing.assert_array_equal(p.numpy(), arr)
        assert id(p.grad) == gid
        np.testing.assert_array_equal(p.grad.numpy(), g)
        assert set(opt.state[p]) == set(before["state"][id(p)])
        for k, v in opt.state[p].items():
            np.testing.assert_array_equal(v.numpy(), before["state"][id(p)][k])
    # The function still works afterwards (it graph-breaks on the attribute write: eager).
    step(x, False)
    assert model.calls == 1
    assert_close(w, before["w"] + 1)


def test_exception_on_the_first_step_leaves_grads_none_and_no_optimizer_state():
    model = nn.Linear(3, 2)
    opt = Adam(model.parameters(), lr=0.1)
    params = [p.numpy().copy() for p in model.parameters()]

    @lucid.compile
    def step(x):
        loss = (model(x) ** 2).sum()
        loss.backward()
        opt.step()
        raise Boom("after the first step")

    with pytest.raises(Boom):
        step(data(4, 3))
    assert all(p.grad is None for p in model.parameters())
    assert not any(opt.state.get(p) for p in model.parameters())
    for p, before in zip(model.parameters(), params, strict=True):
        np.testing.assert_array_equal(p.numpy(), before)
        assert p._ctx is None and p.requires_grad


def test_exception_on_a_second_signature_keeps_the_first_entry():
    @lucid.compile
    def f(x):
        if x.shape[0] > 3:
            raise ValueError("too long")
        return x + 1

    assert_close(f(data(3)), data(3).numpy() + 1)
    with pytest.raises(ValueError, match="too long"):
        f(data(5))
    assert_close(f(data(3)), data(3).numpy() + 1)
    assert len(f.entries) == 1


# ----------------------------------------------------------------------------- autograd


def test_backward_through_a_compiled_output_matches_eager():
    lucid.manual_seed(0)
    model = nn.Linear(3, 2)

    def f(x, scale):
        return (model(x).tanh() * scale).sum()

    compiled = lucid.compile(f)
    xe = data(4, 3).requires_grad_()
    xc = data(4, 3).requires_grad_()
    f(xe, 0.5).backward()
    grads_e = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    out = compiled(xc, 0.5)
    assert out.requires_grad
    out.backward()
    assert_close(xc.grad, xe.grad)
    for p, g in zip(model.parameters(), grads_e, strict=True):
        assert_close(p.grad, g)


def test_backward_of_several_outputs_and_accumulation():
    w = lucid.tensor(np.array([1.0, 2.0, 3.0], np.float32), requires_grad=True)

    @lucid.compile
    def f(x):
        return (x * w).sum(), (w ** 2).sum()

    x = data(3)
    a, b = f(x)
    (a + b).backward()
    assert_close(w.grad, x.numpy() + 2 * w.numpy())
    a, _ = f(x)
    a.backward()
    assert_close(w.grad, 2 * x.numpy() + 2 * w.numpy())


def test_grad_written_back_by_backward_inside_the_function():
    lucid.manual_seed(0)
    eager = nn.Linear(3, 2)
    lucid.manual_seed(0)
    model = nn.Linear(3, 2)

    def make(m):
        def f(x):
            m.zero_grad()
            loss = (m(x) ** 2).mean()
            loss.backward()
            return loss, m.weight.grad

        return f

    fe, fc = make(eager), lucid.compile(make(model))
    for k in range(3):
        x = data(4, 3, seed=k)
        (le, ge), (lc, gc) = fe(x), fc(x)
        assert_close(lc, le)
        assert gc is model.weight.grad
        assert_close(gc, ge)
        assert_close(model.weight.grad, eager.weight.grad)
        assert_close(model.bias.grad, eager.bias.grad)
        assert lc.requires_grad == le.requires_grad


# ----------------------------------------------------------------------------- ir


def test_ir_stages():
    w = lucid.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    f = lucid.compile(lambda x: (x @ w).relu().sum())
    with pytest.raises(lucid.LucidError, match="not traced yet"):
        f.ir()
    f(data(4, 3))
    for stage in ("traced", "optimized", "backward", "backward_optimized"):
        text = f.ir(stage)
        assert re.search(r"^\s*%\d+: \w+\[.*\] = \w+", text, re.M), (stage, text)
    assert "matmul" in f.ir() and "relu" in f.ir("optimized")
    assert f.ir() == f.ir("traced")
    with pytest.raises(ValueError, match="stage must be one of"):
        f.ir("nope")


def test_ir_without_backward_and_for_an_eager_entry():
    f = lucid.compile(lambda x: x * 2)
    f(data(3))
    assert "no backward graph" in f.ir("backward")
    g = lucid.compile(_item_break)
    g(data(3))
    assert "runs eagerly" in g.ir() and "item()" in g.ir()


def test_compiled_module_ir():
    compiled = lucid.compile(nn.Linear(3, 2))
    compiled(data(2, 3))
    assert "matmul" in compiled.ir() and "%" in compiled.ir("optimized")


# ----------------------------------------------------------------------------- nesting, grad mode


def test_compiled_function_called_inside_another_is_inlined():
    @lucid.compile
    def inner(x):
        return x.exp() * 2

    @lucid.compile
    def outer(x):
        return inner(x) + inner(x * 3)

    x = data(4)
    for _ in range(2):
        assert_close(outer(x), np.exp(x.numpy()) * 2 + np.exp(x.numpy() * 3) * 2)
    assert inner.entries == [] and inner.calls == 0
    assert outer.ir().count("exp") == 2
    assert_close(inner(x), np.exp(x.numpy()) * 2)
    assert len(inner.entries) == 1


def test_no_grad_around_a_compiled_call():
    w = lucid.tensor(np.ones(3, np.float32), requires_grad=True)
    f = lucid.compile(lambda x: (x * w).sum())
    x = data(3)
    with lucid.no_grad():
        out = f(x)
    assert not out.requires_grad and out._ctx is None
    assert_close(out, x.numpy().sum())
    out = f(x)
    assert out.requires_grad
    assert len(f.entries) == 2  # grad mode is part of the key
    with lucid.no_grad():
        again = f(x)
    assert not again.requires_grad
    assert len(f.entries) == 2
    out.backward()
    assert_close(w.grad, x)


def test_an_out_of_range_index_is_the_callers_error_and_the_native_tier_is_kept(monkeypatch):
    import lucid.nn.functional as F  # noqa: N812
    from lucid_jit.codegen import backend as backends

    monkeypatch.setattr(backends, "STRICT", False)  # (what users run: failures warn)
    f = lucid.compile(lambda x, t: F.cross_entropy(x, t))
    x = lucid.randn(4, 3)
    good, bad = lucid.tensor(np.array([0, 1, 2, 1])), lucid.tensor(np.array([0, 1, 5, 1]))
    want = F.cross_entropy(x, good).item()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "numba could not compile" warning
        # calls 1-2 run the Python tier, call 3 is the first native one, later ones the fast path
        for t in (good, bad, bad, good, bad, good):
            if t is bad:
                with pytest.raises(IndexError, match="index 5 is out of bounds"):
                    f(x, t)
            else:
                assert f(x, t).item() == pytest.approx(want, rel=1e-6)
    entry = f.last_entry
    assert entry.backend.program(entry.forward).tier == "native"


def _step_returning_values_built_after_backward():
    model = nn.Linear(3, 1)
    opt = SGD(model.parameters(), lr=0.1)

    def step(x):
        opt.zero_grad()
        loss = (model(x) ** 2).mean()
        loss.backward()
        opt.step()
        reg = sum((p ** 2).sum() for p in model.parameters())
        return loss * 2.0, loss + reg

    return model, step


def test_values_built_on_a_graph_backward_freed_are_returned_as_eagerly():
    lucid.manual_seed(0)
    eager_model, eager_step = _step_returning_values_built_after_backward()
    lucid.manual_seed(0)
    model, step = _step_returning_values_built_after_backward()
    compiled = lucid.compile(step)
    x = data(4, 3)
    for _ in range(4):
        (a_e, b_e), (a_c, b_c) = eager_step(x), compiled(x)
        assert_close(a_c, a_e, rtol=1e-5)
        assert_close(b_c, b_e, rtol=1e-5)
        assert a_c.requires_grad == a_e.requires_grad
    for p_e, p_c in zip(eager_model.parameters(), model.parameters(), strict=True):
        assert_close(p_c, p_e, rtol=1e-5)
    # As eagerly, a backward through them meets the freed graph.
    for out in (a_e, a_c, b_c):
        with pytest.raises(lucid.LucidError, match="already freed"):
            out.backward()


def _embedding_step():
    lucid.manual_seed(0)
    emb, head = nn.Embedding(10, 4), nn.Linear(4, 3)
    params = list(emb.parameters()) + list(head.parameters())
    opt = Adam(params, lr=0.1)

    def step(idx, y, probe):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(head(emb(idx)), y)
        loss.backward()
        opt.step()
        return loss, emb.weight[probe].sum()  # a gather after the step: it can fail

    return params, opt, step


def _state(params, opt):
    return ([p.numpy().copy() for p in params],
            [None if p.grad is None else p.grad.numpy().copy() for p in params],
            [{k: v.numpy().copy() for k, v in opt.state.get(p, {}).items()} for p in params])


def _assert_same_state(a, b, rtol=0.0):
    for xs, ys in zip(a, b, strict=True):
        for x, y in zip(xs, ys, strict=True):
            if isinstance(x, dict):
                assert x.keys() == y.keys()
                for k in x:
                    np.testing.assert_allclose(x[k], y[k], rtol=rtol, atol=rtol)
            elif x is None:
                assert y is None
            else:
                np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("good_calls", [1, 4], ids=["python-tier", "native-tier"])
def test_a_call_that_fails_at_run_time_changes_nothing(good_calls):
    """An out-of-range index after opt.step(): the parameters, Adam's moments and step count,
    and the `.grad`s stay as they were before the call, on every tier."""
    params, opt, step = _embedding_step()
    eager_params, eager_opt, eager_step = _embedding_step()
    compiled = lucid.compile(step)
    idx, y = lucid.tensor([1, 2, 3]), lucid.tensor([0, 1, 2])
    for _ in range(good_calls):
        compiled(idx, y, idx)
        eager_step(idx, y, idx)
    before = _state(params, opt)
    with pytest.raises(IndexError, match="index 20 is out of bounds"):
        compiled(idx, y, lucid.tensor([1, 20]))
    _assert_same_state(_state(params, opt), before)
    # And training goes on as if the failed call never happened.
    for _ in range(2):
        loss, _ = compiled(idx, y, idx)
        eager_loss, _ = eager_step(idx, y, idx)
        assert_close(loss, eager_loss, rtol=1e-5)
    _assert_same_state(_state(params, opt), _state(eager_params, eager_opt), rtol=1e-5)


# ----------------------------------------------------------------------------- graph breaks


def test_a_graph_break_warns_once_per_function_with_the_reason_and_the_line():
    compiled = lucid.compile(_bool_break)
    with pytest.warns(lucid_jit.GraphBreakWarning) as record:
        compiled(data(4))
        compiled(data(4))
        compiled(data(5))  # a second eager entry: no second warning
    assert len(record) == 1
    message = str(record[0].message)
    assert "_bool_break" in message and "bool() needs a tensor's value" in message
    assert f"test_api.py:{line_of(_bool_break, '# BREAK')}" in message
    assert record[0].filename == __file__  # the warning points at the caller's line


def test_graph_break_warnings_can_be_turned_off():
    compiled = lucid.compile(_item_break)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=lucid_jit.GraphBreakWarning)
        compiled(data(4))


def _clip_by_norm_step(model, opt):
    def step(x, y):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        total = sum((p.grad ** 2).sum() for p in model.parameters()).sqrt()
        scale = (1.0 / (total + 1e-6)).clamp(max=1.0)
        for p in model.parameters():
            p.grad.mul_(scale)  # in-place ops on .grad: writes to a captured tensor
            p.grad.clamp_(-0.5, 0.5)
        opt.step()
        return loss
    return step


def test_in_place_ops_on_grads_compile_and_match_eager():
    lucid.manual_seed(0)
    eager = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    lucid.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    step_e = _clip_by_norm_step(eager, SGD(eager.parameters(), lr=0.5))
    step_c = lucid.compile(_clip_by_norm_step(model, SGD(model.parameters(), lr=0.5)))
    x, y = data(5, 4), data(5, 2, seed=1) * 10.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", lucid_jit.GraphBreakWarning)
        for _ in range(4):
            assert_close(step_c(x, y), step_e(x, y), rtol=1e-5)
    assert all(e.kind == "compiled" for e in step_c.entries)
    for pe, pc in zip(eager.parameters(), model.parameters(), strict=True):
        assert_close(pc, pe, rtol=1e-5)
        assert_close(pc.grad, pe.grad, rtol=1e-5)


def test_leaves_sharing_a_gradient_get_grads_of_their_own():
    def f(a, b):
        (a + b).backward(lucid.ones(3))  # add's vjp gives both leaves the seed itself
        a.grad.mul_(2.0)
        return a.grad.sum()

    for fn in (f, lucid.compile(f)):
        a, b = lucid.ones(3, requires_grad=True), lucid.ones(3, requires_grad=True)
        fn(a, b)
        assert a.grad.tolist() == [2.0, 2.0, 2.0] and b.grad.tolist() == [1.0, 1.0, 1.0]


def test_the_recompile_log_and_explain_number_entries_alike(monkeypatch, capfd):
    monkeypatch.setenv("LUCID_JIT_LOG", "recompiles")

    @lucid.compile
    def f(x):
        return x * 2

    for n in (3, 4, 5):
        f(data(n))
    logged = [int(m) for m in re.findall(r"retracing \(entry (\d+)\)", capfd.readouterr().err)]
    report = lucid_jit.explain(f)
    assert logged == [1, 2]
    assert [e.index for e in report.entries] == [0, 1, 2]
    text = str(report)
    for k in logged:  # the entry the log names is the one explain shows for that recompile
        assert f"--- entry {k}: compiled, for x: f32[{k + 3}]" in text
        assert f"entry {k} was traced because" in text
