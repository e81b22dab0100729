# Debugging tools (given, not graded): run this cell, then use them on your own Values.
#   draw_dot(L)            draws the graph behind L, with every node's data and grad;
#   gradcheck(f, [x, y])   compares the gradients of your backward() with central differences.
import math

try:
    import graphviz  # the Python package; showing a graph also needs Graphviz's `dot` program
except ImportError:  # gradcheck works without it
    graphviz = None


def draw_dot(root):
    """The computation graph that produced `root`, as a graphviz.Digraph read left to right.

    One box per Value, with its label (if any), data and grad: after `root.backward()`, the grad
    in the box of v is d(root)/d(v). One small circle per operation, with its `_op`: an arrow from
    each operand into the circle, and one from the circle into its result. Works on any object
    with `data`, `grad`, `_prev` and `_op`. Jupyter and Colab show the returned graph.
    """
    if graphviz is None:
        raise ImportError("draw_dot needs the graphviz package: pip install graphviz, then restart the kernel")
    graph = graphviz.Digraph(graph_attr={"rankdir": "LR"}, node_attr={"shape": "record"})
    drawn, waiting = set(), [root]
    while waiting:  # every node reachable from root through _prev, each drawn once
        v = waiting.pop()
        if id(v) in drawn:
            continue
        drawn.add(id(v))
        box = str(id(v))
        label = getattr(v, "label", "")
        name = f"{label} | " if label else ""
        graph.node(box, f"{{ {name}data {v.data:.4f} | grad {v.grad:.4f} }}")
        into = box
        if v._op:
            into = box + "op"
            graph.node(into, str(v._op), shape="circle")
            graph.edge(into, box)
        for child in v._prev:
            graph.edge(str(id(child)), into)
            waiting.append(child)
    return graph


def gradcheck(f, inputs, h=1e-6, value_class=None):
    """Check backward() against numbers: print one row per input, return the largest error.

    `f` takes a list of Values and returns one Value; `inputs` is a list of floats. For input i:

    - analytic: x_i.grad after f([x_0, x_1, ...]).backward(), on fresh Values;
    - numeric: the central difference of exercise 1, the slope of f between x_i - h and x_i + h
      with every other input fixed:  (f(.., x_i + h, ..) - f(.., x_i - h, ..)) / (2 h);
    - relative error: |analytic - numeric| / max(|analytic|, |numeric|, 1), so gradients smaller
      than 1 are compared absolutely. Below 1e-5 the row gets a ✓, otherwise a ✗.

    `value_class` wraps the inputs; by default it is the `Value` of the notebook, looked up when
    gradcheck runs (this cell defines gradcheck in the notebook, so it sees the notebook's names).
    """
    if value_class is None:
        value_class = globals().get("Value")
    if value_class is None:
        raise NameError("gradcheck needs your Value class: run the cell that defines it, or pass value_class=")

    def f_at(i, step):
        """f's output as a float, with input i moved by step (fresh Values, no backward)."""
        moved = list(inputs)
        moved[i] += step
        return f([value_class(x) for x in moved]).data

    leaves = [value_class(x) for x in inputs]
    f(leaves).backward()
    print(f"{'input':>5} {'value':>12} {'analytic':>16} {'numeric':>16} {'rel. error':>11}")
    largest = 0.0
    for i, x in enumerate(inputs):
        analytic = leaves[i].grad
        numeric = (f_at(i, h) - f_at(i, -h)) / (2 * h)
        error = abs(analytic - numeric) / max(abs(analytic), abs(numeric), 1.0)
        if not math.isfinite(error):  # a nan or inf gradient is as wrong as it gets
            error = math.inf
        largest = max(largest, error)
        mark = "✓" if error < 1e-5 else "✗"
        print(f"{i:>5} {x:>12.6g} {analytic:>16.10g} {numeric:>16.10g} {error:>11.2e} {mark}")
    return largest


# ---- end of the course's debugging tools ----
