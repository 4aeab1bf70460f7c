"""Data-parallel training with lucid.distributed: run it with several processes,

    mpiexec -n 2 .venv/bin/python examples/train_ddp.py

Each process (rank) holds a replica of the model and trains on its own share of every epoch
(DistributedSampler); DistributedDataParallel averages the gradients over the ranks in each
backward, so every replica takes the same optimizer step. The whole training step, all-reduces
included, is one compiled function. Only rank 0 prints and writes the checkpoint. Run without
mpiexec it trains alone (a job of one).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

import lucid
import lucid.distributed as dist
import lucid.nn as nn
import lucid.nn.functional as F
from lucid.nn.parallel import DistributedDataParallel
from lucid.utils.data import DataLoader, DistributedSampler, TensorDataset


def spirals(n: int, classes: int = 3, seed: int = 0):
    """A classification set every rank builds alike: points on interleaved noisy spirals."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, classes, n)
    r = rng.uniform(0.1, 1.0, n)
    angle = 4.0 * r + 2 * np.pi * label / classes + rng.normal(0, 0.15, n)
    x = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1).astype(np.float32)
    return lucid.tensor(x), lucid.tensor(label.astype(np.int64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64, help="per rank")
    parser.add_argument("--checkpoint", default=os.path.join(tempfile.gettempdir(),
                                                             "lucid_ddp_spirals.pt"))
    args = parser.parse_args()

    dist.init()
    rank, world = dist.get_rank(), dist.get_world_size()
    lucid.manual_seed(0)  # (the wrapper gives every rank rank 0's weights anyway)
    model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                          nn.Linear(64, 3))
    ddp = DistributedDataParallel(model)
    opt = lucid.optim.Adam(ddp.parameters(), lr=0.01)

    x, y = spirals(4096)
    train = TensorDataset(x[:3584], y[:3584])
    sampler = DistributedSampler(train, shuffle=True, seed=0, drop_last=True)
    loader = DataLoader(train, batch_size=args.batch_size, sampler=sampler, drop_last=True)

    @lucid.compile
    def step(xb, yb):
        loss = F.cross_entropy(ddp(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    dist.print(f"{world} rank(s), {len(loader)} steps of {args.batch_size} rows per rank "
               "per epoch")
    start = time.perf_counter()
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank
        total = lucid.zeros(1)
        for xb, yb in loader:
            total += step(xb, yb).detach()
        dist.all_reduce(total, op=dist.ReduceOp.AVG)
        dist.print(f"epoch {epoch + 1}: mean loss {float(total) / len(loader):.4f}")
    seconds = time.perf_counter() - start

    # Every rank scores its half of the held-out set; the counts are summed over the ranks.
    with lucid.no_grad():
        xt, yt = x[3584:][rank::world], y[3584:][rank::world]
        counts = lucid.tensor(np.array([(ddp(xt).argmax(1) == yt).sum().item(), len(yt)],
                                       dtype=np.int64))
    dist.all_reduce(counts)
    correct, seen = counts.tolist()
    lucid.save(ddp, args.checkpoint)  # rank 0 writes the plain model's state dict
    dist.print(f"test accuracy {correct / seen:.3f} on {seen} points; "
               f"{args.epochs} epochs in {seconds:.1f} s; checkpoint {args.checkpoint}")
    stats = dist.stats().total()
    dist.print(f"collectives: {stats['calls']} calls, {stats['bytes'] / 1e6:.2f} MB sent, "
               f"{stats['seconds']:.2f} s (rank 0)")


if __name__ == "__main__":
    main()
