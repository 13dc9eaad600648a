"""Plumbing shared by every data loader: reading lines, raising ``DataError``, the Arrow cache.

Loaders parse a benchmark's files once into an Arrow dataset saved under
``<cache_dir>/<loader>-<key>``; later calls memory-map it with ``datasets.load_from_disk``. The key
hashes the loader's version, its parameters, and the absolute path, size and ``mtime_ns`` of every
input file, so editing or replacing an input file rebuilds the cache.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import math
import os
import shutil
import uuid
import weakref
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import platformdirs
import pyarrow as pa

from mmbench.errors import DataError

if TYPE_CHECKING:
    import datasets

    DatasetLike = TypeVar("DatasetLike", datasets.Dataset, datasets.DatasetDict)
else:  # `datasets` costs ~1 s to import; modules that only read files (and the CLI) should not pay it
    DatasetLike = TypeVar("DatasetLike")

_GZIP_MAGIC = b"\x1f\x8b"
_BOM = "\ufeff"


# ---------------------------------------------------------------------------------------------- errors


def data_error(path: Path | str, message: str, line: int | None = None) -> DataError:
    """A one-line ``DataError`` naming the file (and line)."""
    where = f"{path}:{line}" if line is not None else str(path)
    return DataError(f"{where}: {message}".replace("\r", " ").replace("\n", " "))


def require_file(path: Path, how_to_get: str | None = None) -> Path:
    """Return ``path`` if it is a file, else raise a ``DataError`` saying how to obtain it."""
    if path.is_file():
        return path
    hint = f" {how_to_get}" if how_to_get else ""
    state = "is not a file" if path.exists() else "not found"
    raise data_error(path, f"{state}.{hint}")


def require_dir(path: Path, how_to_get: str | None = None) -> Path:
    if path.is_dir():
        return path
    hint = f" {how_to_get}" if how_to_get else ""
    raise data_error(path, f"directory not found.{hint}")


# ------------------------------------------------------------------------------------------ reading


def _open_binary(path: Path) -> io.BufferedIOBase:
    """Open plain or gzip-compressed files (gzip recognised by its magic bytes, not the suffix)."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise data_error(path, "not found") from None
    except OSError as exc:
        raise data_error(path, f"cannot open ({exc.strerror or exc})") from None
    if fh.peek(2)[:2] == _GZIP_MAGIC:
        fh.close()
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return fh  # type: ignore[return-value]


def read_bytes(path: Path) -> bytes:
    """Whole (decompressed) content of a plain or gzip file; corrupt gzip raises ``DataError``."""
    try:
        with _open_binary(path) as fh:
            return fh.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise data_error(path, f"corrupt or truncated gzip data ({exc})") from None
    except OSError as exc:
        raise data_error(path, f"read error ({exc})") from None


def decode_text(raw: bytes, path: Path, encoding: str = "utf-8") -> str:
    """Decode a whole file; undecodable bytes raise ``DataError`` naming line and column."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - raw.rfind(b"\n", 0, exc.start)
        raise data_error(path, f"not valid {encoding} (byte 0x{raw[exc.start]:02x} at column {column})", line) from None
    return text[1:] if text.startswith(_BOM) else text


def read_lines(
    path: Path,
    *,
    encoding: str = "utf-8",
    fallback_encoding: str | None = None,
    skip_blank: bool = False,
    allow_empty: bool = False,
) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` of a text file, gzip or plain, without the line ending.

    Line numbers start at 1 and count every physical line (only ``\\n`` ends a line; a trailing
    ``\\r`` is dropped), so messages point at the real line. A UTF-8 byte-order mark is dropped.
    Undecodable bytes raise ``DataError`` with file and line unless ``fallback_encoding`` is given,
    in which case the whole file is decoded with it instead (for published files known to be in a
    legacy encoding). A file without any non-blank line raises ``DataError`` unless ``allow_empty``.
    The file is read and decoded at once: one C-level decode is far faster than one per line, and
    benchmark text files are small.
    """
    raw = read_bytes(path)
    try:
        text = decode_text(raw, path, encoding)
    except DataError:
        if fallback_encoding is None:
            raise
        text = decode_text(raw, path, fallback_encoding)
    del raw
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start a new one
    seen_content = False
    for number, line in enumerate(lines, start=1):
        if line.endswith("\r"):
            line = line[:-1]
        if not line.strip():
            if skip_blank:
                continue
        else:
            seen_content = True
        yield number, line
    if not seen_content and not allow_empty:
        raise data_error(path, "file is empty")


def read_aligned_lines(path: Path, *, fallback_encoding: str | None = None) -> list[tuple[int, str]]:
    """``(line_number, line)`` of a line-aligned file (line i of one file pairs with line i of another).

    Trailing blank lines are dropped; a blank line before the last record raises ``DataError``
    because skipping or keeping it would silently shift the alignment.
    """
    lines = list(read_lines(path, fallback_encoding=fallback_encoding))
    while lines and not lines[-1][1].strip():
        lines.pop()
    for number, line in lines:
        if not line.strip():
            raise data_error(path, "blank line inside a line-aligned file", number)
    return lines


def split_columns(
    line: str, names: Sequence[str], path: Path, number: int, *, separator: str | None = None
) -> list[str]:
    """Split a record into exactly ``len(names)`` stripped fields or raise ``DataError``.

    With ``separator=None``: tab-separated if the line has a tab (consecutive tabs count as one, and
    fields may contain spaces), else whitespace-separated.
    """
    if separator is not None:
        fields = line.split(separator)
    elif "\t" in line:
        fields = [field.strip() for field in line.split("\t") if field.strip()]
    else:
        fields = line.split()
    if len(fields) != len(names):
        raise data_error(path, f"expected {len(names)} columns ({', '.join(names)}), found {len(fields)}", number)
    return fields


def parse_float(text: str, what: str, path: Path, number: int) -> float:
    """A finite float, or ``DataError`` naming file and line."""
    try:
        value = float(text)
    except ValueError:
        raise data_error(path, f"{what} {text!r} is not a number", number) from None
    if not math.isfinite(value):
        raise data_error(path, f"{what} {text!r} is not finite", number)
    return value


def load_npy(path: Path, *, ndim: tuple[int, ...] = (2,)) -> np.ndarray:
    """Memory-map a ``.npy`` array of finite floats, checking its rank; ``DataError`` otherwise."""
    require_file(path)
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise data_error(path, f"not a readable .npy array ({exc})") from None
    return check_float_array(array, path, ndim=ndim)


def check_float_array(array: np.ndarray, path: Path, *, ndim: tuple[int, ...] = (2,)) -> np.ndarray:
    if array.ndim not in ndim or array.dtype.kind != "f":
        raise data_error(
            path,
            f"expected a float array with {' or '.join(map(str, ndim))} dimensions, "
            f"got {array.dtype} of shape {array.shape}",
        )
    if not np.isfinite(array).all():
        raise data_error(path, "contains NaN or infinite values")
    return array


# ------------------------------------------------------------------------------- building datasets


def features_arrow(array: np.ndarray) -> pa.Array:
    """A float32 ``(N, D)`` or ``(N, R, D)`` array as nested fixed-size lists.

    ``datasets`` sees this as ``List(Value("float32"), length=D)`` (nested for 3-D), and
    ``feature_array`` reads it back into NumPy without copying.
    """
    values = pa.array(np.ascontiguousarray(array, dtype=np.float32).reshape(-1))
    for size in reversed(array.shape[1:]):
        values = pa.FixedSizeListArray.from_arrays(values, size)
    return values


def make_dataset(columns: Mapping[str, Sequence[Any] | np.ndarray | pa.Array], fingerprint: str) -> datasets.Dataset:
    """An in-memory ``Dataset`` from columns; float NumPy arrays become fixed-size feature columns."""
    arrays = {}
    for name, values in columns.items():
        if isinstance(values, np.ndarray) and values.ndim >= 2:
            arrays[name] = features_arrow(values)
        elif isinstance(values, pa.Array):
            arrays[name] = values
        else:
            arrays[name] = pa.array(values)
    import datasets

    # An explicit fingerprint skips datasets' hashing of the whole table (seconds for features).
    return datasets.Dataset(pa.table(arrays), fingerprint=fingerprint)


# Converted columns of datasets without an indices mapping, per (immutable) ``datasets`` table, keyed
# by id and dropped when the table is collected: the emoji tables are shared by every task of a run, a
# string column of the 193k texts costs ~0.1-0.2 s to convert, and a default run asked ~200 times.
_COLUMNS: dict[int, dict[str, np.ndarray]] = {}


def column_array(dataset: datasets.Dataset, column: str) -> np.ndarray:
    """One column as a *read-only* NumPy array read straight from Arrow (``dataset[column]`` builds
    Python objects, about 100x slower on the 193k-row emoji texts); converted once per table and column."""
    if getattr(dataset, "_indices", None) is not None:
        return np.asarray(dataset[column])
    table = dataset.data
    columns = _COLUMNS.get(id(table))
    if columns is None:
        try:
            weakref.finalize(table, _COLUMNS.pop, id(table), None)
        except TypeError:  # not weak-referenceable: no cache
            return dataset.data.column(column).to_numpy()
        columns = _COLUMNS[id(table)] = {}
    array = columns.get(column)
    if array is None:
        array = columns[column] = dataset.data.column(column).to_numpy()
        array.flags.writeable = False
    return array


def feature_array(dataset: datasets.Dataset, column: str = "features") -> np.ndarray:
    """The feature column as one NumPy array (``(N, D)`` or ``(N, R, D)``).

    Without an indices mapping (no ``select``/``shuffle``) this is a read-only, zero-copy view of
    the memory-mapped Arrow data; copy it before writing to it.
    """
    if getattr(dataset, "_indices", None) is None:
        chunked = dataset.data.column(column)
        if chunked.num_chunks > 0 and pa.types.is_fixed_size_list(chunked.type):
            values = chunked.combine_chunks()
            shape = [len(values)]
            while pa.types.is_fixed_size_list(values.type):
                shape.append(values.type.list_size)
                values = values.flatten()
            if pa.types.is_floating(values.type) and values.null_count == 0:
                return values.to_numpy(zero_copy_only=False).reshape(shape)
    return np.asarray(dataset.with_format("numpy")[column][:])


# ----------------------------------------------------------------------------------- arrow cache


CACHE_ENV = "MMBENCH_CACHE_DIR"


def default_cache_dir() -> Path:
    """Arrow caches: ``$MMBENCH_CACHE_DIR/arrow`` if set, else the per-user cache directory."""
    override = os.environ.get(CACHE_ENV)
    base = Path(override).expanduser() if override else Path(platformdirs.user_cache_dir("mmbench"))
    return base / "arrow"


def cache_key(loader: str, version: int, inputs: Sequence[Path], params: Mapping[str, Any] | None = None) -> str:
    """sha256 over loader name and version, parameters, and (absolute path, size, mtime_ns) per input."""
    digest = hashlib.sha256()
    digest.update(json.dumps([loader, version, dict(params or {})], sort_keys=True, default=str).encode())
    for path in inputs:
        absolute = Path(path).absolute()
        try:
            stat = absolute.stat()
        except OSError:
            raise data_error(absolute, "not found") from None
        digest.update(f"\0{absolute}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    import datasets

    was_enabled = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def cached(
    loader: str,
    version: int,
    inputs: Sequence[Path],
    build: Callable[[str], DatasetLike],
    *,
    params: Mapping[str, Any] | None = None,
    cache_dir: Path | str | None = None,
) -> DatasetLike:
    """Return the cached Arrow dataset for these inputs, building it with ``build(key)`` if needed.

    The result is always the memory-mapped copy on disk. Writes go to a temporary folder renamed
    into place, so concurrent runs never see a half-written cache.
    """
    import datasets

    key = cache_key(loader, version, inputs, params)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / f"{loader}-{key}"
    if target.is_dir():
        try:
            return datasets.load_from_disk(str(target), keep_in_memory=False)
        except Exception:  # unreadable leftovers (interrupted copy, older datasets): rebuild
            shutil.rmtree(target, ignore_errors=True)
    dataset = build(key)
    root.mkdir(parents=True, exist_ok=True)
    scratch = root / f".tmp-{loader}-{uuid.uuid4().hex}"
    try:
        with _quiet_progress():
            dataset.save_to_disk(str(scratch))
        try:
            os.rename(scratch, target)
        except OSError:  # another process finished first; its copy is equivalent
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return datasets.load_from_disk(str(target), keep_in_memory=False)
