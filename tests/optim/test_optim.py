"""Optimizers against an independent float64 NumPy reference of PyTorch's update formulas."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
from lucid.optim import SGD, Adam, AdamW, Optimizer
from tests.helpers import assert_close
from tests.optim.reference import RefAdam, RefSGD

SHAPES = [(4, 3), (3,), ()]


# ---------------------------------------------------------------------- helpers


def make_params(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in SHAPES]
    return arrays, [lucid.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]


def grad_sequence(steps, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]


def set_grads(params, grads):
    for p, g in zip(params, grads, strict=True):
        p.grad = lucid.tensor(g, dtype=p.dtype)


def run_both(opt, ref, params, steps=6, lrs=None, atol=1e-12, rtol=1e-10):
    for k, grads in enumerate(grad_sequence(steps)):
        if lrs is not None:
            opt.param_groups[0]["lr"] = lrs[k]
        set_grads(params, grads)
        opt.step()
        ref.step(grads, opt.param_groups[0]["lr"])
        for p, r in zip(params, ref.params, strict=True):
            assert_close(p, r, rtol=rtol, atol=atol)


SGD_CASES = [
    dict(),
    dict(momentum=0.9),
    dict(momentum=0.9, dampening=0.1),
    dict(momentum=0.9, nesterov=True),
    dict(momentum=0.9, nesterov=True, weight_decay=0.01),
    dict(weight_decay=0.1),
    dict(maximize=True),
    dict(momentum=0.5, dampening=0.3, weight_decay=0.05, maximize=True),
]

ADAM_CASES = [
    dict(),
    dict(betas=(0.8, 0.99), eps=1e-6),
    dict(weight_decay=0.1),
    dict(amsgrad=True),
    dict(amsgrad=True, weight_decay=0.05, maximize=True),
    dict(maximize=True),
]


def _id(case):
    return ",".join(f"{k}={v}" for k, v in case.items()) or "defaults"


# ---------------------------------------------------------------------- update rules


@pytest.mark.parametrize("case", SGD_CASES, ids=_id)
def test_sgd_matches_reference(case):
    arrays, params = make_params()
    run_both(SGD(params, lr=0.05, **case), RefSGD(arrays, **case), params)


@pytest.mark.parametrize("case", ADAM_CASES, ids=_id)
def test_adam_matches_reference(case):
    arrays, params = make_params()
    run_both(Adam(params, lr=0.01, **case), RefAdam(arrays, **case), params)


@pytest.mark.parametrize("case", ADAM_CASES + [dict(weight_decay=0.0)], ids=_id)
def test_adamw_matches_reference(case):
    arrays, params = make_params()
    case = {"weight_decay": 1e-2, **case}  # AdamW's own default, unless the case overrides it
    run_both(AdamW(params, lr=0.01, **case), RefAdam(arrays, decoupled=True, **case), params)


def test_adamw_default_weight_decay_differs_from_adam():
    _, p1 = make_params()
    _, p2 = make_params()
    assert AdamW(p1).defaults["weight_decay"] == 1e-2
    a, w = Adam(p1, lr=0.1, weight_decay=0.1), AdamW(p2, lr=0.1, weight_decay=0.1)
    for grads in grad_sequence(3):
        set_grads(p1, grads)
        set_grads(p2, grads)
        a.step()
        w.step()
    assert not np.allclose(p1[0].numpy(), p2[0].numpy(), atol=1e-4)


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    lambda ps: Adam(ps, lr=0.01, amsgrad=True),
    lambda ps: AdamW(ps, lr=0.01),
], ids=["sgd", "adam", "adamw"])
def test_float32_params_stay_float32_and_match(make):
    arrays, params = make_params(np.float32)
    opt = make(params)
    kind = type(opt).__name__
    ref = RefSGD(arrays, momentum=0.9, nesterov=True) if kind == "SGD" else RefAdam(
        arrays, amsgrad=kind == "Adam", weight_decay=1e-2 if kind == "AdamW" else 0.0,
        decoupled=kind == "AdamW")
    # The reference starts from the float32-rounded values and sees float32-rounded gradients.
    ref.params = [np.float32(a).astype(np.float64) for a in arrays]
    for grads in grad_sequence(5):
        grads = [np.float32(g).astype(np.float64) for g in grads]
        set_grads(params, grads)
        opt.step()
        ref.step(grads, opt.param_groups[0]["lr"])
    for p, r in zip(params, ref.params, strict=True):
        assert p.dtype == np.float32
        assert_close(p, r, rtol=1e-5, atol=1e-6)
    for state in opt.state.values():
        assert all(value.dtype == np.float32 for value in state.values())


def test_updates_write_into_the_parameters_in_place():
    _, params = make_params(np.float32)
    arrays = [p.data for p in params]
    versions = [p._version[0] for p in params]
    opt = Adam(params, lr=0.1)
    set_grads(params, grad_sequence(1)[0])
    opt.step()
    for p, arr, v in zip(params, arrays, versions, strict=True):
        assert p.data is arr  # same storage: a traced step writes back into these arrays
        assert p._version[0] > v  # the write went through a tensor op, not NumPy on .data
        assert p.is_leaf and p.requires_grad


def test_adam_step_is_a_float32_scalar_tensor_counted_in_place():
    _, params = make_params()
    opt = Adam(params, lr=0.01)
    set_grads(params, grad_sequence(1)[0])
    opt.step()
    step = opt.state[params[0]]["step"]
    assert isinstance(step, lucid.Tensor) and step.shape == () and step.dtype == np.float32
    for _ in range(3):
        opt.step()
    assert opt.state[params[0]]["step"] is step
    assert step.item() == 4.0


def test_training_with_backward_matches_reference():
    rng = np.random.default_rng(3)
    w0, x = rng.standard_normal((3, 2)), rng.standard_normal((5, 3))
    w = lucid.tensor(w0, dtype=np.float64, requires_grad=True)
    opt = SGD([w], lr=0.1, momentum=0.9)
    ref = RefSGD([w0], momentum=0.9)
    for _ in range(4):
        loss = ((lucid.tensor(x) @ w) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        ref.step([2 * x.T @ (x @ ref.params[0])], 0.1)
    assert_close(w, ref.params[0], rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------- hyperparameters


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_lr_change_between_steps_takes_effect(name):
    arrays, params = make_params()
    if name == "sgd":
        opt, ref = SGD(params, lr=0.1, momentum=0.9), RefSGD(arrays, momentum=0.9)
    else:
        opt, ref = Adam(params, lr=0.1), RefAdam(arrays)
    lrs = [0.1, 0.1, 0.01, 0.01, 0.5, 0.0]
    run_both(opt, ref, params, steps=6, lrs=lrs)


def test_lr_zero_leaves_parameters_unchanged():
    arrays, params = make_params()
    opt = Adam(params, lr=0.0)
    set_grads(params, grad_sequence(1)[0])
    opt.step()
    for p, a in zip(params, arrays, strict=True):
        assert_close(p, a, rtol=0, atol=0)


def test_param_groups_with_different_lr():
    arrays, params = make_params()
    opt = SGD([{"params": params[:2], "lr": 0.5}, {"params": params[2:]}], lr=0.01, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.01]
    assert all(g["momentum"] == 0.9 for g in opt.param_groups)
    fast, slow = RefSGD(arrays[:2], momentum=0.9), RefSGD(arrays[2:], momentum=0.9)
    for grads in grad_sequence(4):
        set_grads(params, grads)
        opt.step()
        fast.step(grads[:2], 0.5)
        slow.step(grads[2:], 0.01)
    for p, r in zip(params, fast.params + slow.params, strict=True):
        assert_close(p, r, rtol=1e-10, atol=1e-12)


def test_add_param_group_fills_defaults_and_rejects_duplicates():
    _, params = make_params()
    opt = Adam(params[:1], lr=0.3)
    opt.add_param_group({"params": params[1:], "betas": (0.5, 0.6)})
    assert opt.param_groups[1]["lr"] == 0.3 and opt.param_groups[1]["betas"] == (0.5, 0.6)
    with pytest.raises(ValueError, match="more than one"):
        opt.add_param_group({"params": params[:1]})


def test_params_without_grad_are_skipped():
    arrays, params = make_params()
    opt = Adam(params, lr=0.1)
    params[0].grad = lucid.ones(params[0].shape, dtype=np.float64)
    opt.step()
    assert params[0] in opt.state and params[1] not in opt.state
    assert not np.allclose(params[0].numpy(), arrays[0])
    assert_close(params[1], arrays[1], rtol=0, atol=0)


@pytest.mark.parametrize("bad", [
    lambda ps: SGD(ps, lr=-1.0),
    lambda ps: SGD(ps, momentum=-0.1),
    lambda ps: SGD(ps, nesterov=True),
    lambda ps: SGD(ps, momentum=0.9, dampening=0.5, nesterov=True),
    lambda ps: Adam(ps, betas=(1.0, 0.999)),
    lambda ps: Adam(ps, eps=-1.0),
    lambda ps: Adam([]),
    lambda ps: Adam(ps + ps[:1]),
])
def test_invalid_arguments_raise(bad):
    _, params = make_params()
    with pytest.raises(ValueError):
        bad(params)


def test_non_tensor_params_raise():
    with pytest.raises(TypeError):
        SGD([1.0, 2.0])
    with pytest.raises(TypeError):
        SGD(lucid.ones(3, requires_grad=True))


# ---------------------------------------------------------------------- zero_grad


def test_zero_grad_sets_to_none_by_default():
    _, params = make_params()
    opt = SGD(params, lr=0.1)
    set_grads(params, grad_sequence(1)[0])
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_zero_grad_in_place_keeps_the_gradient_tensor():
    _, params = make_params()
    opt = SGD(params, lr=0.1)
    set_grads(params, grad_sequence(1)[0])
    before = [p.grad for p in params]
    opt.zero_grad(set_to_none=False)
    for p, g in zip(params, before, strict=True):
        assert p.grad is g
        assert_close(p.grad, np.zeros(p.shape), rtol=0, atol=0)
    # Backward after an in-place zero accumulates onto zeros: the gradient is exactly the new one.
    (params[0] * 3.0).sum().backward()
    assert_close(params[0].grad, np.full(params[0].shape, 3.0), rtol=0, atol=0)


# ---------------------------------------------------------------------- state_dict


def test_state_dict_format():
    _, params = make_params()
    opt = Adam([{"params": params[:2]}, {"params": params[2:], "lr": 0.5}], lr=0.01,
               amsgrad=True)
    set_grads(params, grad_sequence(1)[0])
    params[1].grad = None
    opt.step()
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert [g["lr"] for g in sd["param_groups"]] == [0.01, 0.5]
    assert sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sorted(sd["state"]) == [0, 2]  # param 1 had no grad, so it has no state yet
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert sd["state"][0]["step"].item() == 1.0


@pytest.mark.parametrize("make", [
    lambda ps, lr: SGD(ps, lr=lr, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps, lr: Adam(ps, lr=lr, amsgrad=True),
    lambda ps, lr: AdamW(ps, lr=lr),
], ids=["sgd", "adam", "adamw"])
def test_state_dict_round_trip_continues_identically(make):
    _, params = make_params()
    opt = make(params, 0.05)
    grads = grad_sequence(7)
    for g in grads[:3]:
        set_grads(params, g)
        opt.step()
    opt.param_groups[0]["lr"] = 0.02  # a changed hyperparameter travels with the state dict
    sd = opt.state_dict()

    clones = [lucid.tensor(p.numpy(), dtype=p.dtype, requires_grad=True) for p in params]
    other = make(clones, 123.0)
    other.load_state_dict(sd)
    assert other.param_groups[0]["lr"] == 0.02
    assert other.param_groups[0]["params"][0] is clones[0]
    for i, p in enumerate(clones):
        for name, value in other.state[p].items():
            assert value is not sd["state"][i][name]  # copied, not shared

    for g in grads[3:]:
        set_grads(params, g)
        set_grads(clones, g)
        opt.step()
        other.step()
    for p, c in zip(params, clones, strict=True):
        assert_close(c, p, rtol=0, atol=0)
    if isinstance(opt, Adam):
        assert other.state[clones[0]]["step"].item() == 7.0


def test_load_state_dict_copies_values():
    _, params = make_params()
    opt = SGD(params, lr=0.1, momentum=0.9)
    set_grads(params, grad_sequence(1)[0])
    opt.step()
    sd = opt.state_dict()
    saved = sd["state"][0]["momentum_buffer"].numpy().copy()
    other = SGD([lucid.tensor(p.numpy(), requires_grad=True) for p in params], lr=0.1,
                momentum=0.9)
    other.load_state_dict(sd)
    opt.step()  # moves opt's buffers (the ones sd refers to) in place
    assert not np.allclose(sd["state"][0]["momentum_buffer"].numpy(), saved)
    loaded = other.state[other.param_groups[0]["params"][0]]["momentum_buffer"]
    assert_close(loaded, saved, rtol=0, atol=0)


def test_load_state_dict_rejects_mismatched_groups():
    _, params = make_params()
    sd = SGD(params, lr=0.1).state_dict()
    with pytest.raises(ValueError, match="parameter groups"):
        SGD([{"params": params[:1]}, {"params": params[1:]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="parameters"):
        SGD(params[:2], lr=0.1).load_state_dict(sd)


def test_custom_optimizer_uses_the_base_loop():
    class SignSGD(Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, {"lr": lr})

        def _update(self, group, p, state):
            p.sub_(p.grad.sign() * group["lr"])

    arrays, params = make_params()
    opt = SignSGD(params, lr=0.25)
    grads = grad_sequence(1)[0]
    set_grads(params, grads)
    opt.step()
    for p, a, g in zip(params, arrays, grads, strict=True):
        assert_close(p, a - 0.25 * np.sign(g), rtol=0, atol=1e-15)


def test_step_closure_returns_the_loss():
    w = lucid.tensor([1.0, -2.0], requires_grad=True)
    opt = SGD([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == pytest.approx(5.0)
    assert_close(w, [0.8, -1.6])


def test_adam_reads_the_step_count_from_the_state_tensor():
    # The bias corrections must come from state["step"] (a tensor a compiled step reads afresh),
    # not from a Python counter: moving the tensor moves the correction.
    arrays, params = make_params()
    opt, ref = Adam(params, lr=0.01), RefAdam(arrays)
    grads = grad_sequence(2)
    set_grads(params, grads[0])
    opt.step()
    ref.step(grads[0], 0.01)
    for p in params:
        opt.state[p]["step"].fill_(99.0)
    ref.t = 99
    set_grads(params, grads[1])
    opt.step()
    ref.step(grads[1], 0.01)
    for p, r in zip(params, ref.params, strict=True):
        assert_close(p, r, rtol=1e-10, atol=1e-12)
