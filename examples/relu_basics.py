"""The ReLU and LeakyReLU examples of the lucid docs (seeds 000 and 002), printing their values.

Run: python examples/relu_basics.py
"""

import lucid
import lucid.nn as nn
from lucid import Tensor


class SimpleReLUModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(x)


class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(in_features=3, out_features=5)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(in_features=5, out_features=2)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


class SimpleLeakyReLUModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(in_features=3, out_features=2)
        self.leaky_relu = nn.LeakyReLU(negative_slope=0.05)

    def forward(self, x):
        return self.leaky_relu(self.linear(x))


def show(title: str, module: nn.Module, values: list[list[float]]) -> None:
    """Print module(input) and, after backward() on the (non-scalar) output, the input's grad."""
    print(f"# {title}")
    x = Tensor(values, requires_grad=True)
    output = module(x)
    print(output)
    output.backward()  # a non-scalar output is seeded with ones
    print(x.grad)
    print()


def main() -> None:
    lucid.manual_seed(0)  # the Linear layers' initial weights
    show("nn.ReLU on one tensor", nn.ReLU(), [[-1.0, 2.0, -0.5, 3.0]])
    show("nn.ReLU inside an nn.Module", SimpleReLUModel(), [[-2.0, 0.5, 1.5, -0.3]])
    show("Linear -> ReLU -> Linear", NeuralNetwork(), [[0.5, -1.2, 3.3]])
    show("nn.LeakyReLU()", nn.LeakyReLU(), [[-1.0, 2.0, -0.5, 3.0]])
    # At exactly x = 0 the gradient is negative_slope: the docs' formula (and PyTorch) say so.
    show("nn.LeakyReLU(negative_slope=0.1)", nn.LeakyReLU(negative_slope=0.1),
         [[-2.0, 0.0, 1.5, -3.0]])
    show("Linear -> LeakyReLU(0.05)", SimpleLeakyReLUModel(), [[0.5, -1.2, 3.3]])


if __name__ == "__main__":
    main()
