"""Executing one block body: statements, compile-time values, layers and their
application, for one set of parameter values.  The Resolver (resolve.py) decides
which specializations exist; a BlockBuilder builds the graph of one."""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Iterator, Protocol


from compiler.ir.dims import Dim
from compiler.diagnostics import CompileError, Diagnostic, Note, Span, error
from compiler.elaborate.evaluate import Evaluator
from compiler.elaborate.limits import Budget, Limits
from compiler.elaborate.loader import LoadedModule
from compiler.ir import Graph, Node, OutputDecl, Rename, Tie
from compiler.elaborate.init_rules import init_rule
from compiler.ir.graph import DecodeDecl, evolve
from compiler.ir.types import TensorType, dim, star
from compiler.ir.values import ArgExpr, CallExpr, Callee, Layer, ScanSpec, TensorRef, kind_of, show
from compiler.ops import REGISTRY
from compiler.elaborate.arguments import attrs_key, divisibility_fix, validate_attrs
from compiler.syntax import ast
from compiler.diagnostics.codes import (
    BAD_RENAME,
    BAD_REPEAT,
    BAD_SCAN,
    DUPLICATE_NAME,
    EXPECTED_TENSOR,
    FAILED_REQUIREMENT,
    INPUT_COUNT,
    INPUT_ORDER,
    INVALID_DIMENSION,
    MISPLACED_STATEMENT,
    MISSING_OUTPUT,
    RESOURCE_LIMIT,
    RESULT_COUNT,
    TYPE_ERROR,
)


class Specializer(Protocol):
    """What a builder asks of the resolver (resolve.py), which owns the worklist of
    specializations: the class key of a block for some arguments, built on demand."""

    limits: Limits
    budget: Budget
    graphs: dict[str, Graph]
    node_count: int
    # arguments.attrs_key -> the validated attributes: a model configures the same ops alike again
    # and again, and attributes are frozen, so one validated instance serves every such layer
    attrs_cache: dict[tuple, Any]

    def specialize(self, block: ast.BlockDef, owner: LoadedModule, args: list, span: Span,
                   aliases: dict[int, int] | None = None) -> str: ...

@dataclass(frozen=True)
class BlockCall:
    """How a block layer was configured, so it can be re-specialized when applied."""

    block: ast.BlockDef
    owner: LoadedModule
    args: tuple



class BlockBuilder:
    """Executes one block body for one set of parameter values."""

    def __init__(self, resolver: Specializer, module: LoadedModule, graph: Graph, params: dict[str, Any],
                 aliases: dict[int, int] | None = None):
        self.aliases = aliases or {}
        self.user_names: set[str] = set()
        self.auto_modules: set[str] = set()
        self.input_refs: list[tuple[TensorRef, TensorType]] = []
        self.r = resolver
        self.limits = resolver.limits
        self.budget = resolver.budget
        self.module = module
        self.graph = graph
        self.env: dict[str, Any] = dict(params)
        self.spans: dict[str, Span] = {}
        self.failed = False            # some statement failed, whether or not it reported
        self.stopped = False           # a `require` failed: the rest of the body is not built
        self.counter = 0
        self.failed = False     # a statement failed, perhaps with an error reported elsewhere
        self.guard: tuple[tuple[str, bool], ...] = ()     # the static branches being built
        self.looping = 0                                   # inside a `for` body
        # the evaluator of `let` and layer statements: it keeps nothing of its own between
        # expressions, so one serves them all (made once, not once per statement)
        self.evaluator = Evaluator(self)

    # ------------------------------------------------------------------ names
    def lookup(self, name: str) -> Any:
        if name in self.env:
            value = self.env[name]
            if value is _POISON:
                raise CompileError([])  # its definition already failed and was reported
            return value
        if name in self.module.scope:        # a block named like an op shadows it (warned by the loader)
            return Callee("block", name)
        if name in REGISTRY:
            callee = _OP_CALLEES.get(name)   # immutable, one per op: made once, not per call
            if callee is None:
                callee = _OP_CALLEES[name] = Callee("op", name)
            return callee
        return None

    def visible_names(self) -> set[str]:
        return set(self.env) | set(REGISTRY) | set(self.module.scope)

    def declare_symbol(self, name: str, span: Span) -> Dim:
        from compiler.ir.types import symbol
        sym = symbol(name)
        self.bind(name, sym, span)
        return sym

    def bind(self, name: str, value: Any, span: Span) -> None:
        if name in self.env:
            first = self.spans.get(name)
            notes = (Note(first, "first defined here"),) if first else ()
            raise error(DUPLICATE_NAME, f"`{name}` is already defined", span, notes=notes,
                        hint="values are bound once; give the new value another name")
        if name in REGISTRY or name in self.module.scope:
            raise error(DUPLICATE_NAME, f"`{name}` shadows the {'block' if name in self.module.scope else 'op'} of that name", span)
        self.env[name] = value
        self.spans[name] = span

    @contextmanager
    def scoped(self, extra: dict[str, Any]) -> Iterator[None]:
        saved = dict(self.env)
        self.env.update(extra)
        try:
            yield
        finally:
            self.env = saved

    # ------------------------------------------------------------------ statements
    def build(self, block: ast.BlockDef) -> None:
        errors: list[Diagnostic] = []
        self.user_names = _bound_names(block.body)
        self.run(block.body, errors)
        # a statement that failed silently (it used a block whose error is reported at its first
        # use) leaves the graph incomplete too: no "has no output" for it, and no graph either
        if not errors and not self.failed and not self.graph.outputs:
            errors.append(Diagnostic(MISSING_OUTPUT, f"block `{block.name}` has no output", block.name_span,
                                     hint="add `out NAME` or `out NAME = EXPR`"))
        if errors or self.failed:
            raise CompileError(errors)

    def run(self, stmts, errors: list[Diagnostic]) -> None:
        for stmt in stmts:
            if self.stopped:
                return
            try:
                kind = type(stmt)
                method = _STATEMENT_METHODS.get(kind)
                if method is None:
                    method = _STATEMENT_METHODS[kind] = getattr(BlockBuilder, "_" + kind.__name__.lower())
                method(self, stmt, errors)
            except CompileError as exc:
                errors.extend(exc.diagnostics)
                self.failed = True
                self._poison(stmt)
                # parameters that fail a `require` make everything after it meaningless: stop here,
                # so nothing downstream of the requirement is reported
                self.stopped = isinstance(stmt, ast.Require)

    def _poison(self, stmt: ast.Stmt) -> None:
        """Mark names a failed statement would have bound, so later uses do not cascade."""
        names = stmt.targets if isinstance(stmt, ast.Assign) else (getattr(stmt, "name", None),)
        for name in names:
            if name and name not in self.env:
                self.env[name] = _POISON

    def _require(self, s: ast.Require, errors) -> None:
        if not Evaluator(self).need_bool(s.cond):
            message = s.message or f"requirement `{s.cond}` does not hold"
            explained = f"{s.cond}  evaluates as  {self.explain(s.cond)}"
            fix = divisibility_fix(s.cond, self.env)
            raise error(FAILED_REQUIREMENT, message, s.span, hint=f"{fix}; {explained}" if fix else explained)

    def explain(self, e: ast.Expr) -> str:
        """The expression with each name replaced by its value, and a comparison's sides computed:
        `768 % 10 == 0, i.e. 8 == 0`."""
        def value(name: str) -> str:
            text = show(self.env[name]) if name in self.env else name
            return f"({text})" if text.startswith("-") else text
        text = str(ast.replace_names(e, value))
        if isinstance(e, ast.Compare) and not all(isinstance(s, (ast.Name, ast.Int)) for s in (e.left, e.right)):
            try:
                text += f", i.e. {show(Evaluator(self).eval(e.left))} {e.op} {show(Evaluator(self).eval(e.right))}"
            except CompileError:
                pass
        return text

    def _input(self, s: ast.Input, errors) -> None:
        slot = len(self.input_refs)
        if slot in self.aliases:
            self._alias_input(s, *self.input_refs[self.aliases[slot]])
            return
        optional_before = [self.graph.node(i) for i in self.graph.inputs if self.graph.node(i).attrs.optional]
        if optional_before and not s.optional:
            first = optional_before[0]
            raise error(INPUT_ORDER, f"required input `{s.name}` follows optional input `{first.outputs[0]}`", s.span,
                        notes=(Note(first.span, "the optional input is declared here"),),
                        hint="declare optional inputs last: a call may leave out only trailing inputs")
        ttype = TensorType(self._input_dims(s.type), s.type.dtype or "float", s.optional)
        node = self.add_node("input", "input", ttype, s.span, (s.name,))
        self.graph.inputs.append(node.id)
        self.bind(s.name, TensorRef(node.id, 0), s.span)
        self.input_refs.append((TensorRef(node.id, 0), ttype))

    def _alias_input(self, s: ast.Input, ref: TensorRef, ttype: TensorType) -> None:
        """This input receives the same tensor as an earlier one: its fresh symbols name the
        earlier input's dimensions (`Tk` is `Tq`), and its name is bound to that tensor."""
        for d, actual in zip(s.type.dims, ttype.shape):
            if isinstance(d, ast.Name) and self.lookup(d.id) is None:
                self.bind(d.id, actual, d.span)
        self.bind(s.name, ref, s.span)
        self.input_refs.append((ref, ttype))
        self.graph.aliases.append((s.name, self.graph.node(ref.node).outputs[0]))

    def _input_dims(self, t: ast.TensorTypeExpr) -> tuple:
        """An input's dimensions; a leading `*` (or `*name`, which names them) stands for any number
        of leading dimensions, so one block serves [B, d] and [B, S, d] alike."""
        dims = []
        for i, d in enumerate(t.dims):
            if not isinstance(d, ast.StarDim):
                dims.append(self._dim(d, new_symbols=True))
                continue
            if i != 0:
                raise error(INVALID_DIMENSION, f"`{d}` stands for the leading dimensions, so it comes first", d.span,
                            hint="write it like `in x: [*, d]`")
            placeholder = star(d.name)
            if d.name is not None and self.lookup(d.name) is not placeholder:
                self.bind(d.name, placeholder, d.span)
            dims.append(placeholder)
        return tuple(dims)

    def _dim(self, e: ast.Expr, new_symbols: bool) -> Dim:
        value = Evaluator(self, new_symbols=new_symbols).eval(e)
        if isinstance(value, Callee):
            raise error(INVALID_DIMENSION, f"`{value.name}` names {'an op' if value.kind == 'op' else 'a block'}, "
                        f"so it cannot be a dimension", e.span,
                        hint=f"name the size with a name no block or op uses, like `{value.name}_len`")
        if isinstance(value, float) and isinstance(e, ast.Name) and e.id in self.spans:
            # a `let` made the float: that line is the one to edit; its later uses stay silent
            made = self.spans[e.id]
            self.env[e.id] = _POISON
            raise error(INVALID_DIMENSION, f"`{e.id}` is the float {show(value)}, so it cannot be a dimension", made,
                        hint="use // for integer division", notes=(Note(e.span, "used as a dimension here"),))
        if isinstance(value, bool) or not isinstance(value, (int, Dim)):
            raise error(INVALID_DIMENSION, f"a dimension must be an integer or a symbol, got {kind_of(value)} {show(value)}",
                        e.span, hint="use // for integer division" if isinstance(value, float) else None)
        d = dim(value)
        if d.is_number and (not d.is_int or d <= 0):
            raise error(INVALID_DIMENSION, f"dimension {d} must be a positive integer", e.span)
        return d

    def _tensor_type(self, t: ast.TensorTypeExpr) -> TensorType:
        return TensorType(tuple(self._dim(d, new_symbols=False) for d in t.dims), t.dtype or "float")

    def _let(self, s: ast.Let, errors) -> None:
        value = self.evaluator.eval(s.value)
        if isinstance(value, (TensorRef, tuple)):
            raise error(TYPE_ERROR, "`let` binds compile-time values; tensors are bound with `name = ...`", s.span)
        self.bind(s.name, value, s.span)
        if not self.looping:
            self.graph.lets[s.name] = value

    def _assign(self, s: ast.Assign, errors) -> None:
        value = self.evaluator.eval(s.value, s.targets)
        values = value if isinstance(value, tuple) else (value,)
        if len(values) != len(s.targets):
            raise error(RESULT_COUNT, f"{len(s.targets)} names on the left, but the right side gives "
                        f"{len(values)} value{'s' if len(values) != 1 else ''}", s.span)
        for name, v in zip(s.targets, values):
            if isinstance(v, Layer) and v.name is None:
                v = replace(v, name=name)
            self.bind(name, v, s.span)

    def _output(self, s: ast.Output, errors) -> None:
        if s.value is None:
            value = Evaluator(self).eval(ast.Name(s.span, s.name))
        else:
            value = Evaluator(self).eval(s.value, (s.name,))
            self.bind(s.name, value, s.span)
        if not isinstance(value, TensorRef):
            raise error(EXPECTED_TENSOR, f"output `{s.name}` must be a tensor, got a {kind_of(value)}", s.span)
        if any(o.name == s.name for o in self.graph.outputs):
            raise error(DUPLICATE_NAME, f"output `{s.name}` is declared twice", s.span)
        declared = self._tensor_type(s.type) if s.type else None
        self.graph.outputs.append(OutputDecl(s.name, value.node, value.index, s.span, declared, self.guard))

    def _if(self, s: ast.If, errors) -> None:
        cond = Evaluator(self).need_bool(s.cond)
        key = condition_key(s)
        self.graph.conditions[key] = s
        self.graph.decisions.append((key, cond))
        if _holds_output(s.then) or _holds_output(s.orelse):
            self.graph.output_guard += ((key, cond),)
        saved, self.guard = self.guard, self.guard + ((key, cond),)
        try:
            self.run(s.then if cond else s.orelse, errors)
        finally:
            self.guard = saved

    def _for(self, s: ast.For, errors) -> None:
        values = Evaluator(self).eval(s.iterable)
        if not isinstance(values, list):
            raise error(TYPE_ERROR, f"`for` runs over a list, like `range(n)`, got {kind_of(values)} {show(values)}",
                        s.iterable.span)
        if s.var in self.env:
            raise error(DUPLICATE_NAME, f"`{s.var}` is already defined", s.span, hint="name the loop variable differently")
        layer_stmt = _first_non_static(s.body)
        if layer_stmt is not None:
            raise error(MISPLACED_STATEMENT, "a `for` body may only hold `let`, `require`, `rename`, `if` and `for`",
                        layer_stmt.span, hint="a stack of layers is `name = repeat(n, i) Layer(...)(x)`")
        for value in values:
            self.budget.step(s.span)
            reported = len(errors)
            self.looping += 1
            try:
                with self.scoped({s.var: value}):
                    self.run(s.body, errors)
            finally:
                self.looping -= 1
            if len(errors) > reported:
                return          # the same mistake again in every pass would only repeat the message

    def _rename(self, s: ast.Rename, errors) -> None:
        source, target = self._interpolate(s.source, s.span), self._interpolate(s.target, s.span)
        # Dotted components of letters, digits, _ and {placeholders} (also inside one, as in
        # "encoder_layer_{i}"); the new name may be empty: the prefix is dropped.
        for text in (source, target) if target else (source,):
            if not re.fullmatch(_KEY_PREFIX, text):
                raise error(BAD_RENAME, f"`{text}` is not a checkpoint key prefix", s.span,
                            hint='write dotted names with {placeholders}, like "encoder.layer.{i}.attention."')
        if re.search(r"\}\{", source):
            raise error(BAD_RENAME, f"`{source}` has two placeholders side by side, which no key can split", s.span)
        placeholders = re.findall(r"\{(\w+)\}", source)
        repeated = sorted({name for name in placeholders if placeholders.count(name) > 1})
        if repeated:
            raise error(BAD_RENAME, f"placeholder {{{repeated[0]}}} appears twice in the reference name", s.span,
                        hint="each {placeholder} matches one key component; give the second one another name")
        if set(re.findall(r"\{(\w+)\}", target)) - set(placeholders):
            raise error(BAD_RENAME, "every {placeholder} of the new name must appear in the reference name", s.span)
        self.graph.renames.append(Rename(source, target, s.span, self._load_shape(s.shape)))

    def _load_shape(self, e: ast.Expr | None) -> tuple[int, ...] | None:
        """The shape of `rename ... as [1, 1, d]`: positive ints, at most one -1."""
        if e is None:
            return None
        value = Evaluator(self).eval(e)
        if not (isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool)
                                                          and (v > 0 or v == -1) for v in value)
                and value.count(-1) <= 1):
            raise error(BAD_RENAME, f"`as` takes the shape to load into, a list of positive ints (one may be -1), "
                        f"got {show(value)}", e.span, hint="like `as [1, 1, d]`")
        return tuple(value)

    def _interpolate(self, text: str, span: Span) -> str:
        """`{name}` naming an int or string in scope (a parameter, `let` or `for` variable)
        becomes its value; any other `{name}` stays a placeholder."""
        def value(match: re.Match) -> str:
            name = match.group(1)
            if name not in self.env:
                return match.group(0)
            v = self.lookup(name)
            if isinstance(v, bool) or not isinstance(v, (int, str)):
                raise error(BAD_RENAME, f"`{{{name}}}` in a rename must be an int or a string, got {kind_of(v)} "
                            f"{show(v)}", span, hint="a placeholder takes a name that is not defined here")
            return str(v)
        return re.sub(r"\{(\w+)\}", value, text)

    def _init(self, s: ast.Init, errors) -> None:
        if self.guard or self.looping:
            raise error(MISPLACED_STATEMENT, "`init` statements belong at the top level of a block", s.span,
                        hint="state it outside the `if`/`for`; a rule for a layer that is not built does nothing")
        self.graph.init_rules.append(init_rule(s, Evaluator(self).eval))
    def _decode(self, s: ast.Decode, errors) -> None:
        if self.graph.decode is not None:
            raise error(MISPLACED_STATEMENT, "a model decodes one way: a second `decode`", s.span,
                        hint=f"the first is at line {self.graph.decode.span.line}")
        self.graph.decode = DecodeDecl(s.logits, s.tokens, s.span)

    def _tie(self, s: ast.Tie, errors) -> None:
        self.graph.ties.append(Tie(s.target.parts, s.source.parts, s.span, self.guard))

    # ------------------------------------------------------------------ layers
    def configure(self, callee: Callee, args: list[tuple[str | None, Any, Span]], call: ast.Call) -> Layer:
        written = tuple([ArgExpr(a.name, a.value, value) for a, (_, value, _) in zip(call.args, args)])
        if callee.kind == "block":
            self.budget.instance(call.span)
            block, owner = self.module.scope[callee.name]
            key = self.r.specialize(block, owner, args, call.span)
            return Layer("block", key, BlockCall(block, owner, tuple(args)), call.span,
                         call=CallExpr(call.func, written), guard=self.guard)
        op = REGISTRY[callee.name]
        fields = _match_fields(op.attrs.field_names, written) if written else ()   # `ReLU()`: nothing to match
        return Layer("op", op.name, self._validated(op, args, call.span), call.span,
                     call=CallExpr(call.func, written, fields), guard=self.guard)

    def _validated(self, op, args: list[tuple[str | None, Any, Span]], span: Span) -> Any:
        """validate_attrs, answered from the resolver's cache when the same arguments validated before
        (only successes are kept, so every error is still reported where it is made)."""
        key = attrs_key(op, args)
        if key is None:
            return validate_attrs(op, args, span)
        attrs = self.r.attrs_cache.get(key)
        if attrs is None:
            attrs = self.r.attrs_cache[key] = validate_attrs(op, args, span)
        return attrs

    def apply_op(self, op_name: str, attrs: dict, args: list[TensorRef], span: Span, targets=(),
                 written: dict[str, ArgExpr] | None = None) -> TensorRef:
        op = REGISTRY[op_name]
        call = CallExpr(None, (), tuple((written or {}).items()))
        key = attrs_key(op, [(name, value, span) for name, value in attrs.items()])
        made = self.r.attrs_cache.get(key) if key is not None else None
        if made is None:
            made = op.attrs(**attrs)
            if key is not None:
                self.r.attrs_cache[key] = made
        return self.apply(Layer("op", op_name, made, span, call=call), args, None, targets)

    def apply(self, layer: Layer, args: list[TensorRef | None], call: ast.Call | None, targets) -> Any:
        span = call.span if call else layer.span
        signature = None      # of `layer` once its arity is checked
        if layer.kind == "block" and layer.name is None and isinstance(layer.attrs, BlockCall):
            signature = self._signature(layer)
            self._check_arity(layer, signature[0], args, span)
            specialized, args = self._specialize_aliases(layer, args, span)
            if specialized is not layer:
                layer, signature = specialized, None
        if signature is None:
            signature = self._signature(layer)
            self._check_arity(layer, signature[0], args, span)
        ports, n_out, module_needed = signature
        names = tuple(targets) if len(targets) == n_out else tuple(f"{_hint(layer)}_{i}" if n_out > 1 else _hint(layer) for i in range(n_out))
        module = (layer.name or (targets[0] if targets else self._fresh_module(_hint(layer)))) if module_needed else None
        guard = self.guard + tuple(g for g in layer.guard if g not in self.guard) if layer.guard else self.guard
        node = self.add_node(layer.kind, layer.target, layer.attrs, span, names, module, layer.call, guard)
        if layer.name and module:
            self.graph.layer_spans.setdefault(module, layer.span)
        self._connect(node, args)
        if n_out == 1:          # the common case, without building a tuple through a generator
            return TensorRef(node.id, 0)
        return tuple(TensorRef(node.id, i) for i in range(n_out))

    def _specialize_aliases(self, layer: Layer, args: list, span: Span) -> tuple[Layer, list]:
        """A block given one tensor in several inputs (self-attention's `q` and `kv`) is
        specialized with those inputs as one, so passes see that they read the same value."""
        aliases = {j: args.index(a) for j, a in enumerate(args) if a is not None and args.index(a) != j}
        if not aliases:
            return layer, args
        call: BlockCall = layer.attrs
        key = self.r.specialize(call.block, call.owner, list(call.args), span, aliases=aliases)
        return replace(layer, target=key), [a for j, a in enumerate(args) if j not in aliases]

    def _fresh_module(self, hint: str) -> str:
        """A submodule name for an unnamed layer (`x + Dropout(p)(y)`): never one the block's
        statements bind, nor one an earlier unnamed layer took, so layers are never shared by accident."""
        name, n = hint, 1
        while name in self.user_names or name in self.auto_modules:
            name, n = f"{hint}_{n}", n + 1
        self.auto_modules.add(name)
        return name

    def _signature(self, layer: Layer) -> tuple[tuple, int, bool]:
        """A layer's input ports, its number of outputs, and whether it needs a submodule."""
        if layer.kind == "op":
            op = REGISTRY[layer.target]
            return op.inputs, op.num_outputs(layer.attrs), op.init is not None
        graph = self.r.graphs[layer.target]
        ports = tuple(_Port(graph.node(i).outputs[0], graph.node(i).attrs.optional) for i in graph.inputs)
        return ports, len(graph.outputs), True

    def apply_repeat(self, layers: list[Layer], args, e: ast.Repeat, targets) -> Any:
        first = layers[0]
        ports, n_out, stateful = self._signature(first)
        if not stateful:
            raise error(BAD_REPEAT, f"repeat needs a layer with state; {first.target} has none", first.span,
                        hint="apply a stateless op directly, or repeat a block that uses it")
        self._check_arity(first, ports, args, e.span)
        if not args or args[0] is None:
            raise error(BAD_REPEAT, "repeat passes its first input from layer to layer, so it cannot be none", e.span)
        names = tuple(targets) if len(targets) == n_out else tuple(f"{_hint(first)}_{i}" for i in range(n_out)) if n_out > 1 else (_hint(first),)
        module = targets[0] if targets else self._fresh_module(_hint(first) + "s")
        call = replace(first.call, count=e.count, index=e.index_name) if first.call else None
        node = self.add_node("repeat", first.target, tuple(layers), e.span, names, module, call)
        self._connect(node, args)
        if n_out == 1:          # the common case, without building a tuple through a generator
            return TensorRef(node.id, 0)
        return tuple(TensorRef(node.id, i) for i in range(n_out))

    def apply_scan(self, layer: Layer, header: dict[str, Any], args, e: ast.Scan, targets) -> Any:
        """`scan(axis) Step(...)(xs, init..., other...)`: one block node that codegen lowers to a loop."""
        ports, n_out, _ = self._signature(layer)
        self._check_arity(layer, ports, args, e.span)
        carries = n_out - 1
        if not args or args[0] is None:
            raise error(BAD_SCAN, "scan steps over its first input, so it cannot be none", e.span)
        if len(args) < 1 + carries or any(a is None for a in args[1:1 + carries]):
            names = ", ".join(p.name for p in ports[1:1 + carries])
            raise error(BAD_SCAN, f"`{layer.target}` returns {carries} carried state{'s' if carries != 1 else ''} "
                        f"after its first output, so scan needs an initial {names or 'state'}", e.span,
                        hint="pass the sequence first, then the initial value of each carried state")
        names = tuple(targets) if len(targets) == n_out else tuple(f"{_hint(layer)}_{i}" for i in range(n_out)) if n_out > 1 else (_hint(layer),)
        module = layer.name or (targets[0] if targets else self._fresh_module(_hint(layer)))
        spec = ScanSpec(header["axis"], header["reverse"], carries)
        node = self.add_node("block", layer.target, layer.attrs, e.span, names, module, layer.call,
                             self.guard + tuple(g for g in layer.guard if g not in self.guard))
        node = evolve(node, scan=spec)
        self.graph.replace_node(node)
        if layer.name:
            self.graph.layer_spans.setdefault(module, layer.span)
        self._connect(node, args)
        if n_out == 1:          # the common case, without building a tuple through a generator
            return TensorRef(node.id, 0)
        return tuple(TensorRef(node.id, i) for i in range(n_out))

    def _check_arity(self, layer: Layer, ports, args, span: Span) -> None:
        # the common case, a tensor for every port: nothing below would report
        if len(args) == len(ports):
            for a in args:
                if a is None:
                    break
            else:
                return
        variadic = any(getattr(p, "variadic", False) for p in ports)
        required = [p for p in ports if not p.optional]
        what = f"`{layer.target}`"
        if not variadic and len(args) > len(ports):
            raise error(INPUT_COUNT, f"{what} takes {len(ports)} input{'s' if len(ports) != 1 else ''}, got {len(args)}", span)
        if len(args) < len(required):
            missing = ", ".join(p.name for p in required[len(args):])
            raise error(INPUT_COUNT, f"{what} is missing input{'s' if len(required) - len(args) > 1 else ''} {missing}",
                        span, hint=self._inputs_hint(ports, args, len(required) - len(args)))
        for port, arg in zip(ports, args):
            if arg is None and not port.optional:
                raise error(INPUT_COUNT, f"input `{port.name}` of {what} is required, got none", span)

    def _inputs_hint(self, ports, args, missing: int) -> str:
        """`it takes (q, kv, mask); e.g. (x, x)` when one tensor may play both roles (self-attention)."""
        names = [self.graph.node(a.node).outputs[a.index] for a in args if isinstance(a, TensorRef)]
        takes = f"it takes ({', '.join(p.name for p in ports)})"
        if not names:
            return takes
        return f"{takes}; pass the same tensor twice where it plays both roles: `({', '.join(names + names[-1:] * missing)})`"

    def add_node(self, kind: str, op: str, attrs: Any, span: Span, outputs: tuple[str, ...],
                 module: str | None = None, call: CallExpr | None = None, guard: tuple | None = None) -> Node:
        self.r.node_count += 1
        if self.r.node_count > self.limits.max_nodes:
            raise error(RESOURCE_LIMIT, f"the model has more than {self.limits.max_nodes} nodes", span)
        self.counter += 1
        return self.graph.add(Node(f"n{self.counter}", kind, op, attrs, span, outputs, module,
                                   order=self.graph.g.number_of_nodes(),     # as add() sets it, made once
                                   guard=self.guard if guard is None else guard, call=call))

    def _connect(self, node: Node, args: list[TensorRef | None]) -> None:
        for slot, arg in enumerate(args):
            if arg is not None:
                self.graph.connect(arg.node, arg.index, node.id, slot)


@dataclass(frozen=True)
class _Port:
    name: str
    optional: bool
    variadic: bool = False


_POISON = object()

# The Callee of each primitive op name (REGISTRY's names only, so it stays as small as the registry).
_OP_CALLEES: dict[str, Callee] = {}

# The statement method of each AST statement class (`_assign` for ast.Assign), looked up once per class.
_STATEMENT_METHODS: dict[type, Any] = {}

# A checkpoint key prefix in a `rename`: dotted components, each of name characters and {placeholders}.
_COMPONENT = r"(?:[A-Za-z0-9_]|\{[A-Za-z_][A-Za-z0-9_]*\})+"
_KEY_PREFIX = rf"{_COMPONENT}(?:\.{_COMPONENT})*\.?"

# What a `for` body may hold: it declares, so unrolling it never creates layers.
_STATIC_STATEMENTS = (ast.Let, ast.Require, ast.Rename, ast.If, ast.For, ast.Init)


def _first_non_static(stmts) -> ast.Stmt | None:
    for stmt in stmts:
        if not isinstance(stmt, _STATIC_STATEMENTS):
            return stmt
        nested = _first_non_static(stmt.then + stmt.orelse) if isinstance(stmt, ast.If) else None
        if nested is not None:
            return nested
    return None


def condition_key(s: ast.If) -> str:
    """A static `if`, named by where it is written (one key for every specialization)."""
    return f"{s.span.file}:{s.span.line}:{s.span.col}"


def _holds_output(stmts) -> bool:
    """Whether a branch declares an output, directly or in a nested `if`."""
    return any(isinstance(s, ast.Output) or (isinstance(s, ast.If) and (_holds_output(s.then) or _holds_output(s.orelse)))
               for s in stmts)


def _match_fields(fields: tuple[str, ...], written: tuple[ArgExpr, ...]) -> tuple[tuple[str, ArgExpr], ...]:
    """An op's arguments as written, matched to its attribute fields (positional ones in order)."""
    for a in written:
        if a.name is not None:
            break
    else:                   # the common case, positional arguments only
        return tuple(zip(fields, written))
    positional = [a for a in written if a.name is None]
    matched = list(zip(fields, positional))
    matched += [(a.name, a) for a in written if a.name is not None and a.name in fields]
    return tuple(matched)


def _bound_names(stmts) -> set[str]:
    """Every name a statement list binds, in any branch or loop body."""
    names: set[str] = set()
    for stmt in stmts:
        kind = type(stmt)
        if kind is ast.Assign:          # the commonest statements, without the isinstance chain
            names.update(stmt.targets)
        elif kind is ast.Let:
            names.add(stmt.name)
        elif isinstance(stmt, ast.Assign):
            names.update(stmt.targets)
        elif isinstance(stmt, (ast.Input, ast.Output, ast.Let)):
            names.add(stmt.name)
        elif isinstance(stmt, ast.If):
            names |= _bound_names(stmt.then) | _bound_names(stmt.orelse)
        elif isinstance(stmt, ast.For):
            names |= _bound_names(stmt.body)
    return names


def _hint(layer: Layer) -> str:
    """A variable name for an unnamed result: `ReLU` -> `relu`, `Conv2d` -> `conv2d`,
    block `MultiHeadAttention2` -> `multi_head_attention2`."""
    if layer.kind == "op":
        return layer.target.lower()
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", layer.target).lower()
