"""Independent float64 NumPy references of PyTorch's SGD, Adam and AdamW update formulas.

Written from the formulas in PyTorch's documentation, not from lucid's code, so that the tests
compare two implementations rather than one with itself.
"""

from __future__ import annotations

import numpy as np


class RefSGD:
    def __init__(self, params, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 maximize=False):
        self.params = [np.array(p, np.float64) for p in params]
        self.bufs = [None] * len(params)
        self.momentum, self.dampening, self.wd = momentum, dampening, weight_decay
        self.nesterov, self.maximize = nesterov, maximize

    def step(self, grads, lr):
        for i, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            d = -g if self.maximize else g.copy()
            if self.wd:
                d = d + self.wd * p
            if self.momentum:
                if self.bufs[i] is None:
                    self.bufs[i] = d.copy()
                else:
                    self.bufs[i] = self.momentum * self.bufs[i] + (1 - self.dampening) * d
                d = d + self.momentum * self.bufs[i] if self.nesterov else self.bufs[i]
            self.params[i] = p - lr * d


class RefAdam:
    def __init__(self, params, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 maximize=False, decoupled=False):
        self.params = [np.array(p, np.float64) for p in params]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.vmax = [np.zeros_like(p) for p in self.params]
        self.t = 0
        self.b1, self.b2 = betas
        self.eps, self.wd, self.amsgrad = eps, weight_decay, amsgrad
        self.maximize, self.decoupled = maximize, decoupled

    def step(self, grads, lr):
        self.t += 1
        for i, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            g = -g if self.maximize else g
            if self.wd and self.decoupled:
                p = p * (1 - lr * self.wd)
            elif self.wd:
                g = g + self.wd * p
            self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * g
            self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * g * g
            v = self.v[i]
            if self.amsgrad:
                self.vmax[i] = np.maximum(self.vmax[i], self.v[i])
                v = self.vmax[i]
            m_hat = self.m[i] / (1 - self.b1 ** self.t)
            v_hat = v / (1 - self.b2 ** self.t)
            self.params[i] = p - lr * m_hat / (np.sqrt(v_hat) + self.eps)
