"""Seed 003's activation plots: ReLU, LeakyReLU, GELU, Sigmoid, Tanh and ELU with their
derivatives over linspace(-2, 2, 1000), all in one PNG. Each derivative comes from autograd
(backward of the sum), as the seed's `visualize_activation` computes it.

Run: python examples/plot_activations.py [output.png]    (default: examples/activations.png)
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402

import lucid  # noqa: E402
import lucid.nn as nn  # noqa: E402

DEFAULT_PATH = Path(__file__).resolve().parent / "activations.png"


def visualize_activation(x: lucid.Tensor, acti: nn.Module) -> dict:
    """The activation's values and derivative on the domain of x."""
    y = acti(x)
    x = x.detach().clone().requires_grad_()
    acti(x).sum().backward()  # d(sum y)/dx_i = y'(x_i): elementwise activations
    return {"x": x.detach().numpy(), "y": y.detach().numpy(), "yp": x.grad.numpy()}


def main(path: Path = DEFAULT_PATH) -> None:
    activations = {
        "ReLU": nn.ReLU(),
        "LeakyReLU(0.1)": nn.LeakyReLU(negative_slope=0.1),
        "GELU": nn.GELU(),
        "Sigmoid": nn.Sigmoid(),
        "Tanh": nn.Tanh(),
        "ELU": nn.ELU(),
    }
    x = lucid.linspace(-2, 2, 1000)
    fig, axes = plt.subplots(2, 3, figsize=(12, 7), sharex=True)
    for ax, (name, acti) in zip(axes.flat, activations.items(), strict=True):
        data = visualize_activation(x, acti)
        ax.plot(data["x"], data["y"], label="activation")
        ax.plot(data["x"], data["yp"], label="derivative", linestyle="--")
        ax.axhline(0.0, color="grey", linewidth=0.5)
        ax.set_title(name)
        ax.legend(loc="upper left")
        print(f"{name:<15} f(-2)={data['y'][0]:+.4f}  f(2)={data['y'][-1]:+.4f}  "
              f"f'(-2)={data['yp'][0]:+.4f}  f'(2)={data['yp'][-1]:+.4f}")
    fig.suptitle("Activations and their derivatives on [-2, 2]")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"saved {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PATH)
