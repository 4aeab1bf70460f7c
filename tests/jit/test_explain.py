"""`lucid_jit.explain` and `python -m lucid_jit explain`: every section of the report, with values
that match the compiled function's own entries (graph breaks with their reason and line, node counts
that are the graphs' lengths, guards, write-backs, recompile reasons, compile stages); the CLI on a
small script; bad usage exiting 2."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid_jit
from lucid_jit.api import CompiledFunction
from lucid_jit.explain import ExplainReport, record_compiled

ROOT = Path(__file__).resolve().parents[2]


def seed_mlp():
    """Seed 001's model, loss, optimizer and a batch."""
    lucid.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 2), nn.Sigmoid())
    x = lucid.rand(32, 64)
    y = lucid.randint(0, 2, (32, 2), dtype=lucid.float32)
    return model, nn.BCELoss(), lucid.optim.Adam(model.parameters(), lr=0.01), x, y


@pytest.fixture(scope="module")
def train_report() -> ExplainReport:
    model, criterion, opt, x, y = seed_mlp()

    @lucid.compile
    def train_step(x, y):
        loss = criterion(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    for _ in range(3):
        train_step(x, y)
    return lucid_jit.explain(train_step)


@pytest.fixture(scope="module")
def forward_report() -> ExplainReport:
    model, criterion, _, x, y = seed_mlp()
    report = lucid_jit.explain(lucid.compile(model), x)
    criterion(report.result, y).backward()
    return report


def line_of(fn, text: str) -> int:
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


# ----------------------------------------------------------------------------- sections


def test_the_report_has_every_section(train_report, forward_report):
    text = str(train_report)
    assert text.startswith("=== lucid_jit.explain: ")
    assert "train_step ===\n3 calls, 2 cache entries (2 compiled, 0 eager), 1 recompile, " \
           "0 graph breaks\n" in text
    for heading in ("cache entries", "graph breaks: none", "recompiles", "--- entry 0: compiled",
                    "--- entry 1: compiled", "node counts", "compile time", "guards (",
                    "write-backs after each call (20)", "returns", "traced graph (",
                    "optimized graph ("):
        assert heading in text, heading
    fwd = str(forward_report)
    assert re.search(r"\ntraced backward graph \(26 nodes\)\n  graph\(\n      %0: f32\[32,2\] "
                     r"grad_output0,", fwd)
    assert "\noptimized backward graph (" in fwd
    assert "  output 0, differentiable: backward runs the backward graph (grad_output0)" in fwd
    # The training step calls backward() itself: its backward is part of the forward graph.
    assert "traced backward graph: none (no output needs a gradient; the backward() call " \
           "inside the function is part of the forward graph)" in text


def test_format_without_graphs_keeps_the_summaries(train_report):
    short = train_report.format(graphs=False)
    assert "traced graph" not in short and "%0:" not in short
    assert "node counts" in short and "guards (" in short
    assert len(short.splitlines()) < len(str(train_report).splitlines()) / 2


def test_cache_entry_table_has_a_row_per_entry(train_report):
    table = str(train_report).split("cache entries\n")[1].split("\n\n")[0].splitlines()
    assert table[0].split() == ["#", "kind", "forward", "backward", "compile", "signature"]
    for row, entry in zip(table[1:], train_report.entries, strict=True):
        counts = entry.node_counts["forward"]
        assert re.fullmatch(rf"  {entry.index}  compiled +{counts[0][1]} -> {counts[-1][1]} +- +"
                            r"[0-9.]+ m?s  x: f32\[32,64\], y: f32\[32,2\]", row), row


# ----------------------------------------------------------------------------- graph breaks


def test_graph_breaks_give_the_reason_and_the_users_line():
    @lucid.compile
    def logs_the_loss(x):
        loss = (x * 2.0).sum()
        print_me = loss.item()  # the graph break
        return loss + print_me

    x = lucid.rand(4, 3)
    report = lucid_jit.explain(logs_the_loss, x)
    np.testing.assert_allclose(report.result.item(), 4 * x.sum().item(), rtol=1e-5)
    (gb,) = report.graph_breaks
    where = f"test_explain.py:{line_of(logs_the_loss, 'print_me = loss.item()')}"
    assert gb.location == where
    assert gb.reason.startswith("item() needs a tensor's value")
    assert gb.entry == 0 and gb.signature == "x: f32[4,3]"
    text = str(report)
    assert f"graph breaks\n  entry 0, at {where}: item() needs a tensor's value" in text
    assert "--- entry 0: runs eagerly, for x: f32[4,3] ---" in text
    assert f"graph break at {where}: item() needs" in text
    assert report.entries[0].kind == "eager" and report.node_counts == {}


def test_a_graph_break_in_one_signature_only():
    @lucid.compile
    def maybe_item(x, check):
        return x.sum().item() if check else x.sum()

    x = lucid.rand(3)
    maybe_item(x, False)
    report = lucid_jit.explain(maybe_item, x, True)
    assert [e.kind for e in report.entries] == ["compiled", "eager"]
    assert [gb.entry for gb in report.graph_breaks] == [1]
    assert report.graph_breaks[0].signature == "x: f32[3], check: True"
    assert [reasons for _, reasons in report.recompiles] == [["argument 1: False -> True"]]
    assert "recompiles\n  entry 1 was traced because\n    argument 1: False -> True\n" \
        in str(report)


# ----------------------------------------------------------------------------- node counts


@pytest.mark.parametrize("which", ["train", "forward"])
def test_node_counts_are_the_graphs_lengths(which, train_report, forward_report):
    report = train_report if which == "train" else forward_report
    text = str(report)
    for e in report.entries:
        for part, traced, optimized in (("forward", "traced", "optimized"),
                                        ("backward", "backward", "backward_optimized")):
            counts = e.node_counts[part]
            if e.graphs[traced] is None:
                assert counts == []
                continue
            assert counts[0] == ("traced", len(e.graphs[traced]))
            assert counts[-1] == ("optimized", len(e.graphs[optimized]))
            stats = e.raw.pass_stats[part]
            assert [n for _, n in counts[1:-1]] == [s.nodes_after for s in stats]
            assert [s.name for s in stats] == [name for name, _ in counts[1:-1]]
        assert report.node_counts[e.index] is e.node_counts
    # The printed graphs have as many node lines as their titles say.
    for title, n, body in re.findall(r"\n((?:traced|optimized)(?: backward)? graph) \((\d+) "
                                     r"nodes?\)\n((?:  .*\n?)+)", text):
        nodes = [line for line in body.splitlines() if re.match(r"    %\d+: .* = ", line)]
        assert len(nodes) == int(n), title


def test_node_count_table_rows(forward_report):
    e = forward_report.entries[0]
    table = str(forward_report).split("node counts\n")[1].split("\n\n")[0].splitlines()
    assert table[0].split() == ["stage", "forward", "backward"]
    assert table[1].split() == ["traced", str(len(e.graphs["traced"])),
                                str(len(e.graphs["backward"]))]
    assert table[-2].split() == ["optimized", str(len(e.graphs["optimized"])),
                                 str(len(e.graphs["backward_optimized"]))]
    passes = table[2:-2]
    assert [row.split()[1] for row in passes] == [s.name for s in e.raw.pass_stats["forward"]]
    # A star marks a pass that changed the count: not lower_conv (no convolution here), the
    # backward's first simplify (26 -> 24).
    assert re.fullmatch(r"  1\. lower_conv +10 +[0-9.]+ ms +26 +[0-9.]+ ms", passes[0])
    assert re.fullmatch(r"  2\. simplify +10 +[0-9.]+ ms +24 \* +[0-9.]+ ms", passes[1])


# ----------------------------------------------------------------------------- guards


def test_guards_list_each_input_source_with_shape_dtype_and_requires_grad(train_report):
    e0, e1 = train_report.entries
    g0 = e0.guards
    assert ("input", "%0 model.0.weight: f32[128,64] requires_grad") in g0
    assert ("input", "%1 x: f32[32,64]") in g0
    assert ("input", "%5 y: f32[32,2]") in g0
    assert ("input", "%8 opt.param_groups[0]['lr']: f64[] (a lifted float, any value)") in g0
    assert ("lifted float", "opt.param_groups[0]['lr'] (traced as 0.01; read at every call)") \
        in g0
    assert ("float", "(opt.param_groups[0]['weight_decay'] != 0.0) is False") in g0
    assert ("guard", "model.0.weight.grad is None") in g0
    assert ("guard", "opt: state keys none yet (each of 4 parameters)") in g0
    assert ("module", "model.0 (Linear): training=True, attributes, parameters and submodules "
                      "as traced") in g0
    n_inputs = len(e0.graphs["traced"].inputs)
    assert sum(kind == "input" and text.startswith("%") for kind, text in g0) == n_inputs
    # After the first step the grads exist and Adam has state: the second entry says so.
    assert ("guard", "model.0.weight.grad is not None") in e1.guards
    assert ("input", "%8 opt.state[model.0.weight]['exp_avg']: f32[128,64]") in e1.guards
    text = str(train_report)
    assert "  input         %0 model.0.weight: f32[128,64] requires_grad\n" in text


def test_guards_on_a_lifted_float_argument():
    @lucid.compile
    def scaled(x, lr):
        if lr > 0.5:
            return x * lr
        return x * int(lr * 10)

    x = lucid.rand(2, 2)
    scaled(x, 0.1)
    report = lucid_jit.explain(scaled, x, 0.7)
    g0, g1 = (e.guards for e in report.entries)
    assert ("lifted float", "lr (traced as 0.1; read at every call)") in g0
    assert ("float", "(lr > 0.5) is False") in g0
    assert ("float", "(lr * 10) == 1.0 (the function used the exact value)") in g0
    assert ("input", "%0 lr: f64[] (a lifted float, any value)") in g1
    assert ("float", "(lr > 0.5) is True") in g1
    assert report.entries[0].signature == "x: f32[2,2], lr: float (lifted)"
    reasons = report.recompiles[0][1]
    assert "guard failed: lifted float lr: 0.1 -> 0.7 (`> 0.5` was False)" in reasons


# ----------------------------------------------------------------------------- the rest


def test_write_backs_name_their_target_and_output(train_report):
    wb = train_report.entries[0].write_backs
    assert wb[:2] == ["write into model.0.weight <- output 1",
                      "set model.0.weight.grad <- output 2"]
    # Adam's state is created by the first step, written into by later ones.
    assert "set opt.state[model.0.weight]['exp_avg'] <- output 10" in wb
    assert "write into opt.state[model.0.weight]['exp_avg'] <- output 10" \
        in train_report.entries[1].write_backs
    assert train_report.entries[0].returns == [
        "output 0, its graph already freed by backward() in the function"]


def test_recompile_reasons(train_report):
    ((name, reasons),) = train_report.recompiles
    assert name.endswith("train_step")
    assert "guard failed: model.0.weight.grad is None: True -> False" in reasons
    assert train_report.entries[1].why == reasons
    text = str(train_report)
    assert "recompiles\n  entry 1 was traced because\n    guard failed: model.0.weight.grad " \
           "is None: True -> False\n" in text
    assert "traced on: recompile 1 (the reasons are under 'recompiles' above)" in text


def test_compile_time_per_stage(forward_report):
    (e,) = forward_report.entries
    names = [name for name, _ in e.times]
    assert names[:3] == ["trace", "autodiff", "passes"] and names[3].startswith("backend")
    assert all(s >= 0 for _, s in e.times)
    assert forward_report.compile_times[0] == e.times
    assert e.compile_seconds == pytest.approx(sum(s for _, s in e.times))
    assert all(name.startswith("numba: forward, call ") for name in names[4:])
    block = str(forward_report).split("compile time\n")[1].split("\n\n")[0]
    assert [line.split()[0] for line in block.splitlines()] == \
        ["trace", "autodiff", "passes", "backend"] + ["numba:"] * (len(names) - 4) + ["total"]
    assert re.search(r"  total +\d+\.\d\d m?s$", block)


def test_explain_of_a_plain_function_compiles_and_calls_it():
    report = lucid_jit.explain(lambda a, b: (a * b).relu(), lucid.ones(3), lucid.full((3,), -2.0))
    assert report.result.tolist() == [0.0, 0.0, 0.0]
    assert report.calls == 1 and [e.kind for e in report.entries] == ["compiled"]
    assert report.entries[0].signature == "a: f32[3], b: f32[3]"


def test_explain_before_any_call():
    report = lucid_jit.explain(lucid.compile(lambda x: x + 1))
    assert report.entries == [] and report.graph_breaks == [] and report.recompiles == []
    assert str(report).endswith("not called yet: nothing was traced")


def test_explain_after_a_fullgraph_break_raised():
    strict = lucid.compile(lambda x: x.sum().item(), fullgraph=True)
    with pytest.raises(lucid_jit.GraphBreakError):
        strict(lucid.ones(2))
    text = str(lucid_jit.explain(strict))
    assert "1 call, 0 cache entries" in text and "; fullgraph\n" in text
    assert text.endswith("no cache entry: every trace raised (with fullgraph=True, a graph break "
                         "raises GraphBreakError)")


def test_record_compiled_collects_and_then_restores_the_constructor():
    original = CompiledFunction.__init__
    with record_compiled() as outer:
        f = lucid.compile(lambda x: x)
        with record_compiled() as inner:
            m = lucid.compile(nn.ReLU())
        assert CompiledFunction.__init__ is not original
    assert CompiledFunction.__init__ is original
    assert outer == [f, m._compiled_forward] and inner == [m._compiled_forward]


# ----------------------------------------------------------------------------- the CLI


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LUCID_JIT_LOG", None)
    return subprocess.run([sys.executable, "-m", "lucid_jit", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


SCRIPT = '''
import sys

import lucid
from helper import scale  # the script's own directory is on sys.path

@lucid.compile
def step(x):
    return (x * scale).relu().sum()

@lucid.compile
def never_called(x):
    return x

def main():
    for n in (3, 3, 5):
        print("value", step(lucid.ones(n)).item())
    @lucid.compile
    def local(x):
        return x.item()  # a graph break
    local(lucid.ones(1))
    print("argv", sys.argv[1:])
    sys.exit(int(sys.argv[2]))

if __name__ == "__main__":
    main()
'''


def test_cli_runs_a_script_and_prints_each_called_functions_report(tmp_path):
    (tmp_path / "helper.py").write_text("scale = 2.0\n")
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(SCRIPT))
    proc = run_cli("explain", str(script), "--flag", "0")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "value 6.0\nvalue 6.0\nvalue 10.0\nargv ['--flag', '0']\n" in out
    assert "##### lucid_jit explain prog.py: 2 compiled functions called (1 never called: " \
           "never_called)" in out
    assert "=== lucid_jit.explain: step ===\n3 calls, 2 cache entries (2 compiled, 0 eager), " \
           "1 recompile, 0 graph breaks" in out
    assert "argument 0: float32[3] -> float32[5]" in out
    assert "traced graph (" in out
    assert re.search(r"%\d+: f32\[3\] = relu %\d+", out)
    assert "=== lucid_jit.explain: main.<locals>.local ===" in out
    line = textwrap.dedent(SCRIPT).splitlines().index("        return x.item()  # a graph break")
    assert f"graph break at prog.py:{line + 1}: item() needs a tensor's value" in out
    assert "never_called ===" not in out


def test_cli_keeps_the_scripts_exit_status_and_can_leave_graphs_out(tmp_path):
    (tmp_path / "helper.py").write_text("scale = 1.0\n")
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(SCRIPT))
    proc = run_cli("explain", "--no-graphs", str(script), "-x", "3", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert "the script exited with status 3" in proc.stdout
    assert "node counts" in proc.stdout and "traced graph" not in proc.stdout


def test_cli_reports_even_when_the_script_raises(tmp_path):
    script = tmp_path / "boom.py"
    script.write_text("import lucid\nf = lucid.compile(lambda x: x * 2)\nf(lucid.ones(2))\n"
                      "raise RuntimeError('boom')\n")
    proc = run_cli("explain", str(script))
    assert proc.returncode == 1
    assert "RuntimeError: boom" in proc.stderr
    assert "=== lucid_jit.explain: <lambda> ===" in proc.stdout


@pytest.mark.parametrize("args", [(), ("explain",), ("frobnicate", "x.py"),
                                  ("explain", "no/such/script.py"), ("explain", "--bogus", "x.py")])
def test_cli_bad_usage_exits_2_with_usage_on_stderr(args):
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: python -m lucid_jit")
    assert proc.stdout == ""


# ----------------------------------------------------------------------------- numba's share


def _unique_program(x):
    # An op mix no other test compiles: its kernels and native tier are new to this process.
    return (((x * 2.5).sin() + x.abs().sqrt()).tanh() * x.cos()).amax(dim=-1)


def test_compile_times_include_numba_and_the_first_calls(monkeypatch, tmp_path, capfd):
    from lucid_jit.codegen import compiletime

    monkeypatch.setenv("LUCID_JIT_CACHE_DIR", str(tmp_path))  # nothing on disk
    monkeypatch.setenv("LUCID_JIT_LOG", "compile")
    f = lucid.compile(_unique_program)
    x = lucid.randn(3, 4, 5, dtype=lucid.float64)
    seconds0, count0 = compiletime.numba_totals()
    for _ in range(4):  # calls 1-2 on the Python tier, 3 compiles the native tier (tests: 3)
        f(x)
    seconds1, count1 = compiletime.numba_totals()
    (e,) = lucid_jit.explain(f).entries
    numba_rows = [(name, s) for name, s in e.times if name.startswith("numba:")]
    assert count1 > count0 and numba_rows
    # Every numba compile of these calls is in the report, and nothing else.
    assert sum(s for _, s in numba_rows) == pytest.approx(seconds1 - seconds0, rel=1e-6)
    assert any("(native tier): 1 numba compile" in name for name, _ in numba_rows)
    assert e.compile_seconds >= seconds1 - seconds0
    calls = [name for name, _ in e.first_calls]
    assert calls == ["call 1 (traced, compiled, ran)", "forward call 2 (python tier)",
                     "forward call 3 (native tier)"]
    text = str(lucid_jit.explain(f))
    assert "first calls (wall time" in text and "numba: forward, call 3 (native tier)" in text
    err = capfd.readouterr().err
    assert re.search(r"\[lucid_jit:compile\] _unique_program \(entry 0\) forward: compiling the "
                     r"native tier: 1 njit function, \d+ lines", err), err
    assert re.search(r"forward, call 3 \(native tier\): 1 numba compile: \d+\.\d\d s compiling",
                     err), err


def test_a_long_compile_is_mentioned_once(monkeypatch, tmp_path):
    from lucid_jit.codegen import compiletime

    monkeypatch.setenv("LUCID_JIT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("LUCID_JIT_LOG", raising=False)
    monkeypatch.setattr(compiletime, "LONG_COMPILE_SECONDS", 0.0)
    monkeypatch.setitem(compiletime._STATE, "warned", False)
    f = lucid.compile(lambda x: _unique_program(x) * 3.0)
    x = lucid.randn(2, 3, 4, dtype=lucid.float64)
    with pytest.warns(compiletime.LongCompileWarning) as record:
        for _ in range(4):
            f(x)
    assert len(record) == 1  # once per process, though the native tier compiled again later
    assert re.search(r"forward call \d \((python|native) tier\), spent \d+\.\d s compiling",
                     str(record[0].message))
    assert record[0].filename == __file__
