"""fastMRI HDF5 volumes: the in-memory/lazy volume type and its reader and writer.

One module for one file format (over 500 lines because the reader validates every field of
the schema with an error naming the file and the field, and the lazy handles, header
parsing and writer must agree on that schema).

A fastMRI file holds one volume:

- ``kspace``: complex64, multi-coil ``[slices, coils, H, W]`` or single-coil ``[slices, H, W]``
- ``reconstruction_rss`` (multi-coil) or ``reconstruction_esc`` (single-coil):
  float32 ``[slices, h, w]`` (absent in the challenge's test files)
- ``ismrmrd_header``: XML bytes
- attrs ``acquisition``, ``max``, ``norm``, ``patient_id`` (``max`` may be absent)

Reading is lazy: :func:`read_fastmri_volume` reads the header and attributes only; the
arrays are :class:`LazyH5Array` handles that open the file for each slice they are asked for
(safe to pickle into DataLoader workers).

Documented fallbacks:

- A missing ``max`` attribute is computed from the reconstruction by :func:`volume_max`
  (slice by slice, on demand). Without a reconstruction either, it raises a clear error.
- A missing ``ismrmrd_header`` reads as ``b""``; :func:`parse_ismrmrd_header` turns an empty
  header into an :class:`IsmrmrdInfo` whose fields are all ``None``.
- Any other top-level dataset of the file (e.g. ``reconstruction_rss`` next to
  ``reconstruction_esc`` in single-coil knee files) is kept, lazily, in
  :attr:`FastMRIVolume.extra_datasets` and written back unchanged.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import uuid
import xml.etree.ElementTree as ElementTree
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import h5py
import numpy as np

__all__ = [
    "ISMRMRD_NAMESPACE",
    "EncodingLimits",
    "FastMRIFormatError",
    "FastMRIVolume",
    "IsmrmrdInfo",
    "LazyH5Array",
    "middle_slice_image",
    "parse_ismrmrd_header",
    "read_fastmri_volume",
    "volume_max",
    "write_fastmri_volume",
]

logger = logging.getLogger(__name__)

ISMRMRD_NAMESPACE = "http://www.ismrm.org/ISMRMRD"
KSPACE_KEY = "kspace"
HEADER_KEY = "ismrmrd_header"
RSS_KEY = "reconstruction_rss"
ESC_KEY = "reconstruction_esc"

ArrayLike = Union[np.ndarray, "LazyH5Array"]


class FastMRIFormatError(ValueError):
    """A file does not follow the fastMRI HDF5 schema; the message names file and field."""


#: Read-only HDF5 files kept open, per process, least recently used first.
_OPEN_FILES: OrderedDict[tuple[Path, int, tuple[tuple[str, Any], ...]], _OpenFile] = OrderedDict()
_OPEN_FILES_LOCK = threading.Lock()
#: At most this many files stay open per process (a fastMRI epoch cycles through thousands).
MAX_OPEN_FILES = 32


@dataclass(frozen=True)
class _OpenFile:
    """An open read-only file and the identity of the file it was opened from."""

    handle: h5py.File
    signature: tuple[int, int, int]
    datasets: dict[str, h5py.Dataset] = field(default_factory=dict)

    def dataset(self, key: str) -> h5py.Dataset:
        """The file's dataset ``key`` (looked up once: h5py's lookup costs as much as a
        small slice read)."""
        if key not in self.datasets:
            self.datasets[key] = self.handle[key]
        return self.datasets[key]


def _file_signature(path: Path) -> tuple[int, int, int]:
    status = os.stat(path)
    return (status.st_ino, status.st_size, status.st_mtime_ns)


def _reading_handle(path: Path, file_options: tuple[tuple[str, Any], ...]) -> _OpenFile:
    """The open read-only file ``path`` of this process.

    Reopened when the file on disk changed (another inode, size or mtime: a writer replaces
    files by rename) and after a fork (the cache key holds the process id); at most
    :data:`MAX_OPEN_FILES` stay open.
    """
    key = (path, os.getpid(), file_options)
    signature = _file_signature(path)
    with _OPEN_FILES_LOCK:
        cached = _OPEN_FILES.get(key)
        if cached is not None and cached.signature == signature and cached.handle.id.valid:
            _OPEN_FILES.move_to_end(key)
            return cached
        if cached is not None:
            _close_quietly(cached.handle)
        opened = _OpenFile(h5py.File(path, "r", **dict(file_options)), signature)
        _OPEN_FILES[key] = opened
        while len(_OPEN_FILES) > MAX_OPEN_FILES:
            _, oldest = _OPEN_FILES.popitem(last=False)
            _close_quietly(oldest.handle)
        return opened


def _forget_handle(path: Path, file_options: tuple[tuple[str, Any], ...]) -> None:
    """Close and drop this process's cached handle of ``path`` (after a failed read)."""
    with _OPEN_FILES_LOCK:
        cached = _OPEN_FILES.pop((path, os.getpid(), file_options), None)
    if cached is not None:
        _close_quietly(cached.handle)


def _close_quietly(handle: h5py.File) -> None:
    try:
        handle.close()
    except Exception:  # noqa: BLE001 - a handle from a parent process may not close cleanly
        logger.debug("could not close cached HDF5 handle %r", handle)


@dataclass(frozen=True)
class LazyH5Array:
    """A dataset inside an HDF5 file, read only when indexed.

    Indexing follows h5py's rules (integers, slices, increasing index lists). The handle
    holds no open file, so it pickles cheaply into DataLoader worker processes; reads go
    through a small per-process cache of read-only files (:func:`_reading_handle`), because
    opening an HDF5 file costs more than reading one slice of it.

    Attributes:
        path: the HDF5 file.
        key: the dataset's name in the file (e.g. ``kspace``).
        shape: the dataset's shape (read from the file's metadata, no voxels).
        dtype: the dataset's dtype.
        file_options: extra keyword arguments for ``h5py.File`` (e.g. ``locking``), as
            ``(name, value)`` pairs so the handle stays hashable.
    """

    path: Path
    key: str
    shape: tuple[int, ...]
    dtype: np.dtype
    file_options: tuple[tuple[str, Any], ...] = ()

    def __getitem__(self, index: Any) -> np.ndarray:
        """Read ``dataset[index]`` from the (cached, read-only) file."""
        try:
            return _reading_handle(self.path, self.file_options).dataset(self.key)[index]
        except (OSError, KeyError) as exc:
            _forget_handle(self.path, self.file_options)
            raise FastMRIFormatError(
                f"{self.path}: cannot read dataset '{self.key}' at index {index!r}; the file "
                f"changed or is damaged since it was opened ({exc})"
            ) from exc

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        data = self[()]
        return data if dtype is None else data.astype(dtype)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        shape = ", ".join(str(size) for size in self.shape)
        return f"LazyH5Array({str(self.path)!r}, key={self.key!r}, {self.dtype}[{shape}])"


@dataclass(repr=False, eq=False)
class FastMRIVolume:
    """One fastMRI volume, lazily backed by a file or fully in memory.

    Volumes compare by identity (their arrays have no single truth value).

    Attributes:
        kspace: complex k-space, ``[slices, coils, H, W]`` or ``[slices, H, W]``.
        reconstruction: target images ``[slices, h, w]`` (RSS or ESC), or ``None``.
        ismrmrd_header: the ISMRMRD XML header as bytes.
        attrs: file attributes (``acquisition``, ``max``, ``norm``, ``patient_id``, and any
            other attribute the file carries, kept unchanged).
        source: the file this volume was read from, or ``None`` when built in memory.
        extra_datasets: any other top-level dataset of the file, by name, kept unchanged
            so that writing a read volume back loses nothing.
    """

    kspace: ArrayLike
    reconstruction: ArrayLike | None
    ismrmrd_header: bytes
    attrs: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None
    extra_datasets: dict[str, ArrayLike] = field(default_factory=dict)

    @property
    def is_multicoil(self) -> bool:
        """True for ``[slices, coils, H, W]`` k-space."""
        return len(self.kspace.shape) == 4

    @property
    def reconstruction_key(self) -> str:
        """``reconstruction_rss`` for multi-coil, ``reconstruction_esc`` for single-coil."""
        return RSS_KEY if self.is_multicoil else ESC_KEY

    @property
    def num_slices(self) -> int:
        return int(self.kspace.shape[0])

    @property
    def num_coils(self) -> int:
        """Receiver coils; 1 for single-coil k-space."""
        return int(self.kspace.shape[1]) if self.is_multicoil else 1

    @property
    def header_info(self) -> IsmrmrdInfo:
        """The parsed ISMRMRD header (see :func:`parse_ismrmrd_header`)."""
        return parse_ismrmrd_header(self.ismrmrd_header, source=self.source)

    @property
    def name(self) -> str:
        """The source file's name, or ``<in memory>``."""
        return str(self.source) if self.source is not None else "<in memory>"

    def __repr__(self) -> str:
        recon = _shape_repr(self.reconstruction) if self.reconstruction is not None else None
        return (
            f"FastMRIVolume(source={self.name!r}, kspace={_shape_repr(self.kspace)}, "
            f"reconstruction={recon}, acquisition={self.attrs.get('acquisition')!r}, "
            f"patient_id={self.attrs.get('patient_id')!r})"
        )


@dataclass(frozen=True)
class EncodingLimits:
    """Limits of one ISMRMRD encoding counter (e.g. ``kspace_encoding_step_1``)."""

    minimum: int | None = None
    maximum: int | None = None
    center: int | None = None


@dataclass(frozen=True)
class IsmrmrdInfo:
    """The parts of an ISMRMRD header the project uses; ``None`` where the header is silent.

    Attributes:
        encoded_matrix: encoded-space matrix size ``(x, y, z)`` (k-space size).
        recon_matrix: recon-space matrix size ``(x, y, z)`` (target image size).
        encoded_fov_mm: encoded-space field of view in mm ``(x, y, z)``.
        recon_fov_mm: recon-space field of view in mm ``(x, y, z)``.
        encoding_step_1: limits of ``kspace_encoding_step_1`` (phase encoding lines).
        system_vendor: scanner vendor (``systemVendor``).
        system_model: scanner model (``systemModel``).
        field_strength_t: main field strength in tesla (``systemFieldStrength_T``).
        receiver_channels: number of receiver channels.
    """

    encoded_matrix: tuple[int, int, int] | None = None
    recon_matrix: tuple[int, int, int] | None = None
    encoded_fov_mm: tuple[float, float, float] | None = None
    recon_fov_mm: tuple[float, float, float] | None = None
    encoding_step_1: EncodingLimits = field(default_factory=EncodingLimits)
    system_vendor: str | None = None
    system_model: str | None = None
    field_strength_t: float | None = None
    receiver_channels: int | None = None


def parse_ismrmrd_header(xml: bytes | str, source: str | os.PathLike | None = None) -> IsmrmrdInfo:
    """Parse the ISMRMRD XML header of a fastMRI file.

    Elements may be missing (their fields are ``None``); the namespace
    ``http://www.ismrm.org/ISMRMRD`` is used when the document declares it and plain tag
    names are accepted otherwise.

    Args:
        xml: the header as stored in ``ismrmrd_header``; empty means "no header".
        source: the file the header came from, named in error messages.

    Returns:
        The parsed :class:`IsmrmrdInfo`.

    Raises:
        FastMRIFormatError: the header is not well-formed XML or holds a non-numeric size.
    """
    where = f"{source}: " if source is not None else ""
    text = xml.encode("utf-8") if isinstance(xml, str) else bytes(xml)
    if not text.strip():
        return IsmrmrdInfo()
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise FastMRIFormatError(
            f"{where}field '{HEADER_KEY}' is not well-formed ISMRMRD XML ({exc})"
        ) from exc
    prefix = f"{{{ISMRMRD_NAMESPACE}}}" if root.tag.startswith(f"{{{ISMRMRD_NAMESPACE}}}") else ""

    def text_at(*names: str) -> str | None:
        element = root.find("/".join(prefix + name for name in names))
        if element is None or element.text is None or not element.text.strip():
            return None
        return element.text.strip()

    def number_at(kind: type, *names: str) -> Any:
        value = text_at(*names)
        if value is None:
            return None
        try:
            return kind(float(value)) if kind is int else kind(value)
        except ValueError as exc:
            raise FastMRIFormatError(
                f"{where}field '{HEADER_KEY}' element {'/'.join(names)} should be a number, "
                f"got {value!r}"
            ) from exc

    def triple(kind: type, *names: str) -> tuple | None:
        values = [number_at(kind, *names, axis) for axis in ("x", "y", "z")]
        return None if any(value is None for value in values) else tuple(values)

    step_1 = ("encoding", "encodingLimits", "kspace_encoding_step_1")
    return IsmrmrdInfo(
        encoded_matrix=triple(int, "encoding", "encodedSpace", "matrixSize"),
        recon_matrix=triple(int, "encoding", "reconSpace", "matrixSize"),
        encoded_fov_mm=triple(float, "encoding", "encodedSpace", "fieldOfView_mm"),
        recon_fov_mm=triple(float, "encoding", "reconSpace", "fieldOfView_mm"),
        encoding_step_1=EncodingLimits(
            minimum=number_at(int, *step_1, "minimum"),
            maximum=number_at(int, *step_1, "maximum"),
            center=number_at(int, *step_1, "center"),
        ),
        system_vendor=text_at("acquisitionSystemInformation", "systemVendor"),
        system_model=text_at("acquisitionSystemInformation", "systemModel"),
        field_strength_t=number_at(
            float, "acquisitionSystemInformation", "systemFieldStrength_T"
        ),
        receiver_channels=number_at(int, "acquisitionSystemInformation", "receiverChannels"),
    )


def read_fastmri_volume(
    path: str | os.PathLike, file_options: Mapping[str, Any] | None = None
) -> FastMRIVolume:
    """Open a fastMRI file and validate its schema, reading no voxels.

    Args:
        path: the ``.h5`` file.
        file_options: extra keyword arguments for ``h5py.File`` (e.g. ``{"locking": False}``).

    Returns:
        A :class:`FastMRIVolume` whose arrays are :class:`LazyH5Array` handles.

    Raises:
        FileNotFoundError: the file does not exist.
        FastMRIFormatError: the file is not HDF5, is truncated, or breaks the schema
            (missing or non-complex ``kspace``, wrong dimensions, a reconstruction whose
            slice count differs from the k-space's); the message names file and field.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"fastMRI file not found: {path}")
    options = tuple(sorted((file_options or {}).items()))
    try:
        # The handle stays open in the per-process cache: the slice reads that follow reuse it.
        return _volume_from_file(_reading_handle(path, options).handle, path, options)
    except FastMRIFormatError:
        _forget_handle(path, options)
        raise
    except (OSError, KeyError, RuntimeError, TypeError, ValueError) as exc:
        _forget_handle(path, options)
        raise FastMRIFormatError(
            f"{path}: not a readable HDF5 file (not HDF5, truncated or damaged); expected a "
            f"fastMRI volume ({exc})"
        ) from exc


def _volume_from_file(
    h5_file: h5py.File, path: Path, options: tuple[tuple[str, Any], ...]
) -> FastMRIVolume:
    """Validate an open fastMRI file and wrap its datasets in lazy handles."""
    kspace = _lazy_dataset(h5_file, KSPACE_KEY, path, options)
    if kspace is None:
        raise FastMRIFormatError(
            f"{path}: missing dataset '{KSPACE_KEY}' (found: {sorted(h5_file.keys())}); "
            "expected complex k-space [slices, coils, H, W] or [slices, H, W]"
        )
    _check_kspace(kspace.dtype, kspace.shape, path)

    recon_key = RSS_KEY if len(kspace.shape) == 4 else ESC_KEY
    reconstruction = _lazy_dataset(h5_file, recon_key, path, options)
    header = _read_header_bytes(h5_file, path)
    if reconstruction is not None:
        _check_reconstruction(
            reconstruction.dtype, reconstruction.shape, kspace.shape, recon_key, path
        )
        _check_image_size(reconstruction.shape, kspace.shape, recon_key, header, path)

    extra: dict[str, LazyH5Array] = {}
    for key in sorted(h5_file.keys()):
        if key in (KSPACE_KEY, HEADER_KEY, recon_key):
            continue
        lazy = _lazy_dataset(h5_file, key, path, options)
        if lazy is None:
            logger.warning(
                "%s: ignoring HDF5 group '%s' (not part of the fastMRI schema)", path, key
            )
        else:
            extra[key] = lazy

    return FastMRIVolume(
        kspace=kspace,
        reconstruction=reconstruction,
        ismrmrd_header=header,
        attrs=dict(h5_file.attrs),
        source=path,
        extra_datasets=extra,
    )


def _lazy_dataset(
    h5_file: h5py.File, key: str, path: Path, options: tuple[tuple[str, Any], ...]
) -> LazyH5Array | None:
    """A lazy handle on ``h5_file[key]``; ``None`` when absent or not a dataset."""
    item = h5_file.get(key)
    if not isinstance(item, h5py.Dataset):
        return None
    return LazyH5Array(
        path=path, key=key, shape=tuple(int(n) for n in item.shape), dtype=item.dtype,
        file_options=options,
    )


def _read_header_bytes(h5_file: h5py.File, path: Path) -> bytes:
    """The ``ismrmrd_header`` dataset as bytes (``b""`` when the file has none)."""
    item = h5_file.get(HEADER_KEY)
    if item is None:
        logger.debug("%s: no '%s' dataset", path, HEADER_KEY)
        return b""
    if not isinstance(item, h5py.Dataset):
        raise FastMRIFormatError(f"{path}: field '{HEADER_KEY}' should be a dataset of XML bytes")
    value = item[()]
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else b""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value)
    raise FastMRIFormatError(
        f"{path}: field '{HEADER_KEY}' should hold XML bytes, got {type(value).__name__}"
    )


def _check_kspace(dtype: np.dtype, shape: tuple[int, ...], where: Any) -> None:
    if not np.issubdtype(dtype, np.complexfloating):
        raise FastMRIFormatError(
            f"{where}: field '{KSPACE_KEY}' has dtype {dtype}; expected complex (complex64)"
        )
    if len(shape) not in (3, 4):
        raise FastMRIFormatError(
            f"{where}: field '{KSPACE_KEY}' has shape {tuple(shape)} ({len(shape)} dims); expected "
            "[slices, coils, H, W] (multi-coil) or [slices, H, W] (single-coil)"
        )
    if any(int(size) == 0 for size in shape):
        empty = "zero slices" if int(shape[0]) == 0 else "an empty dimension"
        raise FastMRIFormatError(
            f"{where}: field '{KSPACE_KEY}' has shape {tuple(shape)} ({empty}); expected at "
            "least one slice with a non-empty k-space"
        )


def _check_image_size(
    shape: tuple[int, ...], kspace_shape: tuple[int, ...], key: str, header: bytes, where: Any
) -> None:
    """The target's ``h × w`` must fit the k-space and match the header's recon matrix."""
    height, width = int(shape[-2]), int(shape[-1])
    kspace_h, kspace_w = int(kspace_shape[-2]), int(kspace_shape[-1])
    if height > kspace_h or width > kspace_w:
        raise FastMRIFormatError(
            f"{where}: field '{key}' is {height}x{width} but '{KSPACE_KEY}' is "
            f"{kspace_h}x{kspace_w}; a target image cannot be larger than its k-space "
            "(they belong to different acquisitions?)"
        )
    if not header:
        return
    try:
        matrix = parse_ismrmrd_header(header, source=str(where)).recon_matrix
    except FastMRIFormatError:
        return  # an unreadable header is reported where the header is used
    if matrix is not None and (matrix[0], matrix[1]) != (height, width):
        raise FastMRIFormatError(
            f"{where}: field '{key}' is {height}x{width} but the ISMRMRD header's recon matrix "
            f"(encoding/reconSpace/matrixSize) is {matrix[0]}x{matrix[1]}; expected the target "
            "image to have the recon matrix size"
        )


def _check_reconstruction(
    dtype: np.dtype, shape: tuple[int, ...], kspace_shape: tuple[int, ...], key: str, where: Any
) -> None:
    if not np.issubdtype(dtype, np.floating):
        raise FastMRIFormatError(f"{where}: field '{key}' has dtype {dtype}; expected float32")
    if len(shape) != 3:
        raise FastMRIFormatError(
            f"{where}: field '{key}' has shape {tuple(shape)}; expected [slices, h, w]"
        )
    if shape[0] != kspace_shape[0]:
        raise FastMRIFormatError(
            f"{where}: field '{key}' has {shape[0]} slices but '{KSPACE_KEY}' has "
            f"{kspace_shape[0]}; expected one target image per k-space slice"
        )


def write_fastmri_volume(
    path: str | os.PathLike,
    volume: FastMRIVolume,
    compression: str | None = None,
    compression_opts: Any = None,
) -> None:
    """Write a volume in the fastMRI schema, atomically.

    The file is written next to ``path`` under a temporary name (not ending in ``.h5``, so
    a folder listing never mistakes it for a volume) and renamed over ``path`` only once
    complete: a failed write leaves any previous file intact. Arrays are copied slice by
    slice, so writing a lazily read volume does not hold it in memory.

    Args:
        path: the target ``.h5`` file; missing parent folders are created.
        volume: the volume; k-space is stored as complex64, the reconstruction as float32
            under ``reconstruction_rss`` (multi-coil) or ``reconstruction_esc``.
        compression: optional h5py compression for the arrays (real fastMRI files use none).
        compression_opts: options for ``compression``.

    Raises:
        FastMRIFormatError: the volume breaks the schema (named field and expectation).
    """
    path = Path(path)
    where = f"volume to write ({path})"
    _check_kspace(np.result_type(volume.kspace.dtype), volume.kspace.shape, where)
    header = volume.ismrmrd_header
    header = header.encode("utf-8") if isinstance(header, str) else bytes(header)
    if volume.reconstruction is not None:
        _check_reconstruction(
            np.result_type(volume.reconstruction.dtype), volume.reconstruction.shape,
            volume.kspace.shape, volume.reconstruction_key, where,
        )
        _check_image_size(
            volume.reconstruction.shape, volume.kspace.shape, volume.reconstruction_key,
            header, where,
        )
    for name, value in volume.attrs.items():
        if value is None:
            raise FastMRIFormatError(
                f"volume to write: attribute '{name}' is None; omit the attribute instead"
            )

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    arrays = {KSPACE_KEY: (volume.kspace, np.complex64)}
    if volume.reconstruction is not None:
        arrays[volume.reconstruction_key] = (volume.reconstruction, np.float32)
    for key, array in volume.extra_datasets.items():
        arrays.setdefault(key, (array, None))
    try:
        with h5py.File(temporary, "w") as h5_file:
            for key, (array, dtype) in arrays.items():
                _write_array(h5_file, key, array, dtype, compression, compression_opts)
            h5_file.create_dataset(HEADER_KEY, data=header, dtype=h5py.string_dtype("utf-8"))
            for name, value in volume.attrs.items():
                h5_file.attrs[name] = value
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _write_array(
    h5_file: h5py.File,
    key: str,
    array: ArrayLike,
    dtype: Any,
    compression: str | None,
    compression_opts: Any,
) -> None:
    """Create ``h5_file[key]`` and fill it one leading index at a time."""
    dtype = np.dtype(dtype if dtype is not None else array.dtype)
    shape = tuple(int(n) for n in array.shape)
    if len(shape) == 0:
        h5_file.create_dataset(key, data=np.asarray(array, dtype=dtype))
        return
    chunks = (1, *shape[1:]) if all(shape) and compression is not None else None
    dataset = h5_file.create_dataset(
        key, shape=shape, dtype=dtype, chunks=chunks,
        compression=compression, compression_opts=compression_opts,
    )
    for index in range(shape[0]):
        dataset[index] = np.asarray(array[index], dtype=dtype)


def volume_max(volume: FastMRIVolume) -> float:
    """The volume's intensity maximum, used to normalise targets.

    Uses the ``max`` attribute when present; otherwise (documented fallback) computes the
    maximum of the reconstruction slice by slice, on demand.

    Raises:
        FastMRIFormatError: ``max`` is not a positive finite number, or it is missing and
            the volume has no reconstruction to compute it from.
    """
    if "max" in volume.attrs:
        raw = volume.attrs["max"]
        try:
            value = float(raw)
        except (TypeError, ValueError) as exc:
            raise FastMRIFormatError(
                f"{volume.name}: attribute 'max' should be a number, got {raw!r}"
            ) from exc
        origin = "attribute 'max'"
    elif volume.reconstruction is not None:
        recon = volume.reconstruction
        value = max(float(np.max(recon[index])) for index in range(recon.shape[0]))
        origin = f"maximum of '{volume.reconstruction_key}' (no 'max' attribute)"
        logger.debug("%s: no 'max' attribute; computed %s = %g", volume.name, origin, value)
    else:
        raise FastMRIFormatError(
            f"{volume.name}: missing attribute 'max' and no '{volume.reconstruction_key}' to "
            "compute it from; expected one of them to normalise the targets"
        )
    if not math.isfinite(value) or value <= 0:
        raise FastMRIFormatError(
            f"{volume.name}: {origin} is {value}; expected a positive finite number"
        )
    return value


def middle_slice_image(volume: FastMRIVolume) -> np.ndarray:
    """A magnitude image of the volume's middle slice, for previews.

    The reconstruction's middle slice when there is one, else the root-sum-of-squares of
    the inverse 2D FFT of the middle k-space slice (a single slice is read either way).
    """
    middle = volume.num_slices // 2
    if volume.reconstruction is not None:
        return np.asarray(volume.reconstruction[middle], dtype=np.float32)
    kspace = np.asarray(volume.kspace[middle])
    if kspace.ndim == 2:
        kspace = kspace[None]
    coil_images = np.fft.fftshift(
        np.fft.ifft2(np.fft.ifftshift(kspace, axes=(-2, -1)), norm="ortho"), axes=(-2, -1)
    )
    return np.sqrt(np.sum(np.abs(coil_images) ** 2, axis=0)).astype(np.float32)


def _shape_repr(array: ArrayLike) -> str:
    shape = ", ".join(str(size) for size in array.shape)
    return f"{np.dtype(array.dtype)}[{shape}]"
