"""lucid.optim: optimizers built from Tensor ops."""

from lucid.optim import lr_scheduler
from lucid.optim.adam import Adam, AdamW
from lucid.optim.adaptive import Adadelta, Adagrad, Adamax, NAdam, RAdam, RMSprop
from lucid.optim.lbfgs import LBFGS
from lucid.optim.optimizer import Optimizer
from lucid.optim.sgd import SGD

__all__ = ["LBFGS", "SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "NAdam", "Optimizer",
           "RAdam", "RMSprop", "lr_scheduler"]
