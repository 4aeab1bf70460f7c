"""Layers. Each helper module adds its names here."""

from lucid.nn.modules.container import ModuleList, Sequential
from lucid.nn.modules.module import Module, Parameter
