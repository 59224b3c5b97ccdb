"""Looking at graphs: ``debugprint`` (an indented tree), ``pprint`` (infix text),
``to_networkx`` and ``to_dot`` (for drawing).

Every walk here is iterative, so a graph of any depth prints without touching Python's
recursion limit.

>>> import graphc as gc, graphc.tensor as gt
>>> x = gt.dvector("x")
>>> print(gc.printing.debugprint(gt.exp(x) + x, file="str"))
add [id A] float64[?]
 |exp [id B] float64[?]
 | |x [id C] float64[?]
 |*C x
>>> gc.printing.pprint(gt.exp(x) * 2 + x)
'exp(x) * 2.0 + x'
"""

from __future__ import annotations

import sys

from .ir.node import CONSTANT, INPUT, SHARED, Node, toposort

__all__ = ["debugprint", "pprint", "to_dot", "to_networkx"]

# deeper trees keep only this many indentation levels on screen (and say how many are hidden)
MAX_INDENT_LEVELS = 40
MAX_ARG_CHARS = 60


# --- what a node is called --------------------------------------------------------------------

def arg_str(node: Node) -> str:
    """The op's static parameters as short text ("" when it has none)."""
    arg = node.arg
    if node.is_leaf or arg is None:
        return ""
    parts = arg if isinstance(arg, tuple) else (arg,)
    text = ", ".join(p if isinstance(p, str) else repr(p) for p in parts)
    if len(text) > MAX_ARG_CHARS:
        text = text[: MAX_ARG_CHARS - 3] + "..."
    return text


def op_label(node: Node) -> str:
    """``x`` for a named input, ``shared W``, ``constant 2.0``, ``sum{(0,), False}`` for an op."""
    if node.op is INPUT:
        return node.name or "<input>"
    if node.op is SHARED:
        return f"shared {node.name or '<unnamed>'}"
    if node.op is CONSTANT:
        return f"constant {node.name}" if node.name else f"constant {_value_text(node)}"
    label = node.op.props.get("label")  # ops that print their arg their own way (fused ops)
    if label is not None:
        return label(node)
    arg = arg_str(node)
    return f"{node.op.name}{{{arg}}}" if arg else node.op.name


def _value_text(node: Node) -> str:
    value = node.arg.value
    return repr(value.item()) if value.ndim == 0 else repr(node.arg)


def _letters(number: int) -> str:
    """0 -> A, 25 -> Z, 26 -> BA (Theano's short ids)."""
    digits = []
    while True:
        number, rest = divmod(number, 26)
        digits.append(chr(ord("A") + rest))
        if number == 0:
            return "".join(reversed(digits))


# --- debugprint -------------------------------------------------------------------------------

def _roots(obj) -> list[tuple[Node, str]]:
    """(node, note) for each tree to print: the outputs of a node, a list or a compiled function."""
    from .compile import Function

    if isinstance(obj, Function):
        outputs = obj.fgraph.outputs
        n_out = len(obj.outputs)
        updates = [f"update of {var.name or '<unnamed shared>'}" for var, _ in obj.updates]
        notes = [""] * n_out + updates
        return list(zip(outputs, notes))
    if isinstance(obj, Node):
        return [(obj, "")]
    nodes = list(obj)
    for node in nodes:
        if not isinstance(node, Node):
            raise TypeError(f"debugprint: expected graph nodes, got {type(node).__name__}")
    return [(node, "") for node in nodes]


def _indent(prefix) -> str:
    """Render a linked prefix ``(parent, piece, level)``, keeping only the last levels."""
    pieces = []
    link = prefix
    while link is not None and len(pieces) < MAX_INDENT_LEVELS:
        parent, piece, _ = link
        pieces.append(piece)
        link = parent
    text = "".join(reversed(pieces))
    if link is not None:
        text = f"...({link[2]} levels)" + text
    return text


def _level(prefix) -> int:
    return 0 if prefix is None else prefix[2]


def _push(prefix, piece: str):
    return (prefix, piece, _level(prefix) + 1)


def debugprint(obj, file=None, ids: bool = True, print_type: bool = True, depth: int = -1) -> str:
    """Print a graph as an indented tree and return the text.

    ``obj`` is a node, a list of nodes or a compiled ``Function`` (its rewritten outputs,
    then its updates). A node printed before shows as ``*ID label`` instead of its subtree
    (``label ...`` when ``ids=False``). ``file="str"`` only returns the text; ``depth >= 0``
    limits how many levels below the roots are printed.
    """
    lines: list[str] = []
    short_ids: dict[Node, str | None] = {}
    for root, note in _roots(obj):
        # each entry: (node, prefix of its own line, prefix of its children's lines)
        stack = [(root, None, None)]
        while stack:
            node, own, below = stack.pop()
            root_note = note if own is None else ""
            if node in short_ids:
                suffix = f" <- {root_note}" if root_note else ""
                lines.append(_indent(own) + _seen_line(node, short_ids) + suffix)
                continue
            short_ids[node] = _letters(len(short_ids)) if ids else None
            lines.append(_indent(own) + _line(node, short_ids[node], print_type, root_note))
            if depth >= 0 and _level(own) >= depth:
                continue
            last = len(node.src) - 1
            for i in range(last, -1, -1):
                below_child = _push(below, "  " if i == last else " |")
                stack.append((node.src[i], _push(below, " |"), below_child))
    text = "\n".join(lines)
    if file != "str":
        (file or sys.stdout).write(text + "\n")
    return text


def _seen_line(node: Node, short_ids: dict) -> str:
    short = short_ids[node]
    return f"{op_label(node)} ..." if short is None else f"*{short} {op_label(node)}"


def _line(node: Node, short: str | None, print_type: bool, note: str) -> str:
    parts = [op_label(node)]
    if short is not None:
        parts.append(f"[id {short}]")
    if print_type:
        parts.append(str(node.type))
    if node.name and not node.is_leaf:
        parts.append(repr(node.name))
    if note:
        parts.append(f"<- {note}")
    return " ".join(parts)


# --- pprint -----------------------------------------------------------------------------------

# op name -> (infix symbol, precedence); Python's own operator precedence
BINARY = {
    "pow": ("**", 8),
    "mul": ("*", 6), "true_div": ("/", 6), "int_div": ("//", 6), "mod": ("%", 6),
    "add": ("+", 5), "sub": ("-", 5),
    "and": ("&", 4), "xor": ("^", 3), "or": ("|", 2),
    "lt": ("<", 1), "le": ("<=", 1), "gt": (">", 1), "ge": (">=", 1),
    "eq": ("==", 1), "neq": ("!=", 1),
}
UNARY = {"neg": ("-", 7), "invert": ("~", 7)}
ATOM = 9
# a subexpression used more than once and longer than this is printed once, as $N
SHARE_CHARS = 80


def pprint(node: Node) -> str:
    """The graph of ``node`` as an infix expression (``x * y + exp(x)``).

    Leaves print as their names; long subexpressions used more than once are bound to
    ``$1, $2, ...`` on lines before the expression, so the text stays linear in the graph.
    """
    if not isinstance(node, Node):
        raise TypeError(f"pprint: expected a graph node, got {type(node).__name__}")
    order = toposort([node])
    uses: dict[Node, int] = {}
    for n in order:
        for s in n.src:
            uses[s] = uses.get(s, 0) + 1
    text: dict[Node, tuple[str, int]] = {}
    bindings: list[str] = []
    for n in order:
        if _is_broadcast(n):  # elementwise ops broadcast anyway: print the operand
            text[n] = text[n.src[0]]
            continue
        expr, prec = _infix(n, text)
        if uses.get(n, 0) > 1 and len(expr) > SHARE_CHARS:
            bindings.append(f"${len(bindings) + 1} = {expr}")
            expr, prec = f"${len(bindings)}", ATOM
        text[n] = (expr, prec)
    return "\n".join(bindings + [text[node][0]])


def _is_broadcast(node: Node) -> bool:
    """A dimshuffle that only inserts broadcast axes, keeping the order of the others."""
    if node.op.name != "dimshuffle" or not isinstance(node.arg, tuple):
        return False
    kept = [a for a in node.arg if a != "x"]
    return kept == list(range(node.src[0].ndim))


def _leaf_text(node: Node) -> str:
    if node.name:
        return node.name
    if node.op is CONSTANT:
        return _value_text(node) if node.arg.value.ndim == 0 else f"constant({node.arg!r})"
    return f"<{node.op.name} {node.type}>"


def _infix(node: Node, text: dict) -> tuple[str, int]:
    if node.is_leaf:
        word = _leaf_text(node)
        negative = node.op is CONSTANT and word.startswith("-")
        return word, UNARY["neg"][1] if negative else ATOM
    name = node.op.name
    if name in BINARY and len(node.src) == 2:
        symbol, prec = BINARY[name]
        (left, lp), (right, rp) = text[node.src[0]], text[node.src[1]]
        right_assoc = name == "pow"
        if lp < prec or (lp == prec and right_assoc):
            left = f"({left})"
        if rp < prec or (rp == prec and not right_assoc):
            right = f"({right})"
        return f"{left} {symbol} {right}", prec
    if name in UNARY and len(node.src) == 1:
        symbol, prec = UNARY[name]
        operand, op_prec = text[node.src[0]]
        return (f"{symbol}{operand}" if op_prec >= prec else f"{symbol}({operand})"), prec
    args = ", ".join(text[s][0] for s in node.src)
    return f"{op_label(node)}({args})", ATOM


# --- networkx and DOT -------------------------------------------------------------------------

def _outputs(outputs) -> list[Node]:
    return [node for node, _ in _roots(outputs)]


def to_networkx(outputs):
    """The graph as a ``networkx.DiGraph``.

    Graph nodes are numbered in topological order and carry ``op``, ``kind``, ``arg``,
    ``type``, ``name`` and ``node`` (the graph node itself); each edge goes from an input
    to its user, with ``position`` (the first input slot it fills) and ``positions`` (all of them).
    """
    import networkx as nx

    order = toposort(_outputs(outputs))
    number = {node: i for i, node in enumerate(order)}
    graph = nx.DiGraph()
    for node in order:
        graph.add_node(number[node], op=node.op.name, kind=node.op.kind, arg=arg_str(node),
                       type=str(node.type), name=node.name, node=node)
    for node in order:
        slots: dict[Node, list[int]] = {}
        for position, src in enumerate(node.src):
            slots.setdefault(src, []).append(position)
        for src, positions in slots.items():
            graph.add_edge(number[src], number[node], position=positions[0],
                           positions=tuple(positions))
    return graph


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(outputs, name: str = "graphc") -> str:
    """The graph in Graphviz DOT text: leaves as ellipses, ops as boxes, edges input -> user."""
    order = toposort(_outputs(outputs))
    number = {node: i for i, node in enumerate(order)}
    lines = [f"digraph {_dot_quote(name)} {{", "  rankdir=BT;"]
    for node in order:
        shape = "ellipse" if node.is_leaf else "box"
        label = f"{op_label(node)}\n{node.type}"
        if node.name and not node.is_leaf:
            label += f"\n{node.name}"
        lines.append(f"  n{number[node]} [shape={shape}, label={_dot_quote(label)}];")
    for node in order:
        for position, src in enumerate(node.src):
            edge_label = f" [label={position}]" if len(node.src) > 1 else ""
            lines.append(f"  n{number[src]} -> n{number[node]}{edge_label};")
    lines.append("}")
    return "\n".join(lines) + "\n"
