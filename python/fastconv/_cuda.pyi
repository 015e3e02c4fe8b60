# The compiled module (csrc/bindings/, pybind11): its names check as Any.
from typing import Any

def __getattr__(name: str) -> Any: ...
