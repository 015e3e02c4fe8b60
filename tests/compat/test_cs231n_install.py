"""fastconv.compat.cs231n.install() on a course-shaped package: classifiers/cnn.py's star imports
(the last one, layer_utils, rebinding the sandwiches) must end up calling fastconv, with the same
loss and gradients, and uninstall() must put the course back."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

import fastconv.functional
from fastconv.compat import cs231n as cs

COURSE = {
    "__init__.py": "",
    "fast_layers.py": """
        import numpy as np

        def conv_forward_strides(x, w, b, conv_param):
            s, p = conv_param["stride"], conv_param["pad"]
            F, C, HH, WW = w.shape
            xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
            win = np.lib.stride_tricks.sliding_window_view(xp, (HH, WW), axis=(2, 3))[:, :, ::s, ::s]
            N, _, Ho, Wo = win.shape[:4]
            x_cols = win.transpose(1, 4, 5, 0, 2, 3).reshape(C * HH * WW, -1)
            out = (w.reshape(F, -1) @ x_cols + b[:, None]).reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3)
            return np.ascontiguousarray(out), (x, w, b, conv_param, x_cols)

        def conv_backward_strides(dout, cache):
            x, w, b, conv_param, x_cols = cache
            s, p = conv_param["stride"], conv_param["pad"]
            F, C, HH, WW = w.shape
            N, _, Ho, Wo = dout.shape
            d = dout.transpose(1, 0, 2, 3).reshape(F, -1)
            dw = (d @ x_cols.T).reshape(w.shape)
            dcols = (w.reshape(F, -1).T @ d).reshape(C, HH, WW, N, Ho, Wo)
            dxp = np.zeros((N, C, x.shape[2] + 2 * p, x.shape[3] + 2 * p))
            for i in range(HH):
                for j in range(WW):
                    dxp[:, :, i:i + s * Ho:s, j:j + s * Wo:s] += dcols[:, i, j].transpose(1, 0, 2, 3)
            return dxp[:, :, p:p + x.shape[2], p:p + x.shape[3]], dw, dout.sum(axis=(0, 2, 3))

        conv_forward_fast = conv_forward_strides
        conv_backward_fast = conv_backward_strides

        def max_pool_forward_fast(x, pool_param):
            N, C, H, W = x.shape
            ph = pool_param["pool_height"]
            x_reshaped = x.reshape(N, C, H // ph, ph, W // ph, ph)
            out = x_reshaped.max(axis=3).max(axis=4)
            return out, ("reshape", (x, x_reshaped, out))

        def max_pool_backward_fast(dout, cache):
            method, (x, x_reshaped, out) = cache
            if method != "reshape":
                raise ValueError('Unrecognized method "%s"' % method)
            mask = x_reshaped == out[:, :, :, None, :, None]
            return np.where(mask, dout[:, :, :, None, :, None], 0.0).reshape(x.shape)
    """,
    "layers.py": """
        import numpy as np

        def affine_forward(x, w, b):
            return x.reshape(x.shape[0], -1) @ w + b, (x, w, b)

        def affine_backward(dout, cache):
            x, w, b = cache
            return (dout @ w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T @ dout, dout.sum(axis=0)

        def relu_forward(x):
            return np.maximum(x, 0), x

        def relu_backward(dout, cache):
            return dout * (cache > 0)

        def softmax_loss(x, y):
            p = np.exp(x - x.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            N = x.shape[0]
            dx = p.copy()
            dx[np.arange(N), y] -= 1
            return -np.log(p[np.arange(N), y]).mean(), dx / N
    """,
    "layer_utils.py": """
        from .layers import *
        from .fast_layers import *

        def affine_relu_forward(x, w, b):
            a, fc_cache = affine_forward(x, w, b)
            out, relu_cache = relu_forward(a)
            return out, (fc_cache, relu_cache)

        def affine_relu_backward(dout, cache):
            fc_cache, relu_cache = cache
            return affine_backward(relu_backward(dout, relu_cache), fc_cache)

        def conv_relu_forward(x, w, b, conv_param):
            a, conv_cache = conv_forward_fast(x, w, b, conv_param)
            out, relu_cache = relu_forward(a)
            return out, (conv_cache, relu_cache)

        def conv_relu_backward(dout, cache):
            conv_cache, relu_cache = cache
            return conv_backward_fast(relu_backward(dout, relu_cache), conv_cache)

        def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
            a, conv_cache = conv_forward_fast(x, w, b, conv_param)
            s, relu_cache = relu_forward(a)
            out, pool_cache = max_pool_forward_fast(s, pool_param)
            return out, (conv_cache, relu_cache, pool_cache)

        def conv_relu_pool_backward(dout, cache):
            conv_cache, relu_cache, pool_cache = cache
            ds = max_pool_backward_fast(dout, pool_cache)
            return conv_backward_fast(relu_backward(ds, relu_cache), conv_cache)
    """,
    "student_extras.py": """
        def conv_relu_forward(x, w, b, conv_param):
            return "the student's own", None
    """,
    "classifiers/__init__.py": "",
    "classifiers/cnn.py": """
        import numpy as np

        from ..layers import *
        from ..fast_layers import *
        from ..layer_utils import *

        class ThreeLayerConvNet:
            def __init__(self, seed=0):
                rng = np.random.default_rng(seed)
                self.params = {"W1": 0.3 * rng.standard_normal((4, 3, 3, 3)), "b1": 0.1 * rng.standard_normal(4),
                               "W2": 0.1 * rng.standard_normal((4 * 4 * 4, 10)), "b2": np.zeros(10),
                               "W3": 0.1 * rng.standard_normal((10, 5)), "b3": np.zeros(5)}

            def loss(self, X, y):
                p = self.params
                out, c1 = conv_relu_pool_forward(X, p["W1"], p["b1"], {"stride": 1, "pad": 1},
                                                 {"pool_height": 2, "pool_width": 2, "stride": 2})
                out, c2 = affine_relu_forward(out, p["W2"], p["b2"])
                scores, c3 = affine_forward(out, p["W3"], p["b3"])
                loss, d = softmax_loss(scores, y)
                grads = {}
                d, grads["W3"], grads["b3"] = affine_backward(d, c3)
                d, grads["W2"], grads["b2"] = affine_relu_backward(d, c2)
                _, grads["W1"], grads["b1"] = conv_relu_pool_backward(d, c1)
                return loss, grads
    """,
}


@pytest.fixture
def course(tmp_path, monkeypatch):
    """A course-shaped `cs231n` package on sys.path; removed (and uninstalled) afterwards."""
    for rel, text in COURSE.items():
        path = tmp_path / "cs231n" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    cs.uninstall()
    for name in [m for m in sys.modules if m == "cs231n" or m.startswith("cs231n.")]:
        del sys.modules[name]


@pytest.fixture
def fastconv_calls(monkeypatch):
    """Counts the convolutions (forward and backward) that reach fastconv's functional API."""
    calls = {"n": 0}
    for name in ("conv2d", "conv2d_backward"):
        real = getattr(fastconv.functional, name)

        def counted(*a, _real=real, **k):
            calls["n"] += 1
            return _real(*a, **k)

        monkeypatch.setattr(fastconv.functional, name, counted)
    return calls


def routes_to(bound, ours):
    """`bound` is install()'s stand-in for fastconv's `ours`: a function of its own that calls it."""
    return bound is not ours and bound.__wrapped__ is ours


def _batch():
    rng = np.random.default_rng(1)
    return rng.standard_normal((6, 3, 8, 8)), rng.integers(0, 5, 6)


def test_install_makes_the_course_model_run_on_fastconv(course, fastconv_calls):
    import cs231n.layer_utils as course_utils  # noqa: PLC0415
    from cs231n.classifiers import cnn  # noqa: PLC0415

    model, (X, y) = cnn.ThreeLayerConvNet(), _batch()
    want_loss, want_grads = model.loss(X, y)
    assert fastconv_calls["n"] == 0  # the course's own code: no fastconv

    # a cache of the course's sandwich, handed to fastconv's backward: the same gradients
    W1, b1 = model.params["W1"], model.params["b1"]
    out, course_cache = course_utils.conv_relu_pool_forward(
        X, W1, b1, {"stride": 1, "pad": 1}, {"pool_height": 2, "pool_width": 2, "stride": 2}
    )
    dout = np.random.default_rng(2).standard_normal(out.shape)
    for got, want in zip(
        cs.conv_relu_pool_backward(dout, course_cache), course_utils.conv_relu_pool_backward(dout, course_cache)
    ):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    fastconv_calls["n"] = 0

    done = cs.install()
    assert "conv_relu_pool_forward" in done["cs231n.classifiers.cnn"]
    assert "conv_forward_fast" in done["cs231n.fast_layers"] and "conv_forward_fast" in done["cs231n.layer_utils"]
    assert "relu_forward" not in done.get("cs231n.layers", [])  # layers.py is the students' work
    assert routes_to(cnn.conv_relu_pool_forward, cs.conv_relu_pool_forward)
    assert cnn.conv_relu_pool_forward is course_utils.conv_relu_pool_forward  # one stand-in per function
    assert course_utils.affine_relu_forward is not None and "affine_relu_forward" not in done["cs231n.layer_utils"]

    loss, grads = model.loss(X, y)
    assert fastconv_calls["n"] == 2  # one conv forward, one conv backward
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
    for k in want_grads:
        np.testing.assert_allclose(grads[k], want_grads[k], rtol=1e-9, atol=1e-12, err_msg=k)

    import cs231n.student_extras as extras  # noqa: PLC0415

    assert extras.conv_relu_forward(X, None, None, None)[0] == "the student's own"

    assert cs.install() == {}  # installing twice changes nothing

    assert cs.uninstall() > 0
    assert cnn.conv_relu_pool_forward is course_utils.conv_relu_pool_forward
    assert cnn.conv_relu_pool_forward.__module__ == "cs231n.layer_utils"
    fastconv_calls["n"] = 0
    model.loss(X, y)
    assert fastconv_calls["n"] == 0


def test_install_with_layers_replaces_the_students_functions_too(course):
    import cs231n.layers as course_layers  # noqa: PLC0415

    done = cs.install(layers=True)
    assert done["cs231n.layers"] == ["relu_backward", "relu_forward"]
    assert "relu_forward" in done["cs231n.layer_utils"] and "relu_forward" in done["cs231n.classifiers.cnn"]
    assert routes_to(course_layers.relu_forward, cs.relu_forward)


def test_modules_imported_after_install_get_fastconv(course):
    cs.install()
    (course / "cs231n" / "classifiers" / "later.py").write_text("from ..layer_utils import *\n")
    from cs231n.classifiers import later  # noqa: PLC0415

    assert routes_to(later.conv_relu_forward, cs.conv_relu_forward)
    assert routes_to(later.conv_forward_fast, cs.conv_forward_fast)
    cs.uninstall()
    assert later.conv_relu_forward.__module__ == "cs231n.layer_utils"
    assert later.conv_forward_fast.__module__ == "cs231n.fast_layers"


def test_each_install_binds_new_stand_ins(course):
    import cs231n.fast_layers as course_fast  # noqa: PLC0415

    theirs = course_fast.conv_forward_fast
    cs.install()
    first = course_fast.conv_forward_fast
    assert cs.uninstall() > 0 and course_fast.conv_forward_fast is theirs
    cs.install()
    assert routes_to(course_fast.conv_forward_fast, cs.conv_forward_fast) and course_fast.conv_forward_fast is not first


def test_install_without_the_course_says_where_to_run_it():
    with pytest.raises(ImportError, match="could not import 'no_such_course'.*assignment folder"):
        cs.install("no_such_course")
