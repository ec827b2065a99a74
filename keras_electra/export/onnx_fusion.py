"""Graph rewrites that let onnxruntime run LayerNorm and exact GELU as single kernels.

tf2onnx writes Keras' LayerNorm as the ~12 elementwise nodes of
`x·inv + (beta - mean·inv)` with `inv = gamma / sqrt(var + eps)`, and TensorFlow's exact GELU
as `0.5·x·erfc(-x/√2)` (see `onnx._erfc_handler`). Both stay standard ONNX after these
rewrites, so any runtime can read the file:

- each LayerNorm becomes one `LayerNormalization` node (opset 17);
- each GELU becomes `0.5·x·(1 + erf(x/√2))`, the form onnxruntime's own GELU fusion
  recognises when it loads the model.

Patterns that do not match exactly are left as they are (`optimize` returns how many of each
were rewritten), so a new Keras or tf2onnx version can cost speed but never correctness; the
export parity tests compare logits with Keras either way.
"""

from __future__ import annotations

import numpy as np


class _Graph:
    """Producer/consumer indexes over an ONNX graph, and its constant tensors."""

    def __init__(self, graph) -> None:
        from onnx import numpy_helper

        self.graph = graph
        self.constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def op(self, name: str, op_type: str):
        node = self.producer.get(name)
        return node if node is not None and node.op_type == op_type else None

    def only_consumer(self, name: str, op_type: str):
        users = self.consumers.get(name, [])
        return users[0] if len(users) == 1 and users[0].op_type == op_type else None

    def split_const(self, node) -> tuple[str | None, np.ndarray | None]:
        """(the other input, the constant) of a binary node with one constant input."""
        a, b = node.input
        if b in self.constants:
            return a, self.constants[b]
        if a in self.constants:
            return b, self.constants[a]
        return None, None


def _other(node, name: str) -> str | None:
    """The input of a binary node that is not `name` (None when `name` is not an input)."""
    a, b = node.input
    return b if a == name else a if b == name else None


def _match_layer_norm(g: _Graph, reciprocal) -> dict | None:
    """Match Keras' LayerNorm around its `Reciprocal(Sqrt(var + eps))` node."""
    sqrt = g.op(reciprocal.input[0], "Sqrt")
    add_eps = sqrt and g.op(sqrt.input[0], "Add")
    if not add_eps:
        return None
    variance_name, eps = g.split_const(add_eps)
    variance = variance_name and g.op(variance_name, "GlobalAveragePool")
    square = variance and g.op(variance.input[0], "Mul")
    if not square or square.input[0] != square.input[1] or eps is None or eps.size != 1:
        return None
    centred = g.op(square.input[0], "Sub")
    mean = centred and g.op(centred.input[1], "GlobalAveragePool")
    if not mean or mean.input[0] != centred.input[0]:
        return None
    x = mean.input[0]
    scale_mul = g.only_consumer(reciprocal.output[0], "Mul")
    gamma = g.split_const(scale_mul)[1] if scale_mul else None
    if gamma is None or gamma.ndim < 1 or any(d != 1 for d in gamma.shape[:-1]):
        return None
    gamma = gamma.reshape(-1)  # Keras may reshape gamma/beta to [1, 1, H] for broadcasting
    inv = scale_mul.output[0]
    users = g.consumers.get(inv, [])
    if len(users) != 2 or any(u.op_type != "Mul" for u in users):
        return None
    x_inv = next((u for u in users if _other(u, inv) == x), None)
    neg_mean_inv = next((u for u in users if u is not x_inv), None)
    neg = neg_mean_inv and g.op(_other(neg_mean_inv, inv) or "", "Neg")
    if x_inv is None or not neg or neg.input[0] != mean.output[0]:
        return None
    beta = np.zeros_like(gamma)
    shift, output = neg_mean_inv, g.only_consumer(neg_mean_inv.output[0], "Add")
    if output is not None and _other(output, neg_mean_inv.output[0]) != x_inv.output[0]:
        beta = g.split_const(output)[1]  # res = -mean·inv + beta, then x·inv + res
        if beta is None or beta.size != gamma.size or any(d != 1 for d in beta.shape[:-1]):
            return None
        beta = beta.reshape(-1)
        shift, output = output, g.only_consumer(output.output[0], "Add")
    if output is None or _other(output, shift.output[0]) != x_inv.output[0]:
        return None
    nodes = [mean, centred, square, variance, add_eps, sqrt, reciprocal, scale_mul, x_inv, neg, neg_mean_inv,
             shift, output]
    return {"x": x, "gamma": gamma, "beta": beta, "epsilon": float(eps.reshape(())), "output": output,
            "nodes": nodes}


def fuse_layer_norms(model) -> int:
    """Replace Keras LayerNorm subgraphs with `LayerNormalization`; returns how many."""
    from onnx import helper, numpy_helper

    graph = model.graph
    g = _Graph(graph)
    matches = [m for node in graph.node if node.op_type == "Reciprocal" if (m := _match_layer_norm(g, node))]
    fused = 0
    for match in matches:
        final = match["output"]
        internal = {out for node in match["nodes"] for out in node.output} - set(final.output)
        if any(user.output[0] not in internal and user.output[0] != final.output[0]
               for name in internal for user in g.consumers.get(name, [])):
            continue  # an intermediate value is used elsewhere: leave this one alone
        scale, bias = f"layer_norm_fused_{fused}_scale", f"layer_norm_fused_{fused}_bias"
        graph.initializer.extend([numpy_helper.from_array(match["gamma"].astype(np.float32), scale),
                                  numpy_helper.from_array(match["beta"].astype(np.float32), bias)])
        # The fused node takes the final Add's place, so the graph stays topologically sorted;
        # the other nodes of the pattern are then unused and dropped.
        final.CopyFrom(helper.make_node("LayerNormalization", [match["x"], scale, bias], list(final.output),
                                        name=f"layer_norm_fused_{fused}", axis=-1, epsilon=match["epsilon"]))
        fused += 1
    _drop_unused(graph)
    return fused


def canonicalize_gelu(model) -> int:
    """Rewrite `1 - erf(-x·(1/√2))` (TF's erfc GELU) as `1 + erf(x/√2)`; returns how many."""
    from onnx import helper, numpy_helper

    g = _Graph(model.graph)
    count = 0
    for erf in [node for node in model.graph.node if node.op_type == "Erf"]:
        scaled = g.op(erf.input[0], "Mul")
        if not scaled:
            continue
        negated_name, c = g.split_const(scaled)
        neg = negated_name and g.op(negated_name, "Neg")
        one_minus = g.only_consumer(erf.output[0], "Sub")
        if not neg or c is None or one_minus is None or one_minus.input[1] != erf.output[0]:
            continue
        one = g.constants.get(one_minus.input[0])
        if one is None or one.size != 1 or float(one.reshape(())) != 1.0:
            continue
        if len(g.consumers.get(scaled.output[0], [])) != 1:
            continue
        if not np.isclose(float(c.reshape(())), 1 / np.sqrt(2)):
            continue
        sqrt2 = f"{scaled.name}_sqrt2"
        model.graph.initializer.append(numpy_helper.from_array(np.array(np.sqrt(2), np.float32), sqrt2))
        scaled.CopyFrom(helper.make_node("Div", [neg.input[0], sqrt2], list(scaled.output), name=scaled.name))
        one_minus.CopyFrom(helper.make_node("Add", [erf.output[0], one_minus.input[0]], list(one_minus.output),
                                            name=one_minus.name))
        count += 1
    _drop_unused(model.graph)
    return count


def _subgraph_inputs(graph) -> set[str]:
    """Names read inside the subgraphs of control-flow nodes (If, Loop), which may come from this graph."""
    names: set[str] = set()
    for node in graph.node:
        for attribute in node.attribute:
            for sub in [attribute.g] if attribute.HasField("g") else list(attribute.graphs):
                names |= {name for inner in sub.node for name in inner.input} | _subgraph_inputs(sub)
    return names


def _drop_unused(graph) -> None:
    """Remove nodes (then initializers) whose outputs nothing reads."""
    needed = {out.name for out in graph.output} | _subgraph_inputs(graph)
    kept = []
    for node in reversed(graph.node):
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(node.input)
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    initializers = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def optimize(model) -> dict[str, int]:
    """Both rewrites, in place; returns the counts."""
    return {"layer_norm": fuse_layer_norms(model), "gelu": canonicalize_gelu(model)}
