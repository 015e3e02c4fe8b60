"""Drop-in replacements for the NumPy layer functions of popular courses.

from fastconv.compat.cs231n import *      # instead of: from cs231n.fast_layers import *
"""

from . import cs231n

__all__ = ["cs231n"]
