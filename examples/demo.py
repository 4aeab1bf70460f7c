"""What lucid.compile does to the seed training loop: the seed MLP (64 -> 128 -> 2, BCE, Adam)
trained eagerly and compiled from the same initial weights, side by side, one progress line per
epoch with both losses, then the time per step of each, the speedup, and the fused kernels of
the optimized graph. `make demo` runs this.

Run: python examples/demo.py [epochs] [steps_per_epoch]
"""

import sys
import time

import lucid
import lucid.nn as nn


def make(seed: int):
    lucid.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 2), nn.Sigmoid())
    optimizer = lucid.optim.Adam(model.parameters(), lr=0.01)
    criterion = nn.BCELoss()

    def train_step(x, target):
        optimizer.zero_grad()
        loss = criterion(model(x), target)
        loss.backward()
        optimizer.step()
        return loss

    return model, train_step


def main(epochs: int = 10, steps: int = 100) -> None:
    lucid.manual_seed(0)
    x = lucid.rand(32, 64)
    target = lucid.randint(0, 2, (32, 2), dtype=lucid.float32)
    _, eager_step = make(1)
    _, step = make(1)
    compiled_step = lucid.compile(step, mode="sync")

    t = time.perf_counter()
    compiled_step(x, target)
    compiled_step(x, target)  # (the optimizer's state exists from the second step on)
    compiled_step.precompile(x, target)
    print(f"compiled the training step in {time.perf_counter() - t:.1f} s "
          "(numba's disk cache makes the next run's start instant)")
    eager_step(x, target)
    eager_step(x, target)

    eager_s = compiled_s = 0.0
    for epoch in range(epochs):
        t = time.perf_counter()
        for _ in range(steps):
            eager_loss = eager_step(x, target)
        eager_loss = eager_loss.item()
        eager_s += time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(steps):
            compiled_loss = compiled_step(x, target)
        compiled_loss = compiled_loss.item()
        compiled_s += time.perf_counter() - t
        print(f"Epoch [{epoch + 1}/{epochs}]  eager loss {eager_loss:.6f}  "
              f"compiled loss {compiled_loss:.6f}")

    n = epochs * steps
    print(f"\neager:    {eager_s / n * 1e6:8.1f} us per step")
    print(f"compiled: {compiled_s / n * 1e6:8.1f} us per step ({eager_s / compiled_s:.1f}x "
          "faster)")
    graph = compiled_step.last_entry.forward  # the optimized graph (compiled_step.ir shows it)
    fused = [n for n in graph.nodes if n.body is not None]
    print(f"\nthe optimized graph: {len(graph.nodes)} nodes, {len(fused)} of them fused kernels:")
    for node in fused:
        ops = [m.op.name for m in node.body.nodes]
        shown = ", ".join(ops[:12]) + (f", ... ({len(ops)} ops)" if len(ops) > 12 else "")
        print(f"  {node.attrs['name']} ({node.attrs['kind']}): {shown}")

if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
