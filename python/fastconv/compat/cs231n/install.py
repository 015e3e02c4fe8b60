"""install(): the course's own modules call fastconv's functions.

Importing fastconv's functions into one file is not enough: the course's classifiers/cnn.py ends
its imports with `from ..layer_utils import *`, which rebinds conv_relu_pool_forward and the
others to the course's versions. install() replaces the course's functions inside the course's
modules themselves (every module of the package that holds them), so every later caller gets
fastconv's. Only names still bound to the course's own function are replaced: a function a
student wrote under the same name in another file is left alone.

What goes in the course's place is a stand-in: a new function object per install() that calls
fastconv's function and whose globals are the course module's. The notebooks run `%autoreload 2`,
which, when a course file is edited, writes the edited function's code into the object the module
binds to that name. The stand-in takes that code and runs it as the course's function would (the
edit finds the module's np and other names), and fastconv's own functions are never touched.
"""

from __future__ import annotations

import functools
import importlib
import sys
import types
from dataclasses import dataclass

from . import fast_layers, layer_utils
from . import layers as layers_py

__all__ = ["install", "uninstall"]

_COURSE_SHIPS = {"fast_layers": fast_layers, "layer_utils": layer_utils}  # the code the course gives
_STUDENT_WRITES = {"layers": layers_py}  # the assignment's exercises
_MODELS = ("classifiers.cnn", "classifiers.fc_net")


@dataclass
class _Route:
    package: str
    theirs: types.FunctionType  # the course's function
    stand_in: types.FunctionType  # bound in the course's modules in its place
    code: types.CodeType  # the stand-in's own code: another one is an edit %autoreload wrote


_routes: dict[int, _Route] = {}  # id(the course's function) -> its route


def _import(name, required):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if required or e.name != name:
            raise ImportError(
                f"install() could not import {name!r} ({e}); run it where `import {name}` "
                "works (from the assignment folder, or with it on sys.path)"
            ) from None
        return None


def _stand_in(ours, theirs):
    """A new function that calls fastconv's `ours`, in the globals of the course's `theirs`. Its
    __module__ stays fastconv's, so autoreload's full-module reload never rewrites it in place."""

    def call(*args, **kwargs):
        return ours(*args, **kwargs)

    stand_in = types.FunctionType(call.__code__, theirs.__globals__, ours.__name__, None, call.__closure__)
    return functools.update_wrapper(stand_in, ours)


def _is_stand_in(obj):
    return any(route.stand_in is obj for route in _routes.values())


def _in_package(modname, package):
    return modname == package or modname.startswith(package + ".")


def install(package="cs231n", *, layers=False):
    """Point the course's modules at fastconv: the conv and pooling functions of fast_layers.py
    and the conv sandwiches of layer_utils.py, in every loaded module of `package` (its models
    classifiers/cnn.py and fc_net.py are imported first so they are covered). layers=True also
    replaces the layers.py functions students write (relu_*, batchnorm_*, spatial_batchnorm_*).
    Call it before `from cs231n... import ...` lines of a notebook, which bind names of their
    own. Returns {module: [names replaced]}; uninstall() puts the course's functions back."""
    _import(package, required=True)
    sources = dict(_COURSE_SHIPS, **(_STUDENT_WRITES if layers else {}))
    originals = {}  # name -> (course's function, fastconv's)
    for sub, ours in sources.items():
        course = _import(f"{package}.{sub}", required=False)
        for name in ours.__all__ if course is not None else ():
            theirs = getattr(course, name, None)
            course_owned = isinstance(theirs, types.FunctionType) and not _is_stand_in(theirs)
            if course_owned and theirs is not getattr(ours, name):
                originals[name] = (theirs, getattr(ours, name))
    for sub in _MODELS:
        _import(f"{package}.{sub}", required=False)
    done: dict[str, list[str]] = {}
    for modname, module in list(sys.modules.items()):
        if module is None or not _in_package(modname, package):
            continue
        for name, (theirs, ours) in originals.items():
            if vars(module).get(name) is theirs:
                if id(theirs) not in _routes:
                    stand_in = _stand_in(ours, theirs)
                    _routes[id(theirs)] = _Route(package, theirs, stand_in, stand_in.__code__)
                setattr(module, name, _routes[id(theirs)].stand_in)
                done.setdefault(modname, []).append(name)
    return {m: sorted(names) for m, names in sorted(done.items())}


def _course_function(route):
    """The course's function as it stands now. An edit %autoreload wrote into the stand-in is moved
    onto the course's function; a module autoreload ran again defines the function anew."""
    theirs, stand_in = route.theirs, route.stand_in
    if stand_in.__code__ is not route.code:
        for attr in ("__code__", "__defaults__", "__kwdefaults__", "__doc__", "__dict__"):
            setattr(theirs, attr, getattr(stand_in, attr))
        return theirs
    defined = getattr(sys.modules.get(theirs.__module__), theirs.__name__, None)
    if (
        isinstance(defined, types.FunctionType)
        and not _is_stand_in(defined)
        and (defined.__module__, defined.__qualname__) == (theirs.__module__, theirs.__qualname__)
    ):
        return defined
    return theirs


def uninstall():
    """Put back the course's functions (with any edit %autoreload made since install()) wherever a
    module of the course still holds a stand-in. Returns how many names it restored. Names a
    notebook imported after install() keep calling fastconv until its import cell runs again."""
    restored = {id(route.stand_in): (route.stand_in, _course_function(route)) for route in _routes.values()}
    packages = {route.package for route in _routes.values()}
    n = 0
    for modname, module in list(sys.modules.items()):
        if module is None or not any(_in_package(modname, p) for p in packages):
            continue
        for name, obj in list(vars(module).items()):
            stand_in, course_function = restored.get(id(obj), (None, None))
            if obj is stand_in:
                setattr(module, name, course_function)
                n += 1
    _routes.clear()
    return n
