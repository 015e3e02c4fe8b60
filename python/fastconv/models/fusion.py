"""The fusion pass and batch-norm folding, for any model that can list its layer calls.

plan_fusion(nodes) reads a list of layer calls (Node: the layer, the nodes it reads, how many
readers its output has) and returns a FusionPlan: for each node, the keyword arguments of its
forward / backward call, or that it passes its input through because another call does its work.
Sequential hands it its stack as a chain (chain(layers)); a graph model hands it its nodes in
execution order. The fusions, each a per-call request, never a layer's state:

- BatchNormalization -> ReLU (or Activation("relu")): the batch norm applies the ReLU in its own
  forward and backward passes (forward(..., fused_relu=True)), the ReLU call passes through.
- Conv2D(activation="relu") -> MaxPooling2D of the same layout: the pool applies the conv's ReLU
  gradient mask on its small output (forward / backward(..., relu_mask=True)) and the conv skips
  its own pass over the large one (backward(..., relu_applied=True)); MNIST CNN step: -1.5 ms of
  ~19, VGG16 at batch 8: no ReLU backward over conv1_2's 103 MB output.

A call fuses only with its single reader: when the un-activated output fans out, or is a model
output, every reader gets it as the layer computes it alone.

fold_batch_norm(model) rewrites an inference model's Conv2D + BatchNormalization pairs into one
Conv2D."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..backend.arrays import array_module
from ..layers import Activation, BatchNormalization, Conv2D, Layer, MaxPooling2D, ReLU

__all__ = ["Node", "Call", "FusionPlan", "chain", "plan_fusion", "fold_batch_norm", "normalizes_channels"]


@dataclass(frozen=True)
class Node:
    """One layer call of a model. inputs: the indices (in the node list) of the nodes whose
    outputs it reads, () for the model's input; consumers: how many reads its output has (the
    nodes that take it as an input, plus one when it is a model output)."""

    layer: Layer
    inputs: tuple[int, ...] = ()
    consumers: int = 1


@dataclass(frozen=True)
class Call:
    """How a model runs one node: layer.forward(x, training, **forward) and
    layer.backward(grad_y, **backward), or, when fused_into is a node index, neither: that node
    did this one's work, and the value (forward) and the gradient (backward) pass through."""

    forward: dict[str, Any] = field(default_factory=dict)
    backward: dict[str, Any] = field(default_factory=dict)
    fused_into: int | None = None

    @property
    def passes_through(self) -> bool:
        return self.fused_into is not None


@dataclass(frozen=True)
class FusionPlan:
    """One Call per node, in the node list's order. forward / backward run a node as planned."""

    calls: tuple[Call, ...] = ()

    def __len__(self) -> int:
        return len(self.calls)

    def __getitem__(self, index: int) -> Call:
        return self.calls[index]

    def __iter__(self) -> Iterator[Call]:
        return iter(self.calls)

    def forward(self, index: int, layer: Layer, x: Any, training: bool) -> Any:
        """The output of node `index` (whose layer is `layer`) for input x."""
        call = self.calls[index]
        if call.passes_through:
            return x
        return layer.forward(x, training=training, **call.forward)

    def backward(self, index: int, layer: Layer, grad_y: Any) -> Any:
        """The input gradient of node `index` for grad_y (the layer fills its .grads)."""
        call = self.calls[index]
        if call.passes_through:
            return grad_y
        return layer.backward(grad_y, **call.backward)


def chain(layers: Sequence[Layer]) -> list[Node]:
    """A stack of layers as nodes: each reads the one below it (the first, the model's input)
    and is read once (the top one by the model's output)."""
    return [Node(layer, () if i == 0 else (i - 1,)) for i, layer in enumerate(layers)]


def plan_fusion(nodes: Sequence[Node]) -> FusionPlan:
    """The calls of `nodes` (in execution order: a node reads only earlier ones) with the
    fusions of the module docstring applied: one rule per fusion, each between a node and the
    single node it reads, when that one has no other reader."""
    _check_nodes(nodes)
    forward: list[dict[str, Any]] = [{} for _ in nodes]
    backward: list[dict[str, Any]] = [{} for _ in nodes]
    fused_into: list[int | None] = [None] * len(nodes)
    for j, node in enumerate(nodes):
        if len(node.inputs) != 1 or nodes[node.inputs[0]].consumers != 1:
            continue
        i = node.inputs[0]
        below = nodes[i].layer
        if isinstance(below, BatchNormalization) and _is_relu(node.layer):
            forward[i]["fused_relu"] = True
            fused_into[j] = i
        elif isinstance(node.layer, MaxPooling2D) and _ends_in_relu(below, node.layer.layout):
            forward[j]["relu_mask"] = backward[j]["relu_mask"] = True
            backward[i]["relu_applied"] = True
    return FusionPlan(tuple(Call(f, b, into) for f, b, into in zip(forward, backward, fused_into)))


def _is_relu(layer: Layer) -> bool:
    return isinstance(layer, ReLU) or (isinstance(layer, Activation) and layer.activation == "relu")


def _ends_in_relu(layer: Layer, layout: str) -> bool:
    """A Conv2D whose own activation is a ReLU, in `layout`: its output is what a pool reads."""
    return isinstance(layer, Conv2D) and layer.activation == "relu" and layer.layout == layout


def _check_nodes(nodes: Sequence[Node]) -> None:
    """Every node is a Node with a Layer, reads only earlier nodes, and counts at least the
    reads the list makes of it (a count too low would let a fan-out fuse)."""
    reads = [0] * len(nodes)
    for j, node in enumerate(nodes):
        if not isinstance(node, Node) or not isinstance(node.layer, Layer):
            raise TypeError(f"nodes[{j}] must be a Node holding a fastconv Layer, got {node!r}")
        for i in node.inputs:
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < j:
                raise ValueError(f"nodes[{j}].inputs must name earlier nodes (0 to {j - 1}), got {node.inputs!r}")
            reads[i] += 1
    for i, node in enumerate(nodes):
        if isinstance(node.consumers, bool) or not isinstance(node.consumers, int) or node.consumers < reads[i]:
            raise ValueError(
                f"nodes[{i}].consumers must be an int counting every read of its output "
                f"({reads[i]} by other nodes, plus one if it is a model output), got {node.consumers!r}"
            )


def fold_batch_norm(model):
    """The layers of an inference model in which every Conv2D (without activation) followed by a
    BatchNormalization over its channel axis is one Conv2D with the normalization folded into
    its kernel and bias (fc.fold_batch_norm): the pair then costs one convolution. A batch
    norm over another axis (axis=-1 after a channels_first conv normalizes W) stays a layer.
    Other layers are shared with the model; Sequential.fold_batch_norm makes the inference
    model (for layer(x) / predict, not for training) from the list returned."""
    model._built_layers()
    folded, i = [], 0
    while i < len(model.layers):
        layer = model.layers[i]
        above = model.layers[i + 1] if i + 1 < len(model.layers) else None
        if (
            isinstance(layer, Conv2D)
            and layer.activation is None
            and layer.built
            and layer.input_shape is not None
            and normalizes_channels(above, layer)
        ):
            w2, b2 = model.layers[i + 1].folded_into(layer)
            config = {**layer.get_config(), "use_bias": True, "name": layer.name}
            conv = Conv2D(**config)
            conv.build(layer.input_shape)
            conv.to(array_module(w2))
            conv.params["kernel"][...] = w2
            conv.params["bias"][...] = b2
            folded.append(conv)
            i += 2
            continue
        folded.append(layer)
        i += 1
    return folded


def normalizes_channels(bn, conv):
    """Whether `bn` is a BatchNormalization over the channel axis of `conv`'s 4-D output
    (N, C, H, W) or (N, H, W, C): axis 1 / -3 or 3 / -1 by the conv's data_format."""
    if not isinstance(bn, BatchNormalization):
        return False
    return bn.axis % 4 == (1 if conv.layout == "NCHW" else 3)
