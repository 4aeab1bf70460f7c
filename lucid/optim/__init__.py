"""lucid.optim: optimizers built from Tensor ops."""
