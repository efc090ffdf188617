"""compiler/ops/schema.py's fast path never disagrees with pydantic.

Every op's attribute class is validated two ways: by the schema's own checker (what a passing
`dlc check` runs) and by its pydantic mirror (the reference, and the source of every error's
wording).  Over each op's samples and a grid of right and wrong values per field, the checker
either defers (None) or returns exactly the mirror's values, and it defers on every value the
mirror rejects.  The instances behave as the pydantic models they replace where the compiler
uses them."""
from __future__ import annotations

import math
import pickle

import pydantic
import pytest

from compiler.ir.dims import symbol
from compiler.ops import REGISTRY
from compiler.ops.schema import _schema, pydantic_model

# Values of every kind a spec can pass (numbers, strings, booleans, none, lists as tuples, symbols),
# the awkward ones included: bool for int, int for float, 0 and negatives for positive fields.
GRID = [0, 1, 2, 3, -1, 7, 2**60, True, False, 0.0, 0.5, 1.0, -0.5, 2.5, math.nan, math.inf, "relu", "tanh", "none",
        "same", "valid", "row", "gelu", "zeros", "float32", "+", "", None, (), (1,), (2, 3), (0, 1), (1, "a"),
        (1.5,), ("a", "b"), [1, 2], symbol("B"), (symbol("B"), 4)]

OPS = sorted(REGISTRY)


def _mirror_values(cls, given):
    """The mirror's validated values, or None when it rejects `given`."""
    try:
        made = pydantic_model(cls)(**given)
    except pydantic.ValidationError:
        return None
    return {name: getattr(made, name) for name in cls.field_names}


def _same(a, b) -> bool:
    """Equal values of the same types, NaN equal to itself (pydantic keeps the NaN it was given)."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _agree(cls, given) -> None:
    fast = _schema(cls).quick(cls, given)
    reference = _mirror_values(cls, given)
    if reference is None:
        assert fast is None, f"{cls.__name__}({given}) passed the fast path, pydantic rejects it"
    elif fast is not None:
        assert fast.keys() == reference.keys()
        assert all(_same(fast[k], reference[k]) for k in fast), f"{cls.__name__}({given}): {fast} != {reference}"


@pytest.mark.parametrize("name", OPS)
def test_the_fast_path_agrees_with_pydantic_on_every_field(name):
    op = REGISTRY[name]
    cls = op.attrs
    bases = [dict(s.attrs) for s in op.samples] or [{}]
    for base in bases:
        base = {k: tuple(v) if isinstance(v, list) else v for k, v in base.items()}
        _agree(cls, base)
        for field in cls.field_names:
            for value in GRID:
                _agree(cls, {**base, field: value})
            _agree(cls, {k: v for k, v in base.items() if k != field})      # left out
        _agree(cls, {**base, "no_such_field": 1})


@pytest.mark.parametrize("name", OPS)
def test_every_sample_takes_the_fast_path(name):
    """The samples are the values specs write: a passing check must not need pydantic for them."""
    op = REGISTRY[name]
    for s in op.samples:
        given = {k: tuple(v) if isinstance(v, list) else v for k, v in s.attrs.items()}
        assert _schema(op.attrs).quick(op.attrs, given) is not None, (name, given)


def test_instances_behave_as_the_frozen_models_they_replace():
    linear = REGISTRY["Linear"].attrs
    a = linear(in_features=8, out_features=4)
    assert a == linear(in_features=8, out_features=4, bias=True) and hash(a) == hash(linear(in_features=8, out_features=4))
    assert a != linear(in_features=8, out_features=5)
    assert repr(a) == repr(pydantic_model(linear)(in_features=8, out_features=4)) == \
        "LinearAttrs(in_features=8, out_features=4, bias=True)"
    assert a.model_dump() == {"in_features": 8, "out_features": 4, "bias": True}
    assert a.model_dump(exclude_unset=True) == {"in_features": 8, "out_features": 4}
    assert a.model_dump(exclude_defaults=True) == {"in_features": 8, "out_features": 4}
    assert a.model_fields_set == {"in_features", "out_features"}
    b = a.model_copy(update={"bias": False})
    assert (b.bias, a.bias) == (False, True) and b.model_fields_set == {"in_features", "out_features", "bias"}
    assert pickle.loads(pickle.dumps(b)) == b
    with pytest.raises(TypeError):
        a.bias = False
    assert list(linear.model_fields) == list(linear.field_names) == ["in_features", "out_features", "bias"]


def test_a_rejected_value_raises_pydantics_error():
    with pytest.raises(pydantic.ValidationError) as caught:
        REGISTRY["Linear"].attrs(in_features=0, out_features=4)
    assert caught.value.errors()[0]["msg"] == "Input should be greater than 0"
    with pytest.raises(pydantic.ValidationError) as caught:
        REGISTRY["Activation"].attrs(kind="rleu")
    assert caught.value.errors()[0]["msg"].startswith('Input should be one of "relu"')
