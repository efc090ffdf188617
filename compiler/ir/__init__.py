"""The intermediate representation: compile-time values (`values`), tensor types with
symbolic dims (`types`), and one graph per block specialization (`graph`)."""
from compiler.ir.graph import Graph, InitRule, Node, OutputDecl, Program, Rename, Tie, dump, entry_program, verify

__all__ = ["Graph", "InitRule", "Node", "OutputDecl", "Program", "Rename", "Tie", "dump", "entry_program", "verify"]
