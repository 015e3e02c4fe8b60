"""The .npz files of fastconv (model files and weight files): written to a temporary file in the
target's folder and renamed over the target once complete, so a failed save (a full disk) leaves
the previous file as it was; read without pickle (a file from elsewhere cannot run code), every
entry's header and size checked before its data is read, any damage a ValueError naming the file.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import tokenize
import uuid
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

__all__ = ["read_npz", "write_npz", "file_path"]

_BAD_BYTES = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    ValueError,
    TypeError,
    EOFError,
    OSError,
    struct.error,
    zlib.error,
    NotImplementedError,
    OverflowError,
    KeyError,
    IndexError,
    SyntaxError,
    tokenize.TokenError,
)
# Deflate cannot expand data more than ~1032 times: a larger declared size is a damaged header.
_MAX_DEFLATE_RATIO = 1032


def file_path(path: object, what: str = "path") -> str:
    if isinstance(path, (str, bytes, os.PathLike)):
        return os.fsdecode(os.fspath(path))
    raise TypeError(f"{what} must be a str or os.PathLike, got {type(path).__name__}")


# ----------------------------------------------------------------------------- .npz files


def write_npz(path: Any, arrays: Mapping[str, Any], add_suffix: bool = False) -> Any:
    """Write `arrays` (name -> array) as an .npz at `path` (with add_suffix, ".npz" is appended
    when missing, as np.savez does), atomically: a temporary file in the same folder is flushed to
    disk and renamed over the target, so a failure (a full disk) leaves any earlier file intact.
    A writable file object is written directly. Returns the path written."""
    if hasattr(path, "write"):
        np.savez(path, **arrays)
        return path
    path = file_path(path)
    if add_suffix and not path.endswith(".npz"):
        path += ".npz"
    target = os.path.realpath(path)  # through a symlink, as open() would write
    tmp = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            if os.path.exists(target):  # the replaced file's permissions, as writing in place keeps
                os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
            os.replace(tmp, target)
        except BaseException:
            if os.path.lexists(tmp):
                os.remove(tmp)
            raise
    except OSError as exc:
        if exc.errno is None:
            raise
        raise OSError(
            exc.errno, f"cannot write {path} ({exc.strerror}); a file already there is left as it was", path
        ) from exc
    return path


def read_npz(path: str | os.PathLike[str]) -> dict[str, NDArray[Any]]:
    """The arrays of an .npz archive by name, read without pickle. ValueError naming the file
    (and the entry) when it is not an archive of arrays or is damaged; OSError when it cannot be
    opened."""
    path = file_path(path)
    with open(path, "rb") as f:
        if f.read(6) == b"\x93NUMPY":
            raise ValueError(
                f"{path} holds a single {_npy_summary(f)} (.npy); load_weights and load_model "
                "read the .npz archive written by save_weights / model.save"
            )
        f.seek(0)
        size = os.fstat(f.fileno()).st_size
        try:
            archive = zipfile.ZipFile(f)
        except _BAD_BYTES as exc:  # a pickle, text, empty or cut file
            raise ValueError(f"{path} is not an .npz weight archive written by save_weights ({exc})") from None
        with archive:
            out = {}
            for info in archive.infolist():
                name = info.filename
                if not name.endswith(".npy"):
                    raise ValueError(f"{path}: the archive entry {name!r} is not an array (.npy)")
                if info.flag_bits & 0x1:
                    raise ValueError(f"{path}: the entry {name[:-4]!r} is marked as encrypted (damaged)")
                try:
                    out[name[:-4]] = _read_entry(archive, info, size)
                except _BAD_BYTES as exc:
                    raise ValueError(f"{path}: the entry {name[:-4]!r} is damaged ({exc})") from None
    return out


def _npy_summary(f: io.BufferedIOBase) -> str:
    """'<dtype> array of shape <shape>' from an .npy header, or 'array' when it is unreadable."""
    f.seek(0)
    try:
        shape, _, dtype = _npy_header(f)
    except _BAD_BYTES:
        return "array"
    return f"{dtype} array of shape {shape}"


def _npy_header(f: io.BufferedIOBase) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """(shape, fortran_order, dtype) of the .npy stream f, read up to its data."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise ValueError(f".npy format version {version} is not read")


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, archive_size: int) -> NDArray[Any]:
    """One .npy entry, its size checked against its header and the archive before allocating."""
    limit = archive_size * (_MAX_DEFLATE_RATIO if info.compress_type == zipfile.ZIP_DEFLATED else 1)
    if info.file_size > limit:
        raise ValueError(f"its header claims {info.file_size} bytes in an archive of {archive_size}")
    with cast(zipfile.ZipExtFile, archive.open(info)) as member:
        shape, fortran_order, dtype = _npy_header(member)
        if dtype.hasobject or dtype.itemsize == 0:
            raise ValueError(f"dtype {dtype} cannot be read without pickle")
        nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if nbytes != info.file_size - member.tell():
            raise ValueError(
                f"shape {shape} of {dtype} needs {nbytes} bytes, the entry holds {info.file_size - member.tell()}"
            )
        buf = np.empty(nbytes, np.uint8)
        view, done = buf.data, 0
        while done < nbytes:
            got = member.readinto(view[done:])
            if not got:
                raise EOFError(f"the data ends after {done} of {nbytes} bytes")
            done += got
        if member.read(1):  # reading to the end also checks the CRC
            raise ValueError("data beyond the size its header gives")
    arr = buf.view(dtype)
    return arr.reshape(shape[::-1]).T if fortran_order else arr.reshape(shape)


# ----------------------------------------------------------------------------- description checks
