"""Seeing what `lucid.compile` does, on seed 001's MLP (Linear -> ReLU -> Linear -> Sigmoid,
BCELoss, Adam(lr=0.01)): a compiled training step and its IR, a compiled forward and its backward
graph, `LUCID_JIT_LOG`, `lucid_jit.explain`, a graph break, and a DOT export of a graph.

Run: python examples/inspect_ir.py [graph.dot]
(the DOT file goes to a temporary directory unless a path is given)
"""

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

import lucid
import lucid.nn as nn
import lucid_jit
from lucid_jit.ir import to_dot


class NeuralNetwork(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, output_size: int):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_size, output_size)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        out = self.fc1(x)
        out = self.relu(out)
        out = self.fc2(out)
        return self.sigmoid(out)


def section(title: str) -> None:
    print(f"\n# {title}")


def head(text: str, n: int) -> str:
    """The first n lines of a text, and how many more there are."""
    lines = text.splitlines()
    more = f"\n  ... ({len(lines) - n} more lines)" if len(lines) > n else ""
    return "\n".join(lines[:n]) + more


def main(dot_path: str | None = None) -> None:
    lucid.manual_seed(0)
    input_data = lucid.rand(32, 64)
    target = lucid.randint(0, 2, (32, 2), dtype=lucid.float32)
    model = NeuralNetwork(64, 128, 2)
    criterion = nn.BCELoss()
    optimizer = lucid.optim.Adam(model.parameters(), lr=0.01)

    section("1. @lucid.compile on a training step")

    @lucid.compile
    def train_step(x, y):
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    for epoch in range(5):
        loss = train_step(input_data, target)
        print(f"Epoch [{epoch + 1}/5], Loss: {loss.item()}")

    section("2. The training step's IR: forward, backward and Adam in one graph")
    counts = lucid_jit.explain(train_step).entries[-1].node_counts["forward"]
    print(f"traced: {counts[0][1]} nodes; optimized: {counts[-1][1]} nodes. The optimized graph's "
          "inputs are the arguments, the parameters, Adam's state and its lifted floats:")
    optimized = train_step.ir("optimized").splitlines()
    body = next(i for i, line in enumerate(optimized) if line.startswith("):"))
    print("\n".join(optimized[:8] + ["    ..."] + optimized[body:body + 12] + ["  ..."]))

    section("3. A compiled forward: its traced and optimized IR, and its backward IR")
    compiled_model = lucid.compile(model)
    optimizer.zero_grad()
    loss = criterion(compiled_model(input_data), target)
    loss.backward()  # runs the compiled backward graph
    print(f"fc2.bias.grad = {model.fc2.bias.grad}")
    for stage in ("traced", "optimized", "backward", "backward_optimized"):
        print(f"-- compiled_model.ir({stage!r})")
        print(compiled_model.ir(stage))

    section("4. LUCID_JIT_LOG: the compiler's log on stderr")
    print("LUCID_JIT_LOG=recompiles,passes,graph_breaks python train.py  (or 'all') prints why a")
    print("call retraced, the graph after each pass, and each graph break. Here, recompiles:")
    os.environ["LUCID_JIT_LOG"] = "recompiles"
    log = io.StringIO()
    with contextlib.redirect_stderr(log):
        compiled_model(lucid.rand(8, 64))  # a new batch size: a retrace
    del os.environ["LUCID_JIT_LOG"]
    print(log.getvalue().rstrip())

    section("5. lucid_jit.explain(train_step): what the compiler did (graphs left out)")
    print(lucid_jit.explain(train_step).format(graphs=False))

    section("6. A graph break: .item() inside a compiled function")

    @lucid.compile
    def step_with_check(x, y):
        loss = criterion(model(x), y)
        if loss.item() > 10.0:  # needs a number the graph only has when it runs
            print("diverging")
        return loss

    report = lucid_jit.explain(step_with_check, input_data, target)
    print(f"the call still works (eagerly): loss = {report.result.item():.4f}")
    print(report)
    try:
        lucid.compile(step_with_check.fn, fullgraph=True)(input_data, target)
    except lucid_jit.GraphBreakError as exc:
        print(f"with fullgraph=True: GraphBreakError: {exc}")

    section("7. DOT export of the compiled forward's optimized graph")
    graph = lucid_jit.explain(compiled_model).entries[0].graphs["optimized"]
    dot = to_dot(graph, "forward")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(dot_path) if dot_path else Path(tmp) / "forward.dot"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dot)
        print(f"wrote {len(dot.splitlines())} lines to {path}; render with "
              f"`dot -Tsvg {path.name} -o forward.svg`. It begins:")
        print(head(dot, 8))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
