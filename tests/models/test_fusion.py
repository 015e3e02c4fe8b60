"""The fusion pass (models/fusion.py) on hand-made node lists: a chain, fan-outs that must not
fuse, a layer shared between node lists, and a graph with branches run by a small graph runner,
fused and unfused, bit for bit; the layers' per-call fusion arguments."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import fastconv as fc
from fastconv.layers import Activation, BatchNormalization, Conv2D, Dense, Flatten, Layer, MaxPooling2D, ReLU
from fastconv.models.fusion import Call, FusionPlan, Node, chain, plan_fusion

NOTHING = Call()


class Add(Layer):
    """The sum of its inputs (test-only: a graph node with several inputs)."""

    def forward(self, xs, training=True):
        self._n = len(xs)
        return sum(xs[1:], xs[0])

    def backward(self, grad_y):
        return [grad_y] * self._n


def unfused(nodes):
    return FusionPlan(tuple(Call() for _ in nodes))


def run_graph(nodes, plan, x, grad_y=None, training=True):
    """What a graph model does with a plan: forward in node order (a node without inputs reads
    x), then backward in reverse order, summing the gradients of an output read several times.
    Returns (output of the last node, dL/dx or None)."""
    outs = []
    for j, node in enumerate(nodes):
        ins = [outs[i] for i in node.inputs]
        outs.append(plan.forward(j, node.layer, ins if len(ins) > 1 else (ins[0] if ins else x), training))
    if grad_y is None:
        return outs[-1], None
    grads, gx = [None] * len(nodes), None
    grads[-1] = grad_y
    for j in reversed(range(len(nodes))):
        g = plan.backward(j, nodes[j].layer, grads[j])
        if not nodes[j].inputs:
            gx = g if gx is None else gx + g
        for i, gi in zip(nodes[j].inputs, g if len(nodes[j].inputs) > 1 else [g]):
            grads[i] = gi if grads[i] is None else grads[i] + gi
    return outs[-1], gx


def fused_calls(plan):
    """{node index: what differs from a plain call}, for readable asserts."""
    out = {}
    for j, call in enumerate(plan):
        if call != NOTHING:
            out[j] = {k: v for k, v in vars(call).items() if v != getattr(NOTHING, k)}
    return out


# ----------------------------------------------------------------------------- the pass


def test_a_chain_fuses_batch_norm_relu_and_the_pool_mask():
    layers = [
        Conv2D(4, 3, activation="relu", padding="same"),  # 0
        MaxPooling2D(),  # 1: applies 0's ReLU mask
        Conv2D(4, 3),  # 2
        BatchNormalization(),  # 3: applies 4's ReLU
        ReLU(),  # 4
        BatchNormalization(),  # 5
        Activation("relu"),  # 6
        Flatten(),  # 7
        Dense(2),  # 8
    ]
    nodes = chain(layers)
    assert [n.inputs for n in nodes] == [(), (0,), (1,), (2,), (3,), (4,), (5,), (6,), (7,)]
    assert fused_calls(plan_fusion(nodes)) == {
        0: {"backward": {"relu_applied": True}},
        1: {"forward": {"relu_mask": True}, "backward": {"relu_mask": True}},
        3: {"forward": {"fused_relu": True}},
        4: {"fused_into": 3},
        5: {"forward": {"fused_relu": True}},
        6: {"fused_into": 5},
    }


def test_no_fusion_without_its_pattern():
    nodes = chain(
        [
            Conv2D(4, 3),  # no activation: nothing for the pool to apply
            MaxPooling2D(),
            Conv2D(4, 3, activation="relu", data_format="channels_first"),
            MaxPooling2D(),  # channels_last pool over a channels_first conv
            BatchNormalization(),
            ReLU(),
            ReLU(),  # reads a ReLU, not the batch norm
            BatchNormalization(),
            Activation("sigmoid"),
            BatchNormalization(),
            fc.layers.LeakyReLU(),
        ]
    )
    assert fused_calls(plan_fusion(nodes)) == {4: {"forward": {"fused_relu": True}}, 5: {"fused_into": 4}}


def test_an_output_that_fans_out_does_not_fuse():
    """The ReLU (or the pool) is one reader of two: the other must get the un-activated output,
    and the layer's backward receives the sum of both gradients, so nothing fuses."""
    bn, relu, flat = BatchNormalization(), ReLU(), Flatten()
    assert plan_fusion([Node(bn, (), 2), Node(relu, (0,)), Node(flat, (0,))]) == unfused(range(3))
    conv, pool = Conv2D(4, 3, activation="relu"), MaxPooling2D()
    assert plan_fusion([Node(conv, (), 2), Node(pool, (0,)), Node(flat, (0,))]) == unfused(range(3))
    # a model output read by one more node counts two readers too
    assert plan_fusion([Node(bn, (), 2), Node(relu, (0,), 0)]) == unfused(range(2))
    assert fused_calls(plan_fusion([Node(bn, (), 1), Node(relu, (0,))])) == {
        0: {"forward": {"fused_relu": True}},
        1: {"fused_into": 0},
    }


def test_a_shared_layer_fuses_only_in_the_call_followed_by_its_relu():
    """The same BatchNormalization in two node lists, and twice in one: each call computes the
    ReLU only when its plan asks; a direct call computes none."""
    bn = BatchNormalization(input_shape=(3, 3, 2))
    with_relu = [Node(bn), Node(ReLU(), (0,))]
    without = [Node(bn), Node(Flatten(), (0,))]
    twice = [Node(bn), Node(ReLU(), (0,)), Node(bn, (1,))]
    assert fused_calls(plan_fusion(with_relu)) == {0: {"forward": {"fused_relu": True}}, 1: {"fused_into": 0}}
    assert plan_fusion(without) == unfused(without)
    assert fused_calls(plan_fusion(twice)) == {0: {"forward": {"fused_relu": True}}, 1: {"fused_into": 0}}

    x = np.random.default_rng(3).standard_normal((2, 3, 3, 2)).astype(np.float32)
    fused, _ = run_graph(with_relu, plan_fusion(with_relu), x, training=False)
    plain, _ = run_graph(without, plan_fusion(without), x, training=False)
    assert (fused >= 0).all() and (plain < 0).any()
    np.testing.assert_array_equal(fused.reshape(2, -1), np.maximum(plain, 0))
    assert (bn(x) < 0).any()
    second, _ = run_graph(twice, plan_fusion(twice), x)  # training: batch statistics, so y < 0 somewhere
    assert (second < 0).any()
    np.testing.assert_array_equal(second, bn.forward(np.maximum(bn.forward(x), 0)))


def graph():
    """A graph with branches, not a Sequential:
    x -> conv(relu) -> pool -+-> conv -> bn -> relu ------+-> add
                             +-> bn5 -+-> relu -----------+
                                      +-------------------+
    (bn5 fans out: its ReLU must not fuse; the pool's input has one reader: it applies the mask)."""
    nodes = [
        Node(Conv2D(4, 3, activation="relu", padding="same", input_shape=(6, 6, 3), seed=1), ()),  # 0
        Node(MaxPooling2D(), (0,), 2),  # 1
        Node(Conv2D(4, 3, padding="same", seed=2), (1,)),  # 2
        Node(BatchNormalization(), (2,)),  # 3
        Node(ReLU(), (3,)),  # 4
        Node(BatchNormalization(), (1,), 2),  # 5
        Node(ReLU(), (5,)),  # 6
        Node(Add(), (4, 6, 5)),  # 7: the model output
    ]
    shapes = [(6, 6, 3)]
    for node in nodes[:-1]:
        node.layer.build(shapes[node.inputs[0] + 1] if node.inputs else shapes[0])
        shapes.append(node.layer.output_shape(node.layer.input_shape))
    return nodes


def test_a_graph_model_can_run_the_plan_with_the_gradients_of_the_unfused_graph():
    nodes = graph()
    plan = plan_fusion(nodes)
    assert fused_calls(plan) == {
        0: {"backward": {"relu_applied": True}},
        1: {"forward": {"relu_mask": True}, "backward": {"relu_mask": True}},
        3: {"forward": {"fused_relu": True}},
        4: {"fused_into": 3},
    }
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 6, 6, 3)).astype(np.float32)
    x[0, 2, 2, 1] = np.nan
    gy = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    loose = copy.deepcopy(nodes)
    y, gx = run_graph(nodes, plan, x, gy)
    y_loose, gx_loose = run_graph(loose, unfused(loose), x, gy)
    assert np.array_equal(y, y_loose, equal_nan=True) and np.array_equal(gx, gx_loose, equal_nan=True)
    for node, other in zip(nodes, loose):
        assert node.layer.grads.keys() == other.layer.grads.keys()
        for key in node.layer.grads:
            assert np.array_equal(node.layer.grads[key], other.layer.grads[key], equal_nan=True), key
    for training, trainable in ((False, True), (True, False)):  # inference; training with frozen layers
        for n in nodes + loose:
            n.layer.trainable = trainable
        a, ga = run_graph(nodes, plan, x, gy if training else None, training=training)
        b, gb = run_graph(loose, unfused(loose), x, gy if training else None, training=training)
        assert np.array_equal(a, b, equal_nan=True)
        assert (ga is gb is None) if not training else np.array_equal(ga, gb, equal_nan=True)


def test_sequential_runs_the_plan_of_its_chain_made_again_when_a_layer_is_added():
    model = fc.Sequential([Conv2D(3, 3, input_shape=(5, 5, 2), seed=1), BatchNormalization()])
    x = np.random.default_rng(2).standard_normal((2, 5, 5, 2)).astype(np.float32)
    assert (model.forward(x) < 0).any()
    assert model._fusion_plan() == plan_fusion(chain(model.layers)) == unfused(model.layers)
    model.add(ReLU())
    y = model.forward(x)
    assert model._fusion_plan() == plan_fusion(chain(model.layers))
    assert model._fusion_plan()[2].fused_into == 1
    assert (y >= 0).all()


@pytest.mark.parametrize(
    "nodes, error, match",
    [
        ([Node(ReLU(), (0,))], ValueError, r"nodes\[0\].inputs must name earlier nodes"),
        ([Node(ReLU()), Node(ReLU(), (2,))], ValueError, r"nodes\[1\].inputs"),
        ([Node(ReLU()), Node(ReLU(), (True,))], ValueError, r"nodes\[1\].inputs"),
        ([Node(ReLU(), (), 1), Node(ReLU(), (0,)), Node(ReLU(), (0,))], ValueError, r"nodes\[0\].consumers"),
        ([Node(ReLU(), (), 1.0)], ValueError, r"nodes\[0\].consumers"),
        ([ReLU()], TypeError, r"nodes\[0\] must be a Node"),
        ([Node("relu")], TypeError, r"nodes\[0\] must be a Node holding a fastconv Layer"),
    ],
)
def test_bad_node_lists_are_named(nodes, error, match):
    with pytest.raises(error, match=match):
        plan_fusion(nodes)


# ----------------------------------------------------------------------------- the layers' fused calls


def test_fused_relu_holds_for_its_call_only():
    bn = BatchNormalization(input_shape=(4, 4, 3))
    x = np.random.default_rng(1).standard_normal((2, 4, 4, 3)).astype(np.float32)
    fused = bn.forward(x, training=False, fused_relu=True)
    plain = bn.forward(x, training=False)
    assert (plain < 0).any()
    np.testing.assert_array_equal(fused, np.maximum(plain, 0))
    with pytest.raises(TypeError, match="fused_relu"):
        bn.forward(x, fused_relu=1)


def test_relu_mask_and_relu_applied_are_checked():
    x = np.random.default_rng(1).standard_normal((2, 6, 6, 3)).astype(np.float32)
    pool = MaxPooling2D()
    y = pool.forward(x)
    with pytest.raises(RuntimeError, match=r"backward\(relu_mask=True\) needs forward\(relu_mask=True\)"):
        pool.backward(np.ones_like(y), relu_mask=True)
    with pytest.raises(TypeError, match="relu_mask"):
        pool.forward(x, relu_mask="yes")
    conv = Conv2D(2, 3, input_shape=(6, 6, 3))
    y = conv.forward(x)
    with pytest.raises(ValueError, match="relu_applied=True needs activation 'relu'"):
        conv.backward(np.ones_like(y), relu_applied=True)
