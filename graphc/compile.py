"""``graphc.function`` and ``graphc.shared``: from symbolic outputs to a Python callable.

``function`` clones the user's graph, substitutes ``givens``, appends the update
expressions as extra outputs, rewrites the graph for the chosen mode, and hands it to a
backend. A call validates the inputs, runs the program, and only then writes the
updates, so a failing call changes no shared variable.
"""

from __future__ import annotations

import warnings

import numpy as np

from .config import config
from .ir.graph import FunctionGraph
from .ir.node import INPUT, SHARED, Node, SharedVariable, new_shared, substitute, toposort
from .ir.provenance import user_trace
from .ir.types import TensorType, shape_str
from .opdefs.common import as_tensor



def shared(value, name: str | None = None, borrow: bool = False, shape=None, dtype=None) -> SharedVariable:
    """A variable whose value persists between calls (model parameters, counters).

    The value is copied unless ``borrow=True``. Its static shape is unknown unless given by
    ``shape=`` (so ``set_value`` may change it); the dtype is the value's.
    """
    arr = np.array(value, dtype=dtype, copy=not borrow) if dtype is not None or not borrow else np.asarray(value)
    if arr.dtype.name == "float16":
        arr = arr.astype("float32")
    typ = TensorType(arr.dtype.name, tuple(shape) if shape is not None else (None,) * arr.ndim)
    if not typ.accepts_shape(arr.shape):
        raise ValueError(f"shared: value of shape {arr.shape} contradicts shape={shape_str(typ.shape)}")
    return new_shared(arr, typ, name)


class Function:
    """A compiled function. Call it positionally or by input name."""

    def __init__(self, inputs, outputs, updates=None, givens=None, allow_input_downcast=False,
                 on_unused_input="raise", mode=None, name=None, device=None, no_default_updates=False,
                 return_device_arrays=False):
        self.name = name
        self._cuda = None  # the CUDA call path (graphc.cuda.function), for device="cuda"
        from .rewrite import as_mode

        try:
            self.mode = as_mode(mode or config.mode)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"function: {exc}") from None
        self.device = device or config.device
        if self.device != "cpu":
            _require_device(self.device)
        self._return_device_arrays = bool(return_device_arrays)
        self.allow_input_downcast = allow_input_downcast
        self.inputs = _check_inputs(inputs)
        self.unpack_single = not isinstance(outputs, (list, tuple))
        outs = [as_tensor(o) for o in ([outputs] if self.unpack_single else list(outputs))]
        self.outputs = outs
        self.updates = _check_updates(updates)
        all_outputs = outs + [u for _, u in self.updates]
        givens = _check_givens(givens) if givens else {}
        if givens:
            all_outputs = substitute(all_outputs, givens)
        order = toposort(all_outputs)  # one walk serves the checks below and the graph
        if no_default_updates is not True:
            extra = _default_updates(order, self.updates, no_default_updates or (), givens)
            if extra:
                self.updates += extra
                all_outputs += [u for _, u in extra]
                order = toposort(all_outputs)
        _check_unused(self.inputs, order, on_unused_input)
        self.fgraph = FunctionGraph(self.inputs, all_outputs, order)
        self._rewrite()
        self._build_program()
        # the shared variables the program reads or writes
        self._state = [n for n in self.fgraph.nodes if n.op is SHARED] + [v for v, _ in self.updates]
        self._names = {v.name: i for i, v in enumerate(self.inputs) if v.name}
        # (dtype, ndim, static shape if any dim is static) per input, for _fast_bind
        self._signature = [(np.dtype(v.dtype), v.ndim, v.type.shape if any(d is not None for d in v.type.shape)
                            else None) for v in self.inputs]
        self._direct = self._direct_kernel()

    def _rewrite(self) -> None:
        from .rewrite import rewrite_graph

        self.graph_cache = "off"
        if self.mode.name == "reference" or not config.disk_cache or config.print_rewrites:
            rewrite_graph(self.fgraph, self.mode)
            return
        from .runtime import graph_cache

        cached = graph_cache.load(self.fgraph, self.mode)
        if cached is not None:
            self.fgraph.set_outputs(cached, "graph cache")
            self.graph_cache = "hit"
            return
        rewrite_graph(self.fgraph, self.mode)
        self.graph_cache = "miss"  # stored once the program is built (with its kernels)

    def _build_program(self) -> None:
        from .runtime.reference import Program

        n_out = len(self.outputs)
        update_vars = {n_out + i: var for i, (var, _) in enumerate(self.updates)}
        compiled = self.mode.name == "FAST_RUN" and self.device == "cpu"
        if self.device == "cuda":
            from .cuda.function import CudaRunner

            self._cuda = CudaRunner(self, self._return_device_arrays)
            self.program = self._cuda.program
        elif compiled:
            from .runtime.cpu import CpuProgram

            known = getattr(self.fgraph, "kernel_table", None) if self.graph_cache == "hit" else None
            self.program = CpuProgram(self.fgraph.inputs, self.fgraph.outputs, inplace=self.mode.inplace,
                                      update_vars=update_vars, kernel_table=known)
        else:
            self.program = Program(self.fgraph.inputs, self.fgraph.outputs, inplace=self.mode.inplace,
                                   update_vars=update_vars)
        if self.graph_cache == "miss":
            from .runtime import graph_cache

            graph_cache.store(self.fgraph, self.program.kernel_table if compiled else None)

    def _direct_kernel(self):
        """The program's ``direct`` call when its one result is always a new array and the
        function has no updates or shared state: a call then needs no aliasing checks."""
        if self.updates or self._state or self._cuda is not None:
            return None
        return getattr(self.program, "direct", None)  # a CpuProgram's (not the reference's)

    # --- calling ---------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        direct = self._direct
        if direct is not None and not kwargs:
            values = self._fast_bind(args)
            if values is not None:
                result = direct(values)
                return result if self.unpack_single else [result]
        if self._cuda is not None:
            return self._cuda(self, args, kwargs)
        values = None if kwargs else self._fast_bind(args)
        if values is None:
            values = self._bind(args, kwargs)
        results = self.program.run(values)
        if not self.updates and len(results) == 1:
            result = results[0]
            if result.base is None and result.flags.writeable:
                for value in values:
                    if result is value:
                        break
                else:
                    if not self._state or not any(result is s.container[0] for s in self._state):
                        return result if self.unpack_single else [result]
        n_out = len(self.outputs)
        # no result may alias an input, a shared value or another result
        protected = list(values) + [s.container[0] for s in self._state]
        fresh = []
        for i, result in enumerate(results):
            in_place = i >= n_out and result is self.updates[i - n_out][0].container[0]
            fresh.append(result if in_place else _fresh(result, protected))
            protected.append(fresh[-1])
        outs = fresh[:n_out]
        for (var, _), new in zip(self.updates, fresh[n_out:]):
            var.container[0] = new
        return outs[0] if self.unpack_single else outs

    def _fast_bind(self, args) -> list | None:
        """The arguments themselves when each is already a NumPy array of the input's exact
        dtype and ndim, in native byte order, of an accepted shape (the common case); else None."""
        if len(args) != len(self.inputs):
            return None
        for value, (dtype, ndim, static) in zip(args, self._signature):
            if type(value) is not np.ndarray or value.dtype is not dtype or value.ndim != ndim:
                return None
            if static and any(s is not None and s != v for s, v in zip(static, value.shape)):
                return None
        return list(args)

    def _bind(self, args, kwargs) -> list[np.ndarray]:
        return [self._convert(i, v) for i, v in enumerate(self._arrange(args, kwargs))]

    def _arrange(self, args, kwargs) -> list:
        """The call's values in input order (positional, then by name), checked for count."""
        if len(args) > len(self.inputs):
            raise TypeError(f"{self._label()} takes {len(self.inputs)} inputs, got {len(args)}")
        values = list(args) + [None] * (len(self.inputs) - len(args))
        for key, value in kwargs.items():
            if key not in self._names:
                raise TypeError(f"{self._label()} has no input named {key!r} (inputs: {list(self._names)})")
            index = self._names[key]
            if index < len(args):
                raise TypeError(f"{self._label()}: input {key!r} given twice")
            values[index] = value
        missing = [self._input_label(i) for i, v in enumerate(values) if v is None]
        if missing:
            raise TypeError(f"{self._label()}: missing input(s) {', '.join(missing)}")
        return values

    def _convert(self, index: int, value) -> np.ndarray:
        var = self.inputs[index]
        return convert_input(value, var.type, self._input_label(index), self.allow_input_downcast)

    def _label(self) -> str:
        return f"function {self.name!r}" if self.name else "function"

    def _input_label(self, index: int) -> str:
        var = self.inputs[index]
        return f"{var.name!r}" if var.name else f"#{index}"

    def __repr__(self) -> str:
        return f"<graphc.Function {self.name or ''} inputs={[v.name for v in self.inputs]} mode={self.mode.name}>"


def convert_input(value, typ: TensorType, label: str, allow_downcast: bool) -> np.ndarray:
    """Check and convert one input value; errors name the input, the types and the shapes."""
    is_array = isinstance(value, np.ndarray)
    arr = value if is_array else np.asarray(value)
    if arr.ndim != typ.ndim:
        raise TypeError(f"input {label}: expected a {typ.ndim}-d {typ.dtype} array, got ndim {arr.ndim} "
                        f"(shape {arr.shape})")
    if arr.dtype.name != typ.dtype:
        # arrays must cast safely; Python numbers and lists only need to keep their value
        if allow_downcast or (is_array and np.can_cast(arr.dtype, typ.dtype, "safe")):
            arr = arr.astype(typ.dtype)
        elif not is_array and np.can_cast(arr.dtype, typ.dtype, "same_kind"):
            with np.errstate(over="ignore", invalid="ignore"):
                cast = arr.astype(typ.dtype)
            if not np.array_equal(cast, arr, equal_nan=arr.dtype.kind == "f"):
                raise TypeError(f"input {label}: value {value!r} does not fit {typ.dtype}")
            arr = cast
        else:
            raise TypeError(f"input {label}: a {arr.dtype} value cannot be cast safely to {typ.dtype}; "
                            "cast it first or pass allow_input_downcast=True")
    if not typ.accepts_shape(arr.shape):
        raise ValueError(f"input {label}: shape {arr.shape} contradicts the static shape {shape_str(typ.shape)}")
    if not arr.dtype.isnative:  # compiled kernels read native byte order
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _fresh(value: np.ndarray, protected) -> np.ndarray:
    """``value``, copied if it may alias an input, a shared value or a constant."""
    if value.base is not None or not value.flags.writeable or any(value is p for p in protected):
        return value.copy()
    return value


def _check_inputs(inputs) -> list[Node]:
    if isinstance(inputs, Node):
        raise TypeError("function: inputs must be a list of variables, e.g. function([x], y)")
    inputs = list(inputs)
    for var in inputs:
        if not isinstance(var, Node) or var.op is not INPUT:
            if isinstance(var, Node) and var.op is SHARED:
                raise TypeError(f"function: shared variable {var.name or var} cannot be an input; "
                                "its value is implicit (use set_value, or givens)")
            raise TypeError(f"function: inputs must be symbolic input variables, got {var!r}")
    if len({id(v) for v in inputs}) != len(inputs):
        raise ValueError("function: the same input is listed twice")
    return inputs


def _check_updates(updates) -> list[tuple[SharedVariable, Node]]:
    if updates is None:
        return []
    pairs = list(updates.items()) if isinstance(updates, dict) else list(updates)
    seen = set()
    out = []
    trace = user_trace()
    for pair in pairs:
        var, expr = pair
        if not isinstance(var, SharedVariable):
            raise TypeError(f"updates: {var!r} is not a shared variable")
        if id(var) in seen:
            raise ValueError(f"updates: shared variable {var.name or var} is updated twice (at {trace})")
        seen.add(id(var))
        expr = as_tensor(expr)
        if expr.dtype != var.dtype or expr.ndim != var.ndim:
            raise TypeError(
                f"updates: the update of {var.name or 'a shared variable'} has type {expr.type} but the "
                f"variable is {var.type}; updates must keep dtype and ndim (cast the expression, e.g. "
                f".astype('{var.dtype}'))" + (f"\n  update created at {expr.trace}" if expr.trace else ""))
        if any(a is not None and b is not None and a != b for a, b in zip(var.type.shape, expr.type.shape)):
            raise ValueError(f"updates: the update of {var.name} has static shape {shape_str(expr.type.shape)}, "
                             f"the variable {shape_str(var.type.shape)}")
        out.append((var, expr))
    return out


def _default_updates(order, updates, excluded, givens) -> list[tuple[SharedVariable, Node]]:
    """The ``default_update`` of every shared variable the graph (``order``: its nodes) reads
    that neither has an update from the caller nor is ``excluded``; found again in what those
    updates read."""
    skip = {id(v) for v, _ in updates} | {id(v) for v in excluded}
    found: list[tuple[SharedVariable, Node]] = []
    nodes = order
    while nodes:
        new = []
        for node in nodes:
            if node.op is SHARED and id(node) not in skip and node.default_update is not None:
                skip.add(id(node))
                expr = node.default_update
                new.append(substitute([expr], givens)[0] if givens else expr)
                found.append((node, new[-1]))
        nodes = toposort(new) if new else []
    return _check_updates(found)


def _check_givens(givens) -> dict:
    pairs = list(givens.items()) if isinstance(givens, dict) else list(givens)
    mapping = {}
    for old, new in pairs:
        new = as_tensor(new)
        if not isinstance(old, Node):
            raise TypeError(f"givens: keys must be variables, got {old!r}")
        if new.ndim != old.ndim or new.dtype != old.dtype:
            if new.ndim == old.ndim and np.can_cast(new.dtype, old.dtype, "safe"):
                new = new.astype(old.dtype)
            else:
                raise TypeError(f"givens: {old.name or old} of type {old.type} cannot be replaced by {new.type}")
        mapping[old] = new
    return mapping


def _check_unused(inputs, order, policy: str) -> None:
    """``order``: every node of the graph."""
    if policy not in ("raise", "warn", "ignore"):
        raise ValueError(f"on_unused_input must be 'raise', 'warn' or 'ignore', got {policy!r}")
    used = {id(n) for n in order}
    for i, var in enumerate(inputs):
        if id(var) not in used and policy != "ignore":
            msg = (f"function: input {var.name or '#' + str(i)} is not used to compute the outputs; "
                   "pass on_unused_input='ignore' to allow this")
            if policy == "raise":
                raise ValueError(msg)
            warnings.warn(msg, stacklevel=4)


def _require_device(device: str) -> None:
    if device == "cuda":
        from .runtime.device import require_cuda

        require_cuda()
    else:
        raise ValueError(f"function: unknown device {device!r} (use 'cpu' or 'cuda')")


def function(inputs, outputs=None, updates=None, givens=None, allow_input_downcast=False,
             on_unused_input="raise", mode=None, name=None, device=None,
             no_default_updates=False, return_device_arrays=False) -> Function:
    """Compile symbolic ``outputs`` of ``inputs`` into a callable.

    Shared variables of the graph with a ``default_update`` (random states) get that update
    unless ``updates`` gives them one; ``no_default_updates=True`` (or a list of variables)
    turns that off (for all, or for those).

    ``device="cuda"`` (or ``config.device = "cuda"``) runs the rewritten graph on an NVIDIA
    GPU (see docs/cuda.md); its outputs are NumPy arrays unless ``return_device_arrays=True``
    (then pycuda ``GPUArray``s).

    >>> import graphc as gc, graphc.tensor as gt
    >>> x = gt.dvector("x")
    >>> f = gc.function([x], (x ** 2).sum())
    >>> float(f([1.0, 2.0]))
    5.0
    """
    return Function(inputs, [] if outputs is None else outputs, updates, givens, allow_input_downcast,
                    on_unused_input, mode, name, device, no_default_updates, return_device_arrays)
