"""install() under the course notebooks' own `%autoreload 2`: a student edits a course function
that install() routed to fastconv. IPython writes the edited code into the object the course
module binds to that name, so that object must be install()'s stand-in, never fastconv's own
function: fastconv keeps working, the edited function runs in the course module's globals, and
uninstall() puts back the course's function with the edit. Runs a real IPython shell in a
subprocess on the course-shaped package of test_cs231n_install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from test_cs231n_install import COURSE

pytest.importorskip("IPython")

NOTEBOOK = r'''
import contextlib, io, json, os, sys
root = sys.argv[1]
sys.path.insert(0, root)
from IPython.core.interactiveshell import InteractiveShell

sh = InteractiveShell.instance()
sh.run_line_magic("load_ext", "autoreload")
sh.run_line_magic("autoreload", "2")
seen = {}

def cell(label, source):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        result = sh.run_cell(source)
    error = result.error_before_exec or result.error_in_exec
    seen[label] = {"error": None if error is None else f"{type(error).__name__}: {error}", "output": out.getvalue()}

def edit(rel, old, new):
    path = os.path.join(root, "cs231n", rel)
    with open(path) as f:
        text = f.read()
    assert old in text, (rel, old)
    with open(path, "w") as f:
        f.write(text.replace(old, new))
    mtime = os.stat(path).st_mtime + 10          # newer than autoreload's record, whatever the clock's grain
    os.utime(path, (mtime, mtime))

cell("setup", """
import numpy as np
import fastconv.compat.cs231n as fast
from cs231n.classifiers.cnn import ThreeLayerConvNet
model = ThreeLayerConvNet()
rng = np.random.default_rng(1)
X, y = rng.standard_normal((6, 3, 8, 8)), rng.integers(0, 5, 6)
want_loss = model.loss(X, y)[0]
ours = {name: getattr(fast, name) for name in fast.__all__}
codes = {name: f.__code__ for name, f in ours.items()}
intact = lambda: sorted(n for n, f in ours.items() if getattr(fast, n) is not f or f.__code__ is not codes[n])
fast.install()
""")
cell("idle", "pass")
edit("layer_utils.py", "    a, conv_cache = conv_forward_fast(x, w, b, conv_param)\n    s, relu_cache",
     "    print('edited conv_relu_pool_forward')\n"
     "    a, conv_cache = conv_forward_fast(x, w, b, conv_param)\n    s, relu_cache")
cell("loss_after_edit", "loss_after_edit = model.loss(X, y)[0]")
cell("fastconv_after_edit", """
changed_after_edit = intact()
fast_out = fast.conv_relu_pool_forward(X, model.params["W1"], model.params["b1"], {"stride": 1, "pad": 1},
                                       {"pool_height": 2, "pool_width": 2, "stride": 2})[0]
""")
cell("uninstall", """
import cs231n.classifiers.cnn, cs231n.layer_utils
restored = fast.uninstall()
restored_module = cs231n.classifiers.cnn.conv_relu_pool_forward.__module__
same_function = cs231n.classifiers.cnn.conv_relu_pool_forward is cs231n.layer_utils.conv_relu_pool_forward
loss_after_uninstall = model.loss(X, y)[0]
""")

cell("install_layers", """
fast.install(layers=True)
from cs231n.layers import *
xr = np.linspace(-1, 1, 7)
""")
cell("idle2", "pass")
edit("layers.py", "    return np.maximum(x, 0), x",
     "    print('edited relu_forward')\n    return np.maximum(x, 0), x")
cell("relu_after_edit", "relu_after_edit = relu_forward(xr)[0].tolist()")
cell("fastconv_relu_after_edit", "changed_after_relu_edit = intact(); fast_relu = fast.relu_forward(xr)[0].tolist()")
cell("uninstall_layers", """
import cs231n.layers
fast.uninstall()
relu_module = cs231n.layers.relu_forward.__module__
relu_after_uninstall = cs231n.layers.relu_forward(xr)[0].tolist()
""")

names = ["want_loss", "loss_after_edit", "changed_after_edit", "restored", "restored_module", "same_function",
         "loss_after_uninstall", "relu_after_edit", "changed_after_relu_edit", "fast_relu", "relu_module",
         "relu_after_uninstall"]
values = {n: sh.user_ns.get(n) for n in names}
values["fast_out_shape"] = list(getattr(sh.user_ns.get("fast_out"), "shape", ()))
print(json.dumps({"cells": seen, "values": {k: (float(v) if hasattr(v, "dtype") else v) for k, v in values.items()}}))
'''


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    """The cells' errors and output, and the values they computed."""
    root = tmp_path_factory.mktemp("course")
    for rel, text in COURSE.items():
        path = root / "cs231n" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    env = dict(os.environ, IPYTHONDIR=str(root / "ipython"))
    proc = subprocess.run(
        [sys.executable, "-c", NOTEBOOK, str(root)], capture_output=True, text=True, timeout=180, env=env
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["cells"], result["values"]


def errors(cells, *labels):
    """The error and output of each of these cells that raised."""
    return {label: (cells[label]["error"], cells[label]["output"][-2000:]) for label in labels if cells[label]["error"]}


def test_editing_a_course_sandwich_leaves_fastconv_intact(notebook):
    """Plain install(), then conv_relu_pool_forward edited in layer_utils.py: the model's loss runs
    the edit (which calls fastconv's conv through the module's names) and fastconv's functions keep
    their own code."""
    cells, values = notebook
    assert errors(cells, "setup", "loss_after_edit", "fastconv_after_edit") == {}
    assert "autoreload of" not in cells["loss_after_edit"]["output"]  # no failed reload
    assert "edited conv_relu_pool_forward" in cells["loss_after_edit"]["output"]
    assert values["loss_after_edit"] == pytest.approx(values["want_loss"], rel=1e-12)
    assert values["changed_after_edit"] == []
    assert values["fast_out_shape"] == [6, 4, 4, 4]


def test_uninstall_after_an_edit_restores_the_edited_course_function(notebook):
    cells, values = notebook
    assert errors(cells, "uninstall") == {}
    assert values["restored"] > 0
    assert values["restored_module"] == "cs231n.layer_utils" and values["same_function"] is True
    assert "edited conv_relu_pool_forward" in cells["uninstall"]["output"]
    assert values["loss_after_uninstall"] == pytest.approx(values["want_loss"], rel=1e-12)


def test_editing_a_students_layer_after_install_layers(notebook):
    """install(layers=True), names imported after it, then relu_forward edited in layers.py (it uses
    the module's np): the notebook's name runs the edit, fastconv's relu_forward is untouched, and
    uninstall() gives the course module the edited function."""
    cells, values = notebook
    relu = [max(v, 0.0) for v in [-1 + i / 3 for i in range(7)]]
    assert errors(cells, "install_layers", "relu_after_edit", "fastconv_relu_after_edit", "uninstall_layers") == {}
    assert "edited relu_forward" in cells["relu_after_edit"]["output"]
    assert values["relu_after_edit"] == pytest.approx(relu, abs=1e-15)
    assert values["changed_after_relu_edit"] == []
    assert values["fast_relu"] == pytest.approx(relu, abs=1e-15)
    assert values["relu_module"] == "cs231n.layers"
    assert "edited relu_forward" in cells["uninstall_layers"]["output"]
    assert values["relu_after_uninstall"] == pytest.approx(relu, abs=1e-15)
