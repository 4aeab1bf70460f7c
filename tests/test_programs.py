"""Eight well-known kinds of PyTorch program, written as their tutorials write them with `lucid`
for `torch`: each runs eagerly and with its training step compiled (the default "async" mode, as
a user gets it) from the same initial weights and data, and the losses agree step by step.

1. the polynomial fit of "Learning PyTorch with Examples" (raw autograd, then nn)
2. the 60-minute blitz CIFAR `Net` with a DataLoader and SGD momentum
3. the FashionMNIST quickstart loops (Flatten + Linear stack, train and test functions)
4. a nanoGPT-style model (causal attention, GELU MLP, AdamW) and sampling from it
5. logistic regression on scikit-learn's digits
6. an MLP autoencoder
7. the pytorch/examples MNIST net with BatchNorm and Dropout, Adadelta and StepLR
8. a regression loop with warm-up + cosine LR, gradient clipping and accumulation
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid.nn.functional as F
from lucid.utils.data import DataLoader, TensorDataset

RTOL = 2e-4


def _twice(build, steps_fn):
    """Run `steps_fn(parts, compiled)` on two identical builds; the two loss lists."""
    out = {}
    for compiled in (False, True):
        lucid.manual_seed(0)
        parts = build()
        lucid.manual_seed(1)
        with warnings.catch_warnings():
            warnings.simplefilter("error", lucid_graph_break())
            out[compiled] = steps_fn(parts, compiled)
    np.testing.assert_allclose(out[True], out[False], rtol=RTOL, atol=1e-6)
    return out[False]


def lucid_graph_break():
    from lucid_jit import GraphBreakWarning

    return GraphBreakWarning


def _compile(fn, compiled):
    return lucid.compile(fn, mode="async") if compiled else fn


def test_polynomial_fit_raw_autograd_and_nn():
    def build():
        x = lucid.linspace(-math.pi, math.pi, 200)
        return x, lucid.sin(x)

    def raw(parts, compiled):
        x, y = parts
        a, b, c, d = (lucid.randn((), requires_grad=True) for _ in range(4))

        def step(x, y):
            y_pred = a + b * x + c * x ** 2 + d * x ** 3
            loss = (y_pred - y).pow(2).sum()
            loss.backward()
            with lucid.no_grad():
                for p in (a, b, c, d):
                    p -= 1e-6 * p.grad
                    p.grad = None
            return loss

        step = _compile(step, compiled)
        return [step(x, y).item() for _ in range(30)]

    losses = _twice(build, raw)
    assert losses[-1] < losses[0]

    def with_nn(parts, compiled):
        x, y = parts
        xx = x.unsqueeze(-1).pow(lucid.tensor([1, 2, 3]))
        model = nn.Sequential(nn.Linear(3, 1), nn.Flatten(0, 1))
        loss_fn = nn.MSELoss(reduction="sum")
        optimizer = lucid.optim.RMSprop(model.parameters(), lr=1e-3)

        def step(xx, y):
            loss = loss_fn(model(xx), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss

        step = _compile(step, compiled)
        return [step(xx, y).item() for _ in range(30)]

    _twice(build, with_nn)


class CifarNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = lucid.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def test_cifar_blitz_net_with_a_loader():
    def build():
        data = TensorDataset(lucid.randn(24, 3, 32, 32), lucid.randint(0, 10, (24,)))
        return CifarNet(), DataLoader(data, batch_size=8, shuffle=True)

    def run(parts, compiled):
        net, loader = parts
        criterion = nn.CrossEntropyLoss()
        optimizer = lucid.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)

        def step(inputs, labels):
            optimizer.zero_grad()
            loss = criterion(net(inputs), labels)
            loss.backward()
            optimizer.step()
            return loss

        step = _compile(step, compiled)
        losses = []
        for _epoch in range(2):
            for inputs, labels in loader:
                losses.append(step(inputs, labels).item())
        return losses

    _twice(build, run)


def test_fashion_mnist_quickstart_loops():
    class NeuralNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            self.flatten = nn.Flatten()
            self.linear_relu_stack = nn.Sequential(nn.Linear(14 * 14, 64), nn.ReLU(),
                                                   nn.Linear(64, 64), nn.ReLU(),
                                                   nn.Linear(64, 10))

        def forward(self, x):
            return self.linear_relu_stack(self.flatten(x))

    def build():
        train = TensorDataset(lucid.rand(40, 1, 14, 14), lucid.randint(0, 10, (40,)))
        test = TensorDataset(lucid.rand(20, 1, 14, 14), lucid.randint(0, 10, (20,)))
        return NeuralNetwork(), DataLoader(train, batch_size=10), DataLoader(test, batch_size=10)

    def run(parts, compiled):
        model, train_dataloader, test_dataloader = parts
        loss_fn = nn.CrossEntropyLoss()
        optimizer = lucid.optim.SGD(model.parameters(), lr=1e-1)

        def train_step(X, y):  # noqa: N803
            loss = loss_fn(model(X), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            return loss

        train_step = _compile(train_step, compiled)
        losses = []
        for _t in range(2):
            model.train()
            for X, y in train_dataloader:  # noqa: N806
                losses.append(train_step(X, y).item())
            model.eval()
            test_loss, correct = 0.0, 0.0
            with lucid.no_grad():
                for X, y in test_dataloader:  # noqa: N806
                    pred = model(X)
                    test_loss += loss_fn(pred, y).item()
                    correct += (pred.argmax(1) == y).type(lucid.float).sum().item()
            losses.append(test_loss / len(test_dataloader))
        return losses

    _twice(build, run)


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.n_head, self.n_embd = n_head, n_embd

    def forward(self, x):
        B, T, C = x.size()  # noqa: N806
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class Block(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = nn.ModuleDict(dict(c_fc=nn.Linear(n_embd, 4 * n_embd),
                                      c_proj=nn.Linear(4 * n_embd, n_embd)))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self, vocab=32, block_size=8, n_embd=16, n_head=2, n_layer=2):
        super().__init__()
        self.block_size = block_size
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab, n_embd), wpe=nn.Embedding(block_size, n_embd),
            h=nn.ModuleList([Block(n_embd, n_head) for _ in range(n_layer)]),
            ln_f=nn.LayerNorm(n_embd)))
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying

    def forward(self, idx, targets=None):
        b, t = idx.size()
        pos = lucid.arange(0, t, dtype=lucid.long)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
                                   ignore_index=-1)
        return logits, loss

    @lucid.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        for _ in range(max_new_tokens):
            idx_cond = idx if idx.size(1) <= self.block_size else idx[:, -self.block_size:]
            logits, _ = self(idx_cond)
            logits = logits[:, -1, :] / temperature
            if top_k is not None:
                v, _ = lucid.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float("Inf")
            probs = F.softmax(logits, dim=-1)
            idx_next = lucid.multinomial(probs, num_samples=1)
            idx = lucid.cat((idx, idx_next), dim=1)
        return idx


def test_nanogpt_style_model_trains_and_samples():
    def build():
        return GPT(), lucid.randint(0, 32, (64,))

    def run(parts, compiled):
        model, data = parts
        optimizer = lucid.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.95),
                                      weight_decay=0.1)

        def step(x, y):
            _, loss = model(x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            return loss

        step = _compile(step, compiled)
        losses = []
        for i in range(6):
            ix = lucid.randint(0, len(data) - 8, (4,))
            x = lucid.stack([data[j:j + 8] for j in ix.tolist()])
            y = lucid.stack([data[j + 1:j + 9] for j in ix.tolist()])
            losses.append(step(x, y).item())
            if i == 5:
                out = model.generate(lucid.zeros((1, 1), dtype=lucid.long), 10, top_k=5)
                assert out.shape == (1, 11)
        return losses

    _twice(build, run)


def test_logistic_regression_on_digits():
    datasets = pytest.importorskip("sklearn.datasets")

    def build():
        digits = datasets.load_digits()
        x = lucid.from_numpy((digits.data / 16.0).astype(np.float32))
        y = lucid.from_numpy(digits.target.astype(np.int64))
        return nn.Linear(64, 10), DataLoader(TensorDataset(x, y), batch_size=256, shuffle=True)

    def run(parts, compiled):
        model, loader = parts
        optimizer = lucid.optim.SGD(model.parameters(), lr=0.5)

        def step(xb, yb):
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss

        step = _compile(step, compiled)
        return [step(xb, yb).item() for _ in range(2) for xb, yb in loader]

    losses = _twice(build, run)
    assert losses[-1] < 0.5 * losses[0]


def test_mlp_autoencoder():
    def build():
        encoder = nn.Sequential(nn.Linear(20, 8), nn.ReLU(), nn.Linear(8, 3))
        decoder = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 20), nn.Sigmoid())
        return encoder, decoder, lucid.rand(32, 20)

    def run(parts, compiled):
        encoder, decoder, data = parts
        params = list(encoder.parameters()) + list(decoder.parameters())
        optimizer = lucid.optim.Adam(params, lr=1e-2)

        def step(x):
            recon = decoder(encoder(x))
            loss = F.mse_loss(recon, x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss

        step = _compile(step, compiled)
        return [step(data[i * 8:(i + 1) * 8]).item() for _ in range(3) for i in range(4)]

    _twice(build, run)


class MnistNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(16 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = lucid.flatten(x, 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)


def test_mnist_example_net_with_batchnorm_dropout_adadelta_and_steplr():
    def build():
        data = TensorDataset(lucid.randn(32, 1, 12, 12), lucid.randint(0, 10, (32,)))
        return MnistNet(), DataLoader(data, batch_size=8, shuffle=True)

    def run(parts, compiled):
        model, loader = parts
        optimizer = lucid.optim.Adadelta(model.parameters(), lr=1.0)
        scheduler = lucid.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)

        def step(data, target):
            optimizer.zero_grad()
            loss = F.nll_loss(model(data), target)
            loss.backward()
            optimizer.step()
            return loss

        step = _compile(step, compiled)
        losses = []
        for _epoch in range(2):
            model.train()
            for data, target in loader:
                losses.append(step(data, target).item())
            scheduler.step()
            model.eval()
            with lucid.no_grad():
                losses.append(F.nll_loss(model(data), target, reduction="sum").item())
        return losses

    _twice(build, run)


def test_regression_with_warmup_cosine_clipping_and_accumulation():
    def build():
        x = lucid.randn(48, 6)
        y = x @ lucid.randn(6, 1) + 0.1 * lucid.randn(48, 1)
        model = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Linear(16, 1))
        return model, DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)

    def run(parts, compiled):
        model, loader = parts
        optimizer = lucid.optim.AdamW(model.parameters(), lr=3e-3)
        S = lucid.optim.lr_scheduler  # noqa: N806
        scheduler = S.SequentialLR(optimizer, [S.LinearLR(optimizer, 0.1, total_iters=3),
                                               S.CosineAnnealingLR(optimizer, T_max=6)], [3])
        accumulation = 2

        def micro_step(xb, yb):
            loss = F.mse_loss(model(xb), yb) / accumulation
            loss.backward()
            return loss

        def update():
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
            optimizer.step()
            optimizer.zero_grad()

        micro_step = _compile(micro_step, compiled)
        losses = []
        for _epoch in range(2):
            for i, (xb, yb) in enumerate(loader):
                losses.append(micro_step(xb, yb).item())
                if (i + 1) % accumulation == 0:
                    update()
                    scheduler.step()
        return losses

    _twice(build, run)
