"""Seed 001's training loop: an MLP (Linear -> ReLU -> Linear -> Sigmoid) learning random binary
targets with BCELoss and Adam(lr=0.01), printing the loss each epoch. `make demo` runs this.

Run: python examples/train_mlp.py [n_epochs]
"""

import sys

import lucid
import lucid.nn as nn


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


def main(n_epochs: int = 10) -> None:
    lucid.manual_seed(0)
    input_size, hidden_size, output_size = 64, 128, 2
    input_data = lucid.rand(32, input_size)  # a batch of 32
    target = lucid.randint(0, 2, (32, output_size), dtype=lucid.float32)  # random 0/1 targets

    model = NeuralNetwork(input_size, hidden_size, output_size)
    criterion = nn.BCELoss()
    optimizer = lucid.optim.Adam(model.parameters(), lr=0.01)

    for epoch in range(n_epochs):
        outputs = model(input_data)
        loss = criterion(outputs, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print(f"Epoch [{epoch + 1}/{n_epochs}], Loss: {loss.item()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
