"""Gradient clipping and flat parameter vectors (PyTorch's `torch.nn.utils`). Written in lucid's
tensor ops, so they trace into a compiled training step like the rest of it."""

from lucid.nn.utils import rnn
from lucid.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_
from lucid.nn.utils.convert_parameters import parameters_to_vector, vector_to_parameters

__all__ = ["rnn", "clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
           "vector_to_parameters"]
