"""The text of an explain report, and the descriptions it is made of (signatures, guards,
write-backs), one line each, for people.

A report reads top down: a summary line, the cache entries as a table, graph breaks, recompiles;
then one block per entry: why it was traced, node counts per pass, compile time per stage, guards,
write-backs, what it returns, and its graphs.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from lucid import dtypes
from lucid_jit.ir.graph import short
from lucid_jit.ir.printer import format_graph
from lucid_jit.tracing import pytree
from lucid_jit.tracing.capture import AliasLeaf, ConstLeaf, ValueLeaf, arg_name
from lucid_jit.tracing.sources import ObjSource, OptStateSource, SlotInput

if TYPE_CHECKING:
    from lucid_jit.explain import ExplainReport

_SYM = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_GRAPH_TITLES = {"traced": "traced graph", "optimized": "optimized graph",
                 "backward": "traced backward graph",
                 "backward_optimized": "optimized backward graph"}


def format_report(report: ExplainReport, graphs: bool = True) -> str:
    out: list[str] = [f"=== lucid_jit.explain: {report.name} ==="]
    n_eager = sum(e.kind == "eager" for e in report.entries)
    out.append(f"{plural(report.calls, 'call')}, {plural(len(report.entries), 'cache entry')} "
               f"({len(report.entries) - n_eager} compiled, {n_eager} eager), "
               f"{plural(len(report.recompiles), 'recompile')}, "
               f"{plural(len(report.graph_breaks), 'graph break')}")
    runs_on = "" if report.backend_runs_on == report.backend else \
        f" (runs on the {report.backend_runs_on} backend)"
    out.append(f"backend {report.backend}{runs_on}; pass pipeline {report.pipeline!r}; "
               f"cache limit {report.cache_limit}" + ("; fullgraph" if report.fullgraph else ""))
    if report.entries and len(report.entries) >= report.cache_limit:
        out.append("the cache is full: calls with a new input signature run eagerly")
    if not report.entries:
        out.append("not called yet: nothing was traced" if not report.calls else
                   "no cache entry: every trace raised (with fullgraph=True, a graph break "
                   "raises GraphBreakError)")
        return "\n".join(out)

    out += ["", "cache entries"]
    out += _indent(_table(["#", "kind", "forward", "backward", "compile", "signature"],
                          [_entry_row(e) for e in report.entries], right={2, 3, 4}))

    out += ["", "graph breaks" + ("" if report.graph_breaks else ": none")]
    for gb in report.graph_breaks:
        out.append(f"  entry {gb.entry}, at {gb.location}: {gb.reason}")

    out += ["", "recompiles" + ("" if report.recompiles else ": none")]
    for i, (_, reasons) in enumerate(report.recompiles):
        out.append(f"  entry {i + 1} was traced because")
        out += [f"    {r}" for r in reasons]

    for entry in report.entries:
        out.append("")
        out += _format_entry(entry, graphs)
    return "\n".join(out)


def _format_entry(e, graphs: bool) -> list[str]:
    kind = "compiled" if e.kind == "compiled" else "runs eagerly"
    if e.index == 0:
        why = "the first call"
    else:
        why = f"recompile {e.index} (the reasons are under 'recompiles' above)"
    out = [f"--- entry {e.index}: {kind}, for {e.signature} ---", f"traced on: {why}"]
    if e.kind == "eager":
        gb = e.graph_break
        out += [f"graph break at {gb.location}: {gb.reason}",
                "  calls with this input signature run the Python function eagerly "
                "(lucid.compile(fullgraph=True) raises instead)"]
        out += _format_guards(e)
        return out
    out += ["", "node counts"]
    out += _indent(_node_table(e))
    if e.raw is not None:
        out += _format_fusion(e.raw)
    out += ["", "compile time"]
    rows = [[name, _seconds(seconds)] for name, seconds in e.times]
    rows.append(["total", _seconds(e.compile_seconds)])
    out += _indent(_table(None, rows, right={1}))
    if e.first_calls:
        out += ["", "first calls (wall time; later calls run the compiled code as it is)"]
        out += _indent(_table(None, [[name, _seconds(s)] for name, s in e.first_calls],
                              right={1}))
    out.append("")
    out += _format_guards(e)
    out += ["", f"write-backs after each call ({len(e.write_backs)})"
            + ("" if e.write_backs else ": none")]
    out += [f"  {w}" for w in e.write_backs]
    out += ["", "returns"]
    out += [f"  {r}" for r in e.returns]
    if graphs:
        for stage in ("traced", "optimized", "backward", "backward_optimized"):
            g = e.graphs.get(stage)
            out.append("")
            if g is None:
                out.append(f"{_GRAPH_TITLES[stage]}: none ({_why_no_backward(e)})")
                continue
            out.append(f"{_GRAPH_TITLES[stage]} ({plural(len(g), 'node')})")
            out += _indent(format_graph(g).splitlines())
    return out


def _format_fusion(entry) -> list[str]:
    """The fused groups and the edges left unfused, when the pipeline fused anything."""
    from lucid_jit.passes import fusion_report

    out = []
    for part, graph in (("forward", entry.forward), ("backward", entry.backward)):
        lines = fusion_report(graph) if graph is not None else []
        if lines:
            out += ["", f"fusion ({part})"] + [f"  {line}" for line in lines]
    return out


def _why_no_backward(e) -> str:
    if e.raw is not None and any(isinstance(leaf, ValueLeaf) and leaf.grad == "freed"
                                 for leaf in e.raw.out_leaves):
        return ("no output needs a gradient; the backward() call inside the function is part "
                "of the forward graph")
    return "no output needs a gradient"


def _format_guards(e) -> list[str]:
    out = [f"guards ({len(e.guards)}): the entry runs only while all of these hold"
           if e.guards else "guards: none beyond the input signature"]
    width = max((len(k) for k, _ in e.guards), default=0)
    out += [f"  {kind.ljust(width)}  {text}" for kind, text in e.guards]
    return out


def _entry_row(e) -> list[str]:
    if e.kind == "eager":
        return [str(e.index), "eager", "-", "-", "-", e.signature]

    def counts(part):
        c = e.node_counts.get(part)
        return f"{c[0][1]} -> {c[-1][1]}" if c else "-"

    return [str(e.index), "compiled", counts("forward"), counts("backward"),
            _seconds(e.compile_seconds), e.signature]


def _node_table(e) -> list[str]:
    fwd, bwd = e.node_counts.get("forward", []), e.node_counts.get("backward", [])
    fsec, bsec = e.pass_seconds.get("forward", []), e.pass_seconds.get("backward", [])
    rows = []
    for i in range(max(len(fwd), len(bwd))):
        stage = (fwd or bwd)[i][0]
        is_pass = 0 < i < len(fwd or bwd) - 1
        label = f"{i}. {stage}" if is_pass else stage
        row = [label]
        for counts, seconds in ((fwd, fsec), (bwd, bsec)):
            if not counts:
                row += ["-", ""]
                continue
            n = counts[i][1]
            changed = is_pass and n != counts[i - 1][1]
            row.append(f"{n}{' *' if changed else '  '}")
            row.append(f"{seconds[i - 1] * 1e3:.2f} ms" if is_pass else "")
        rows.append(row)
    lines = _table(["stage", "forward", "", "backward", ""], rows, right={1, 2, 3, 4})
    return lines + ["(* the pass changed the node count)"]


# ----------------------------------------------------------------------------- descriptions


def describe_key(key, fn) -> str:
    """A cache key as `x: f32[32,64], lr: float (lifted)`, plus grad mode when it is off."""
    try:
        spec, fields, grad, shared, default_float = key
        names = [arg_name(p, fn) for p in _leaf_paths(spec, "")]
        parts = [f"{name}: {_key_field(f)}" for name, f in zip(names, fields, strict=True)]
    except Exception:  # a key of a shape this report does not know: show it raw
        return repr(key)
    text = ", ".join(parts) if parts else "no arguments"
    if shared is not None:
        text += f"; tensor arguments sharing an array {shared}"
    if default_float != dtypes.float32:
        text += f"; default dtype {default_float}"
    return text if grad else text + "; grad mode off"


def _leaf_paths(spec, path: str) -> list[str]:
    """The leaves' paths of a pytree structure, as `pytree.flatten` names them."""
    if spec is pytree.LEAF:
        return [path or "output"]
    t = spec[0]
    if t is tuple or t is list:
        return [p for i, s in enumerate(spec[1]) for p in _leaf_paths(s, f"{path}[{i}]")]
    if t is dict:
        return [p for k, s in zip(spec[1], spec[2], strict=True)
                for p in _leaf_paths(s, f"{path}[{k!r}]")]
    return [p for f, s in zip(t._fields, spec[1], strict=True)
            for p in _leaf_paths(s, f"{path}.{f}")]


def _key_field(part) -> str:
    if part is float:
        return "float (lifted)"
    if isinstance(part, tuple) and len(part) == 3 and isinstance(part[0], tuple):
        shape, dtype, requires_grad = part
        return _aval(shape, dtype) + (" requires_grad" if requires_grad else "")
    if isinstance(part, tuple) and part and part[0] == "object":
        return "an object (by identity)"
    if isinstance(part, tuple) and len(part) == 2 and isinstance(part[0], type):
        return repr(part[1])
    return repr(part)


def _aval(shape, dtype) -> str:
    return f"{short(dtype)}[{','.join(str(s) for s in shape)}]"


def describe_guards(entry) -> list[tuple[str, str]]:
    """Every check an entry makes before it runs, as (kind, text): graph inputs (source and
    expected shape, dtype, requires_grad), lifted floats, comparisons on them, the named guards
    (`.grad is None`, optimizer structure), and modules."""
    out: list[tuple[str, str]] = []  # duplicates are dropped at the end
    slot_sources = list(getattr(entry, "slot_sources", ()))
    traced_slots = list(getattr(entry, "_traced_slots", ()))
    inputs = list(zip(getattr(entry, "input_sources", ()), getattr(entry, "input_checks", ()),
                      strict=True))
    for k, (src, check) in enumerate(inputs):
        if isinstance(src, SlotInput):
            out.append(("input", f"%{k} {slot_sources[src.slot].describe()}: f64[] "
                                 "(a lifted float, any value)"))
        elif check is None:
            out.append(("input", f"%{k} {src.describe()}"))
        else:
            shape, dtype, requires_grad = check
            rg = " requires_grad" if requires_grad else ""
            out.append(("input", f"%{k} {src.describe()}: {_aval(shape, dtype)}{rg}"))
    if len(inputs) > 1:
        out.append(("input", "no two graph inputs share an array"))
    for k, alt in getattr(entry, "alias_checks", ()):
        out.append(("alias", f"{alt.describe()} is the same array as input %{k}"))
    for i, src in enumerate(slot_sources):
        value = f"{traced_slots[i]!r}" if i < len(traced_slots) else "?"
        out.append(("lifted float", f"{src.describe()} (traced as {value}; read at every call)"))
    for g in getattr(entry, "float_guards", ()):
        expr = g.expr.describe(slot_sources)
        if g.op == "pinned":
            out.append(("float", f"{expr} == {g.other!r} (the function used the exact value)"))
        else:
            out.append(("float", f"({expr} {_SYM[g.op]} {g.other!r}) is {g.result}"))
    for g in getattr(entry, "guards", ()):
        out.append(("guard", _describe_guard(g.name, g.expected)))
    names = _module_names(entry)
    for m, fp in getattr(entry, "modules", ()):
        attrs = dict(fp[0]) if fp and isinstance(fp[0], tuple) else {}
        name = names.get(id(m))
        label = f"{name} ({type(m).__name__})" if name else type(m).__name__
        training = f"training={attrs['training']}, " if "training" in attrs else ""
        out.append(("module", f"{label}: {training}attributes, parameters and submodules "
                              "as traced"))
    return list(dict.fromkeys(out))


def _describe_guard(name: str, expected) -> str:
    if name.endswith(" is None") and isinstance(expected, bool):
        return name if expected else name[: -len(" is None")] + " is not None"
    opt, _, what = name.rpartition(": ")
    if what == "parameters" and isinstance(expected, tuple):
        n = sum(len(g) for g in expected)
        return f"{opt}: the same {n} parameter tensors in {plural(len(expected), 'group')}"
    if what == "state keys" and isinstance(expected, tuple):
        kinds = sorted(set(expected), key=str)
        if len(kinds) == 1:
            keys = ", ".join(kinds[0]) if kinds[0] else "none yet"
            return f"{opt}: state keys {keys} (each of {len(expected)} parameters)"
        return f"{opt}: state keys {expected!r}"
    if what == "non-float settings" and isinstance(expected, tuple):
        text = " | ".join(", ".join(f"{k}={v!r}" for k, v in g) for g in expected)
        return f"{opt}: settings {text or 'none'}"
    text = repr(expected)
    return f"{name} == {text if len(text) <= 60 else text[:57] + '...'}"


def describe_effects(entry) -> list[str]:
    """The write-backs an entry makes after each call, one line each."""
    params = _param_names(entry)
    out = []
    for eff in getattr(entry, "effects", ()):
        src = eff.source
        if isinstance(src, OptStateSource) and not src.name.endswith("]"):
            # A state entry the step created: its source names the optimizer only.
            owner = params.get(id(src.param), "a parameter")
            value = "None" if eff.index is None else f"output {eff.index}"
            out.append(f"set {src.name}.state[{owner}][{src.key!r}] <- {value}")
        else:
            out.append(eff.describe())
    return out


def describe_returns(entry) -> list[str]:
    """What each returned leaf is: a graph output (and how its gradient flows), a constant, or an
    object the function returned as is."""
    out = []
    for leaf in getattr(entry, "out_leaves", ()):
        if isinstance(leaf, ConstLeaf):
            out.append(f"the constant {leaf.value!r}")
        elif isinstance(leaf, AliasLeaf):
            out.append(f"{leaf.source.describe()} itself (not a graph output)")
        else:
            how = {"none": "", "leaf": ", a leaf that requires grad",
                   "freed": ", its graph already freed by backward() in the function",
                   "backward": ", differentiable: backward runs the backward graph "
                               f"(grad_output{leaf.diff})"}[leaf.grad]
            out.append(f"output {leaf.index}{how}")
    return out or ["nothing"]


def _param_names(entry) -> dict[int, str]:
    """id(tensor) -> name, for the tensors an entry captured by reference."""
    names = {}
    for src in getattr(entry, "input_sources", ()):
        if isinstance(src, ObjSource):
            names.setdefault(id(src.obj), src.name)
    return names


def _module_names(entry) -> dict[int, str]:
    """id(module) -> a name like `model.0`, found from the names of the parameters it captured."""
    params = _param_names(entry)
    names: dict[int, str] = {}
    modules = [m for m, _ in getattr(entry, "modules", ())]
    for m in modules:
        for pname, p in m.named_parameters():
            full = params.get(id(p))
            if full is not None and full.endswith("." + pname):
                names[id(m)] = full[: -len(pname) - 1]
                break
    for m in modules:
        base = names.get(id(m))
        if base is not None:
            for prefix, sub in m.named_modules():
                if prefix:
                    names.setdefault(id(sub), f"{base}.{prefix}")
    return names


# ----------------------------------------------------------------------------- text helpers


def _seconds(s: float) -> str:
    return f"{s * 1e3:.2f} ms" if s < 1.0 else f"{s:.2f} s"


def plural(count: int, noun: str) -> str:
    """`1 call`, `2 calls`, `2 cache entries`."""
    if count == 1:
        return f"1 {noun}"
    word = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{count} {word}"


def _indent(lines: list[str], by: str = "  ") -> list[str]:
    return [by + line if line else line for line in lines]


def _table(header: list[str] | None, rows: list[list[str]],
           right: Collection[int] = ()) -> list[str]:
    """Columns padded to their widest cell; `right` columns are right-aligned; the last column
    is never padded (it may be long)."""
    every = ([header] if header else []) + rows
    if not every:
        return []
    widths = [max(len(r[i]) for r in every) for i in range(len(every[0]))]

    def line(r):
        cells = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        cells[-1] = r[-1].rjust(widths[-1]) if len(r) - 1 in right else r[-1]
        return "  ".join(cells).rstrip()

    return [line(r) for r in every]
