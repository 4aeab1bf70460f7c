"""Seed 004's SimpleCNN (Conv2d -> ReLU -> MaxPool2d, twice): its printed structure and the output
shape for one 3x32x32 image.

Run: python examples/simple_cnn.py
"""

import lucid
import lucid.nn as nn


class SimpleCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x):
        x = self.pool(self.relu1(self.conv1(x)))
        return self.pool(self.relu2(self.conv2(x)))


def main() -> None:
    lucid.manual_seed(0)
    model = SimpleCNN()
    print("Model Structure:")
    print(model)
    input_image = lucid.randn(1, 3, 32, 32)  # one 3x32x32 colour image
    output = model(input_image)
    print()
    print("Input shape:", input_image.shape)
    print("Output shape:", output.shape)


if __name__ == "__main__":
    main()
