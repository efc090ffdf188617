"""Every diagnostic code dlc reports, as a named constant (mypy's `errorcodes.py` is the model).

One code per kind of error, so a code names what went wrong and `dlc explain CODE`
(or `dlc explain NAME`) can say how to fix it.  Numbers are stable: DLC000-DLC021 kept
the meaning they had when codes were raw strings; the kinds that used to share DLC005
(bad argument) and DLC011 (type error) got numbers of their own from DLC030 on.
Stages raise `error(SHAPE_MISMATCH, ...)`; reports (text, json, github, sarif) and
`dlc explain` read `CODES`.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, eq=False)
class Code:
    """A diagnostic code: its number (`DLC007`), a kebab-case name and a one-line summary.
    It equals its number, so `diagnostic.code == SHAPE_MISMATCH` reads as it should."""

    code: str
    name: str
    summary: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        return self.code

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Code):
            return self.code == other.code
        return isinstance(other, str) and self.code == other

    def __hash__(self) -> int:
        return hash(self.code)


CODES: dict[str, Code] = {}


def _register(code: str, name: str, summary: str, severity: Severity = Severity.ERROR) -> Code:
    assert code not in CODES, f"{code} is registered twice"
    assert all(c.name != name for c in CODES.values()), f"code name {name} is registered twice"
    CODES[code] = Code(code, name, summary, severity)
    return CODES[code]


def lookup(key: str) -> Code | None:
    """The code registered under a number (`DLC007`, `dlc007`) or a name (`shape-mismatch`)."""
    key = key.strip()
    return CODES.get(key.upper()) or next((c for c in CODES.values() if c.name == key.lower()), None)


# ---- codes kept from the raw-string days (same number, same meaning)
INTERNAL_ERROR = _register("DLC000", "internal-error", "a shape rule in dlc itself failed: a bug in dlc")
SYNTAX_ERROR = _register("DLC001", "syntax-error", "the text does not follow the grammar of the dlc language")
UNDEFINED_NAME = _register("DLC002", "undefined-name", "a name is used that nothing defines")
DUPLICATE_NAME = _register("DLC003", "duplicate-name", "a name is defined twice in the same scope")
UNKNOWN_CALLEE = _register("DLC004", "unknown-callee", "a call names neither a primitive op nor a block in scope")
ARGUMENT_TYPE = _register("DLC005", "argument-type",
                          "an argument of an op or block has the wrong type or is out of range")
FAILED_REQUIREMENT = _register("DLC006", "failed-requirement", "a `require` constraint evaluated to false")
SHAPE_MISMATCH = _register("DLC007", "shape-mismatch", "a tensor's shape does not match what an op or block expects")
DTYPE_MISMATCH = _register("DLC008", "dtype-mismatch", "a tensor's element type does not match what an op expects")
CYCLE = _register("DLC009", "cycle", "blocks or imports refer to each other in a cycle")
IMPORT_ERROR = _register("DLC010", "import-error", "an imported module could not be found or read")
TYPE_ERROR = _register("DLC011", "type-error", "a compile-time expression combines values of incompatible kinds")
INVALID_IDENTIFIER = _register("DLC012", "invalid-identifier", "a name cannot be used in generated Python")
RESOURCE_LIMIT = _register("DLC013", "resource-limit", "the spec asks for more than the compiler's documented limits")
MISSING_OUTPUT = _register("DLC014", "missing-output", "a block declares no output")
UNKNOWN_TIE_TARGET = _register("DLC015", "unknown-tie-target", "a `tie` names a parameter that does not exist")
UNUSED_INPUT = _register("DLC020", "unused-input", "an input of a block is never read", Severity.WARNING)
UNUSED_RESULT = _register("DLC021", "unused-result", "a value is computed but never reaches an output",
                          Severity.WARNING)
BLOCK_SHADOWS_OP = _register("DLC022", "block-shadows-op",
                             "a block is named like a primitive op; in its module the name means the block",
                             Severity.WARNING)

# ---- kinds split out of DLC005 (bad argument)
UNKNOWN_ARGUMENT = _register("DLC030", "unknown-argument", "a call names an argument the op or block does not have")
MISSING_ARGUMENT = _register("DLC031", "missing-argument", "a parameter without a default is given no value")
TOO_MANY_ARGUMENTS = _register("DLC032", "too-many-arguments",
                               "more positional arguments than the op or block has parameters")
DUPLICATE_ARGUMENT = _register("DLC033", "duplicate-argument", "the same argument is given twice")
INVALID_CHOICE = _register("DLC034", "invalid-choice", "a value is not one of the options an enum parameter allows")
INPUT_COUNT = _register("DLC035", "input-count", "a layer is applied to the wrong number of tensor inputs")
EXPECTED_TENSOR = _register("DLC036", "expected-tensor",
                            "a compile-time value (number, string, list, block) is used where a tensor is needed")
POSITIONAL_ONLY = _register("DLC037", "positional-only", "a keyword is used where only positional arguments are allowed")
BAD_REPEAT = _register("DLC038", "bad-repeat", "a `repeat` cannot chain its layer")
BAD_RENAME = _register("DLC039", "bad-rename", "a `rename` rule does not map checkpoint keys consistently")
MISPLACED_STATEMENT = _register("DLC040", "misplaced-statement", "a statement appears where it is not allowed")
RESULT_COUNT = _register("DLC041", "result-count", "the left side names more or fewer values than the right side gives")
INPUT_ORDER = _register("DLC042", "input-order", "a required input follows an optional one")
OPTIONAL_INPUT = _register("DLC043", "optional-input", "an input that may be none reaches an op that needs a tensor")

# ---- kinds split out of DLC011 (type error)
INVALID_DIMENSION = _register("DLC044", "invalid-dimension", "a dimension is not a positive integer or a symbol")
NOT_COMPILE_TIME = _register("DLC045", "not-compile-time",
                             "a condition depends on symbolic sizes and cannot be decided at compile time")
DIVISION_BY_ZERO = _register("DLC046", "division-by-zero", "a compile-time expression divides by zero")
INDEX_OUT_OF_RANGE = _register("DLC047", "index-out-of-range", "a compile-time list index is out of range")
UNKNOWN_TYPE = _register("DLC048", "unknown-type", "a parameter is declared with a type dlc does not know")
UNBOUND_DIMENSION = _register("DLC049", "unbound-dimension",
                              "a dimension of the model is not given by any required input")
UNKNOWN_OVERRIDE = _register("DLC050", "unknown-override", "a `-D NAME=VALUE` override names a parameter no model has")
TIE_SHAPE_MISMATCH = _register("DLC051", "tie-shape-mismatch", "a `tie` joins two parameters of different shapes")

# ---- later codes
TP_INDIVISIBLE = _register("DLC060", "tp-indivisible",
                           "a layer's size does not divide by the tensor-parallel degree of `dlc check --tp N`")
