"""lucid_jit's graph IR: Value, Node, Graph; printer, verifier, interpreter, export."""

from lucid_jit.ir.export import to_dot, to_networkx
from lucid_jit.ir.graph import CONST, FUSED, Graph, Node, Value, const_value, make_const
from lucid_jit.ir.interpret import interpret
from lucid_jit.ir.printer import format_graph
from lucid_jit.ir.verify import VerifyError, verify
