"""How model versions are stored: named numeric arrays and a JSON header in an ``.npz``.

Loaded with ``allow_pickle=False`` and checked (exactly the expected arrays, each of
the expected kind of number), so a stored model is data, never code. Each model then
validates its own numbers (indices in range, and so on)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np


def write(header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    encoded = np.frombuffer(json.dumps(dict(header)).encode(), dtype=np.uint8)
    np.savez_compressed(buffer, header=encoded, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def read(
    data: bytes, kinds: Mapping[str, str], what: str
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and arrays ``write`` stored; ``kinds`` maps each array's name to its
    numpy kind ("f", "i", "b", "u"). ``ValueError`` naming ``what`` on anything else."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            if sorted(archive.files) != sorted(("header", *kinds)):
                raise ValueError(f"unexpected arrays {archive.files}")
            arrays = {name: archive[name] for name in archive.files}
        header = json.loads(arrays.pop("header").astype(np.uint8).tobytes())
    except (OSError, EOFError, zipfile.BadZipFile, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"not {what}: {e}") from e
    if not isinstance(header, dict):
        raise ValueError(f"not {what}: the header is not an object")
    for name, array in arrays.items():
        if array.dtype.kind != kinds[name]:
            raise ValueError(f"array {name} has dtype {array.dtype}")
    return header, arrays
