"""graphc.printing: debugprint, pprint, to_networkx, to_dot."""

from __future__ import annotations

import doctest
import io
import sys

import networkx as nx
import numpy as np
import pytest

import graphc as gc
import graphc.tensor as gt
from tests.helpers import neg_chain
from graphc import printing


def _graph():
    x, y = gt.dvector("x"), gt.dvector("y")
    return x, y, gt.exp(x) * y + gt.exp(x)


# --- debugprint -------------------------------------------------------------------------------

def test_debugprint_tree_ids_types_and_back_references():
    x, y, out = _graph()
    text = printing.debugprint(out, file="str")
    assert text == (
        "add [id A] float64[?]\n"
        " |mul [id B] float64[?]\n"
        " | |exp [id C] float64[?]\n"
        " | | |x [id D] float64[?]\n"
        " | |y [id E] float64[?]\n"
        " |*C exp"
    )


def test_debugprint_writes_to_stdout_or_a_file_and_returns_the_text(capsys):
    x, y, out = _graph()
    text = printing.debugprint(out)
    assert capsys.readouterr().out == text + "\n"
    buffer = io.StringIO()
    assert printing.debugprint(out, file=buffer) == text
    assert buffer.getvalue() == text + "\n"
    printing.debugprint(out, file="str")
    assert capsys.readouterr().out == ""


def test_debugprint_without_ids_or_types():
    x, y, out = _graph()
    text = printing.debugprint(out, file="str", ids=False, print_type=False)
    assert text.splitlines() == ["add", " |mul", " | |exp", " | | |x", " | |y", " |exp ..."]


def test_debugprint_depth_limits_the_levels():
    x, y, out = _graph()
    assert printing.debugprint(out, file="str", depth=0) == "add [id A] float64[?]"
    assert printing.debugprint(out, file="str", depth=1).splitlines() == [
        "add [id A] float64[?]", " |mul [id B] float64[?]", " |exp [id C] float64[?]"]


def test_debugprint_a_list_shares_ids_between_outputs():
    x, y, out = _graph()
    text = printing.debugprint([out, gt.exp(x)], file="str")
    assert text.splitlines()[-1] == "*C exp"


def test_debugprint_labels_ops_args_constants_shared_and_names():
    w = gc.shared(np.ones((2, 3), "float32"), name="W")
    x = gt.fmatrix("x")
    total = (x * w + 2).sum(axis=1)
    total.name = "total"
    text = printing.debugprint(total, file="str")
    lines = text.splitlines()
    assert lines[0] == "sum{(1,), False} [id A] float32[?] 'total'"
    assert "shared W [id" in text
    assert "constant 2.0 [id" in text and "float32[]" in text
    assert "dimshuffle{x, x}" in text


def test_debugprint_of_a_function_shows_outputs_then_updates():
    x = gt.dvector("x")
    count = gc.shared(np.int64(0), name="count")
    acc = gc.shared(np.zeros(3), name="acc")
    f = gc.function([x], gt.exp(x).sum(), updates=[(count, count + 1), (acc, acc + gt.exp(x))])
    text = printing.debugprint(f, file="str")
    roots = [line for line in text.splitlines() if not line.startswith(" ")]
    assert len(roots) == 3
    assert roots[0].startswith("sum{")
    assert roots[1].endswith("<- update of count")
    assert roots[2].endswith("<- update of acc")
    assert "*" in text  # exp(x) is shared by the output and the second update


def test_debugprint_marks_an_update_equal_to_an_output():
    w = gc.shared(np.zeros(2), name="w")
    f = gc.function([], w + 1, updates=[(w, w + 1)])
    lines = printing.debugprint(f, file="str").splitlines()
    assert lines[0] == "add [id A] float64[?]"
    assert lines[-1] == "*A add <- update of w"


def test_debugprint_rejects_non_nodes():
    with pytest.raises(TypeError, match="debugprint"):
        printing.debugprint([np.zeros(2)], file="str")


def test_debugprint_of_a_100k_chain_needs_no_recursion():
    limit = sys.getrecursionlimit()
    x = gt.dvector("x")
    y = neg_chain(x, 100_000)
    text = printing.debugprint(y, file="str", print_type=False)
    lines = text.splitlines()
    assert len(lines) == 100_001
    assert lines[-1].endswith(" |x [id " + printing._letters(100_000) + "]")
    # indentation is capped: lines stay short however deep the graph is
    assert max(len(line) for line in lines) < 200
    assert "levels)" in lines[-1]
    assert sys.getrecursionlimit() == limit


@pytest.mark.parametrize("number, letters", [(0, "A"), (25, "Z"), (26, "BA"), (26 * 26, "BAA")])
def test_short_ids(number, letters):
    assert printing._letters(number) == letters


# --- pprint -----------------------------------------------------------------------------------

@pytest.mark.parametrize("build, expected", [
    (lambda x, y: x + y * 2, "x + y * 2.0"),
    (lambda x, y: (x + y) * 2, "(x + y) * 2.0"),
    (lambda x, y: x - (y - x), "x - (y - x)"),
    (lambda x, y: (x - y) - x, "x - y - x"),
    (lambda x, y: x ** (y ** 2), "x ** y ** 2.0"),
    (lambda x, y: (x ** y) ** 2, "(x ** y) ** 2.0"),
    (lambda x, y: -x ** 2, "-x ** 2.0"),
    (lambda x, y: (-x) ** 2, "(-x) ** 2.0"),
    (lambda x, y: gt.exp(-(x + 1)) / y, "exp(-(x + 1.0)) / y"),
    (lambda x, y: x * -1.0, "x * -1.0"),
    (lambda x, y: gt.lt(x, y + 1), "x < y + 1.0"),
    (lambda x, y: x.sum(axis=0), "sum{(0,), False}(x)"),
    (lambda x, y: gt.maximum(x, y), "maximum(x, y)"),
])
def test_pprint_infix(build, expected):
    x, y = gt.dvector("x"), gt.dvector("y")
    assert printing.pprint(build(x, y)) == expected


def test_pprint_unnamed_leaves_and_shared_subexpressions():
    x = gt.dvector()
    assert printing.pprint(gt.exp(x)) == "exp(<input float64[?]>)"
    y = gt.dvector("y")
    for _ in range(30):  # 2**30 leaves if expanded: long shared parts get bound once
        y = y * 1.5 + y
    text = printing.pprint(y)
    assert len(text) < 20_000
    assert text.startswith("$1 = ")


def test_pprint_rejects_non_nodes():
    with pytest.raises(TypeError, match="pprint"):
        printing.pprint("x")


# --- networkx and dot -------------------------------------------------------------------------

def test_to_networkx_nodes_edges_and_positions():
    x, y, out = _graph()
    graph = printing.to_networkx(out)
    assert isinstance(graph, nx.DiGraph)
    assert graph.number_of_nodes() == 5 and graph.number_of_edges() == 5
    assert nx.is_directed_acyclic_graph(graph)
    by_op = {data["op"]: n for n, data in graph.nodes(data=True) if data["op"] != "input"}
    names = {data["name"]: n for n, data in graph.nodes(data=True) if data["op"] == "input"}
    assert graph.nodes[by_op["add"]]["node"] is out
    assert graph.nodes[by_op["add"]]["type"] == "float64[?]"
    assert graph.edges[names["y"], by_op["mul"]]["position"] == 1
    assert graph.edges[by_op["exp"], by_op["add"]]["position"] == 1
    assert list(nx.topological_sort(graph))[-1] == by_op["add"]


def test_to_networkx_records_an_input_used_twice():
    x = gt.dvector("x")
    graph = printing.to_networkx(x * x)
    ((src, dst, data),) = graph.edges(data=True)
    assert data["positions"] == (0, 1) and data["position"] == 0


def test_to_networkx_of_a_function_includes_updates():
    x = gt.dvector("x")
    acc = gc.shared(np.zeros(3), name="acc")
    f = gc.function([x], x.sum(), updates=[(acc, acc + x)])
    ops = sorted(d["op"] for _, d in printing.to_networkx(f).nodes(data=True))
    assert ops == ["add", "input", "shared", "sum"]


def test_to_dot():
    x, y, out = _graph()
    out.name = 'say "hi"'
    text = printing.to_dot(out)
    assert text.startswith('digraph "graphc" {\n') and text.endswith("}\n")
    assert text.count("->") == 5
    assert text.count("shape=ellipse") == 2 and text.count("shape=box") == 3
    assert '\\"hi\\"' in text  # quotes are escaped
    assert "[label=1]" in text  # input positions on edges of multi-input ops


def test_module_examples_run():
    result = doctest.testmod(printing)
    assert result.attempted > 0 and result.failed == 0
