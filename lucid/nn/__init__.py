"""lucid.nn: modules, layers, losses, initialization."""

from lucid.nn import functional, init, parallel, utils
from lucid.nn.modules import *  # noqa: F401,F403
from lucid.nn.modules import Module, ModuleList, Parameter, Sequential  # noqa: F401
