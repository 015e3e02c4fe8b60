"""install(): the course's own modules call fastconv's functions.

Importing fastconv's functions into one file is not enough: the course's classifiers/cnn.py ends
its imports with `from ..layer_utils import *`, which rebinds conv_relu_pool_forward and the
others to the course's versions. install() replaces the course's functions inside the course's
modules themselves (every module of the package that holds them), so every later caller gets
fastconv's. Only names still bound to the course's own function are replaced: a function a
student wrote under the same name in another file is left alone.
"""
from __future__ import annotations

import importlib
import sys

from . import fast_layers, layer_utils
from . import layers as layers_py

__all__ = ["install", "uninstall"]

_COURSE_SHIPS = {"fast_layers": fast_layers, "layer_utils": layer_utils}   # the code the course gives
_STUDENT_WRITES = {"layers": layers_py}                                    # the assignment's exercises
_MODELS = ("classifiers.cnn", "classifiers.fc_net")

_replaced: dict[tuple[str, str], object] = {}   # (module, name) -> the course's function


def _import(name, required):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if required or e.name != name:
            raise ImportError(f"install() could not import {name!r} ({e}); run it where `import {name}` "
                              "works (from the assignment folder, or with it on sys.path)") from None
        return None


def install(package="cs231n", *, layers=False):
    """Point the course's modules at fastconv: the conv and pooling functions of fast_layers.py
    and the conv sandwiches of layer_utils.py, in every loaded module of `package` (its models
    classifiers/cnn.py and fc_net.py are imported first so they are covered). layers=True also
    replaces the layers.py functions students write (relu_*, batchnorm_*, spatial_batchnorm_*).
    Call it before `from cs231n... import ...` lines of a notebook, which bind names of their
    own. Returns {module: [names replaced]}; uninstall() puts the course's functions back."""
    _import(package, required=True)
    sources = dict(_COURSE_SHIPS, **(_STUDENT_WRITES if layers else {}))
    originals = {}                       # name -> (course's function, fastconv's)
    for sub, ours in sources.items():
        course = _import(f"{package}.{sub}", required=False)
        for name in ours.__all__ if course is not None else ():
            theirs = getattr(course, name, None)
            if callable(theirs) and theirs is not getattr(ours, name):
                originals[name] = (theirs, getattr(ours, name))
    for sub in _MODELS:
        _import(f"{package}.{sub}", required=False)
    done: dict[str, list[str]] = {}
    for modname, module in list(sys.modules.items()):
        if module is None or not (modname == package or modname.startswith(package + ".")):
            continue
        for name, (theirs, ours) in originals.items():
            if vars(module).get(name) is theirs:
                _replaced.setdefault((modname, name), theirs)
                setattr(module, name, ours)
                done.setdefault(modname, []).append(name)
    return {m: sorted(names) for m, names in sorted(done.items())}


def uninstall():
    """Put back every course function install() replaced. Returns how many names it restored."""
    for (modname, name), theirs in _replaced.items():
        module = sys.modules.get(modname)
        if module is not None:
            setattr(module, name, theirs)
    n = len(_replaced)
    _replaced.clear()
    return n
