"""Handwritten digits on real data that ships offline (scikit-learn's 8x8 digits, 1797 images):
a small CNN trained with a DataLoader, a compiled training step, a OneCycle learning-rate
schedule and gradient clipping; a checkpoint saved mid-way and training resumed from it in a
fresh model; the test accuracy; and the loss curve plotted to a PNG.

Run: python examples/digits.py [epochs] [output_dir]   (needs the examples extra:
pip install -e '.[examples]')
"""

import sys
from pathlib import Path

import numpy as np

import lucid
import lucid.nn as nn
import lucid.nn.functional as F
from lucid.utils.data import DataLoader, TensorDataset, random_split


class DigitNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(32 * 2 * 2, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))      # 16 x 4 x 4
        x = self.pool(F.relu(self.conv2(x)))      # 32 x 2 x 2
        return self.fc(self.drop(x.flatten(1)))


def load_digits():
    from sklearn.datasets import load_digits as sk_digits

    digits = sk_digits()
    x = (digits.images.astype(np.float32) / 16.0)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    y = digits.target.astype(np.int64)
    return TensorDataset(lucid.tensor(x), lucid.tensor(y))


def build(total_steps: int):
    model = DigitNet()
    optimizer = lucid.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-3)
    scheduler = lucid.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2,
                                                    total_steps=total_steps)

    def train_step(x, y):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss

    return model, optimizer, scheduler, lucid.compile(train_step)


def accuracy(model, loader) -> float:
    model.eval()
    correct = total = 0
    with lucid.no_grad():
        for x, y in loader:
            correct += int((model(x).argmax(1) == y).sum().item())
            total += len(y)
    model.train()
    return correct / total


def main(epochs: int = 12, out_dir: str = "examples/output") -> float:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lucid.manual_seed(0)
    train_set, test_set = random_split(load_digits(), [0.8, 0.2],
                                       generator=lucid.Generator().manual_seed(0))
    train = DataLoader(train_set, batch_size=64, shuffle=True, drop_last=True)
    test = DataLoader(test_set, batch_size=256)
    total = epochs * len(train)
    model, optimizer, scheduler, step = build(total)
    losses: list[float] = []
    checkpoint = out / "digits_checkpoint.pt"
    half = epochs // 2

    for epoch in range(epochs):
        if epoch == half and half:
            # save, then carry on in a fresh model, optimizer and schedule restored from disk
            lucid.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "epoch": epoch,
                        "losses": losses}, checkpoint)
            model, optimizer, scheduler, step = build(total)
            state = lucid.load(checkpoint)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            print(f"checkpoint saved and reloaded at epoch {state['epoch']} "
                  f"({checkpoint.stat().st_size} bytes)")
        epoch_losses = []
        for x, y in train:
            epoch_losses.append(step(x, y).item())
            scheduler.step()
        losses += epoch_losses
        print(f"Epoch [{epoch + 1}/{epochs}], loss {np.mean(epoch_losses):.4f}, "
              f"lr {scheduler.get_last_lr()[0]:.5f}, test accuracy {accuracy(model, test):.3f}")

    acc = accuracy(model, test)
    print(f"test accuracy: {acc:.3f} on {len(test_set)} held-out digits")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plot)")
        return acc
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(losses, lw=0.8, label="training step")
    ax.plot(np.convolve(losses, np.ones(20) / 20, mode="valid"), lw=2, label="mean of 20")
    ax.axvline(half * len(train), color="gray", ls="--", lw=1, label="checkpoint reloaded")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(f"digits: test accuracy {acc:.3f}")
    fig.tight_layout()
    fig.savefig(out / "digits_loss.png", dpi=120)
    print(f"loss curve: {out / 'digits_loss.png'}")
    return acc


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 12,
         sys.argv[2] if len(sys.argv) > 2 else "examples/output")
