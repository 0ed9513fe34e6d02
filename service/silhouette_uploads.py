"""Silhouette sequences uploaded for enrollment: an ``.npy`` array or a zip of 64×64 PNG frames.

Both formats say how large they are before they are read, and both can lie: a 1 kB ``.npy`` header
may declare a terabyte array, a small zip may inflate to gigabytes (a zip bomb), a 100-byte PNG may
declare a picture of 100 000 × 100 000 pixels. So every size is checked from the headers before
anything is loaded or decompressed, and reads are bounded by those checked sizes, whatever the
headers claim: memory stays within a few megabytes per upload.
"""

import struct
import zipfile
import zlib
from pathlib import Path
from tokenize import TokenError
from typing import BinaryIO, Literal

import cv2
import numpy as np

from models.embedder import MAX_FRAMES, MIN_FRAMES
from service.errors import PayloadTooLargeError, UnprocessableError

SIZE = 64  # silhouettes are uint8 [N, 64, 64]
MAX_ZIP_MEMBERS = MAX_FRAMES + 64  # the PNG frames plus a few folders and side files
MAX_CENTRAL_DIRECTORY = MAX_ZIP_MEMBERS * 1024  # bytes: one short record per member
MAX_PNG_BYTES = 64 * 1024  # a 64×64 grayscale PNG takes at most ~4.2 kB plus its metadata chunks
MAX_ZIP_RATIO = 100  # PNG data is compressed already: zipping it again gains little
_EOCD = struct.Struct("<4s4H2LH")  # a zip's end-of-central-directory record
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _bad(message: str) -> UnprocessableError:
    return UnprocessableError(message, code="bad_silhouettes")


def _too_large(message: str) -> PayloadTooLargeError:
    return PayloadTooLargeError(message, code="silhouettes_too_large")


def read_silhouettes(path: Path, kind: Literal["npy", "zip"]) -> np.ndarray:
    """A silhouette sequence uint8 [N, 64, 64] (its first ``MAX_FRAMES`` frames) from an upload.

    422 ``bad_silhouettes`` for a file that is not such a sequence, 413 ``silhouettes_too_large``
    for one whose headers declare more than a sequence can be.
    """
    return _read_npy(path) if kind == "npy" else _read_png_zip(path)


def _npy_header(handle: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(handle)
    raise _bad(f".npy format version {version[0]}.{version[1]} is not supported; save with numpy.save")


def _read_npy(path: Path) -> np.ndarray:
    """The header is checked (uint8 [N, 64, 64], the file as long as it says) before the data is mapped."""
    try:
        with path.open("rb") as handle:
            shape, _, dtype = _npy_header(handle)
            offset = handle.tell()
    except (ValueError, OSError, EOFError, SyntaxError, TokenError, RecursionError, MemoryError):
        # numpy parses the header text with Python's own tokenizer: a mangled header raises any of
        # these (found by tests/pipeline/test_fuzz_inputs.py); its messages also name the server's file
        raise _bad("the upload is not a readable .npy array") from None
    if dtype != np.uint8 or len(shape) != 3 or shape[1:] != (SIZE, SIZE):
        raise _bad(f"silhouettes must be uint8 [N, {SIZE}, {SIZE}], got {dtype} {list(shape)}")
    if shape[0] < MIN_FRAMES:
        raise _bad(f"{shape[0]} silhouettes; at least {MIN_FRAMES} needed")
    expected, actual = offset + shape[0] * SIZE * SIZE, path.stat().st_size
    if actual != expected:
        raise _bad(f"the .npy header declares {shape[0]} frames ({expected} bytes), the file has {actual} bytes")
    mapped = np.lib.format.open_memmap(path, mode="r")
    return np.array(mapped[:MAX_FRAMES])  # a copy: only the frames the model takes are read


def _check_zip_directory(handle: BinaryIO) -> None:
    """The member count and directory size the archive's end record declares, checked before the central
    directory is parsed (parsing builds one object per member: millions for a crafted archive)."""
    handle.seek(0, 2)
    size = handle.tell()
    tail_start = max(0, size - _EOCD.size - 0xFFFF)  # the record, then a comment of up to 64 kB
    handle.seek(tail_start)
    tail = handle.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        raise zipfile.BadZipFile
    entries, directory_bytes = _EOCD.unpack_from(tail, at)[4:6]  # 0xFFFF…: Zip64, far larger still
    if entries > MAX_ZIP_MEMBERS:
        raise _too_large(f"the zip holds {entries} members; at most {MAX_ZIP_MEMBERS}")
    if directory_bytes > MAX_CENTRAL_DIRECTORY:
        raise _too_large(f"the zip's directory takes {directory_bytes} bytes; at most {MAX_CENTRAL_DIRECTORY}")


def _png_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The PNG members, refused before any is inflated when their declared sizes are implausible."""
    members = sorted((i for i in archive.infolist() if i.filename.lower().endswith(".png")), key=lambda i: i.filename)
    for info in members:
        name = info.filename[:100]
        if info.file_size > MAX_PNG_BYTES:
            raise _too_large(f"{name} inflates to {info.file_size} bytes; a {SIZE}×{SIZE} PNG is far smaller")
        if info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
            raise _too_large(f"{name} is compressed {info.file_size // max(info.compress_size, 1)}:1")
    if not MIN_FRAMES <= len(members) <= MAX_FRAMES:
        raise _bad(f"the zip holds {len(members)} PNG files; {MIN_FRAMES}..{MAX_FRAMES} expected")
    return members


def _read_png_zip(path: Path) -> np.ndarray:
    try:
        with path.open("rb") as handle:
            _check_zip_directory(handle)
            with zipfile.ZipFile(handle) as archive:
                frames = []
                for info in _png_members(archive):
                    with archive.open(info) as member:  # reads stop at the declared, checked size
                        frames.append(_decode_png(member.read(MAX_PNG_BYTES + 1), info.filename[:100]))
    # the zip module's messages may name the server's file; encrypted members raise RuntimeError, corrupt
    # deflate streams zlib.error (found by tests/pipeline/test_fuzz_inputs.py)
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError, ValueError):
        raise _bad("the upload is not a readable zip of PNG files") from None
    return np.stack(frames)


def _decode_png(data: bytes, name: str) -> np.ndarray:
    """A 64×64 grayscale frame; the PNG's declared size is checked before it is decoded."""
    if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise _bad(f"{name} is not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    if (width, height) != (SIZE, SIZE):
        raise _bad(f"{name}: frames must be {SIZE}×{SIZE} pixels, got {width}×{height}")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise _bad(f"{name} is not a readable PNG")
    return image
