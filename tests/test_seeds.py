"""The seed documents' examples (000, 002, 003, 004), with their printed strings exactly.

seeds/README.md: 002's gradient at exactly x = 0 follows its formula (negative_slope), not its
printed 0.0.
"""

import numpy as np

import lucid
import lucid.nn as nn
import lucid.nn.functional as F
from lucid import Tensor
from tests.helpers import assert_close


def test_000_relu_module_prints_and_backward():
    input_tensor = Tensor([[-1.0, 2.0, -0.5, 3.0]], requires_grad=True)
    relu = nn.ReLU()
    output = relu(input_tensor)
    assert repr(output) == "Tensor([[0.0, 2.0, 0.0, 3.0]], grad=None)"
    output.backward()
    assert repr(input_tensor.grad) == "Tensor([[0.0, 1.0, 0.0, 1.0]])"


def test_000_print_uses_repr(capsys):
    print(nn.ReLU()(Tensor([[-1.0, 2.0, -0.5, 3.0]], requires_grad=True)))
    assert capsys.readouterr().out == "Tensor([[0.0, 2.0, 0.0, 3.0]], grad=None)\n"


class SimpleReLUModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(x)


def test_000_simple_relu_model():
    model = SimpleReLUModel()
    input_data = Tensor([[-2.0, 0.5, 1.5, -0.3]], requires_grad=True)
    output = model(input_data)
    assert repr(output) == "Tensor([[0.0, 0.5, 1.5, 0.0]], grad=None)"
    output.backward()
    assert repr(input_data.grad) == "Tensor([[0.0, 1.0, 1.0, 0.0]])"
    assert repr(model) == "SimpleReLUModel(\n  (relu): ReLU()\n)"


class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(in_features=3, out_features=5)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(in_features=5, out_features=2)

    def forward(self, x):
        x = self.fc1(x)
        x = self.relu(x)
        x = self.fc2(x)
        return x


def test_000_neural_network_backward():
    model = NeuralNetwork()
    input_data = Tensor([[0.5, -1.2, 3.3]], requires_grad=True)
    output = model(input_data)
    assert output.shape == (1, 2)
    assert repr(output).startswith("Tensor([[") and repr(output).endswith("]], grad=None)")
    output.backward()
    assert input_data.grad.shape == (1, 3)
    # Seeded with ones, the input gradient is W1.T @ (relu'(h) * W2.T @ 1).
    w1, b1 = model.fc1.weight.numpy(), model.fc1.bias.numpy()
    w2 = model.fc2.weight.numpy()
    h = input_data.numpy() @ w1.T + b1
    expected = ((h > 0) * (np.ones((1, 2)) @ w2)) @ w1
    assert_close(input_data.grad, expected.astype(np.float32), rtol=1e-5, atol=1e-6)
    assert repr(input_data.grad).startswith("Tensor([[")
    assert "grad=" not in repr(input_data.grad)


def test_002_leaky_relu_default_slope():
    input_tensor = Tensor([[-1.0, 2.0, -0.5, 3.0]], requires_grad=True)
    leaky_relu = nn.LeakyReLU()
    output = leaky_relu(input_tensor)
    assert repr(output) == "Tensor([[-0.01, 2.0, -0.005, 3.0]], grad=None)"
    output.backward()
    assert repr(input_tensor.grad) == "Tensor([[0.01, 1.0, 0.01, 1.0]])"


def test_002_leaky_relu_custom_slope_gradient_at_zero_is_slope():
    input_tensor = Tensor([[-2.0, 0.0, 1.5, -3.0]], requires_grad=True)
    leaky_relu = nn.LeakyReLU(negative_slope=0.1)
    output = leaky_relu(input_tensor)
    assert repr(output) == "Tensor([[-0.2, 0.0, 1.5, -0.3]], grad=None)"
    output.backward()
    assert repr(input_tensor.grad) == "Tensor([[0.1, 0.1, 1.0, 0.1]])"


class SimpleLeakyReLUModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(in_features=3, out_features=2)
        self.leaky_relu = nn.LeakyReLU(negative_slope=0.05)

    def forward(self, x):
        return self.leaky_relu(self.linear(x))


def test_002_leaky_relu_model():
    model = SimpleLeakyReLUModel()
    input_data = Tensor([[0.5, -1.2, 3.3]], requires_grad=True)
    output = model(input_data)
    h = input_data.numpy() @ model.linear.weight.numpy().T + model.linear.bias.numpy()
    assert_close(output, np.where(h > 0, h, 0.05 * h))
    output.backward()
    slope = np.where(h > 0, 1.0, 0.05)
    assert_close(input_data.grad, (slope @ model.linear.weight.numpy()).astype(np.float32))
    assert repr(model) == ("SimpleLeakyReLUModel(\n"
                           "  (linear): Linear(in_features=3, out_features=2, bias=True)\n"
                           "  (leaky_relu): LeakyReLU(negative_slope=0.05)\n)")


def test_003_relu_as_mask_product_matches_f_relu():
    def relu(x):
        return x * (x > 0)

    x = lucid.linspace(-2, 2, 1000)
    assert_close(relu(x), F.relu(x), rtol=0, atol=0)
    assert relu(x).dtype == lucid.float32
    # Its derivative, as the seed's plotting code computes it.
    xg = x.clone().requires_grad_()
    F.relu(xg).sum().backward()
    assert_close(xg.grad, (x.numpy() > 0).astype(np.float32), rtol=0, atol=0)


def test_004_functional_relu_and_relu_():
    input_tensor = lucid.randn(1, 5, 5)
    before = input_tensor.numpy().copy()
    output1 = F.relu(input_tensor)
    assert output1 is not input_tensor
    assert_close(input_tensor, before, rtol=0, atol=0)  # F.relu leaves its input alone
    returned = F.relu_(input_tensor)
    assert returned is input_tensor
    assert_close(input_tensor, np.maximum(before, 0), rtol=0, atol=0)
    assert_close(output1, input_tensor, rtol=0, atol=0)


def test_004_inplace_relu_returns_the_same_object():
    relu_inplace = nn.ReLU(inplace=True)
    input_tensor = lucid.randn(2, 4)
    before = input_tensor.numpy().copy()
    original_id = id(input_tensor)
    output = relu_inplace(input_tensor)
    assert id(output) == original_id
    assert_close(input_tensor, np.maximum(before, 0), rtol=0, atol=0)
    assert repr(relu_inplace) == "ReLU(inplace=True)"
    assert repr(nn.ReLU()) == "ReLU()"


def test_004_basic_usage():
    relu = nn.ReLU()
    output = relu(Tensor([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]]))
    assert repr(output) == "Tensor([[0.0, 2.0, 0.0], [4.0, 0.0, 6.0]])"


def test_004_activation_comparison_table():
    x = Tensor(np.linspace(-3, 3, 13), dtype=lucid.float64)
    xs = x.numpy()
    from scipy.special import erf

    assert_close(nn.LeakyReLU()(x), np.where(xs > 0, xs, 0.01 * xs))
    assert_close(nn.GELU()(x), xs * 0.5 * (1 + erf(xs / np.sqrt(2))))
    assert_close(nn.Sigmoid()(x), 1 / (1 + np.exp(-xs)))
    assert_close(nn.Tanh()(x), np.tanh(xs))
    assert_close(nn.ELU()(x), np.where(xs > 0, xs, np.expm1(xs)))
