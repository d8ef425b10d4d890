"""Reading one image file as float32 (H, W, 3) RGB in [0, 1]: the decoding policy for every kind of file
(:func:`load_image`), and the one-line error that names an unreadable file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from rsa_toolkit.errors import UserInputError

__all__ = ["load_image"]


def _tiff_bits(im: Image.Image) -> int:
    """The largest BitsPerSample of a TIFF (tag 258), 8 when absent."""
    bits = getattr(im, "tag_v2", {}).get(258, 8)
    return max(bits) if isinstance(bits, tuple) else int(bits)


def _high_bit_colour_tiff(path: Path) -> np.ndarray:
    """A 16-bit RGB(A) TIFF (contiguous or planar) read with tifffile, a dependency of scikit-image. Pillow keeps
    only the high byte of contiguous ones and mis-decodes planar ones."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        values = page.asarray()
        if int(page.planarconfig) == 2 and values.ndim == 3:  # PLANARCONFIG.SEPARATE: (samples, H, W)
            values = np.moveaxis(values, 0, -1)
    if values.ndim != 3 or values.shape[2] not in (3, 4) or values.dtype != np.uint16:
        raise ValueError(f"unsupported colour TIFF layout: shape {values.shape}, dtype {values.dtype}")
    return np.ascontiguousarray(values[..., :3].astype(np.float32) / np.float32(65535))


def _decode(im: Image.Image, path: Path) -> np.ndarray:
    """Pillow image -> float32 (H, W, 3) in [0, 1]. See :func:`load_image` for the policy per mode."""
    if im.format == "TIFF" and im.mode in ("RGB", "RGBA", "RGBX") and _tiff_bits(im) > 8:
        return _high_bit_colour_tiff(path)
    im.load()
    im = ImageOps.exif_transpose(im)
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        gray = np.asarray(im).astype(np.float32) / np.float32(65535)
    elif mode == "I":
        values = np.asarray(im)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(f"32-bit integer pixels outside 0..65535 (range {values.min()}..{values.max()})")
        gray = values.astype(np.float32) / np.float32(65535)
    elif mode == "F":
        gray = np.asarray(im, dtype=np.float32)
        if gray.size and not (np.isfinite(gray).all() and gray.min() >= 0.0 and gray.max() <= 1.0):
            raise ValueError("floating-point pixels must lie in [0, 1]")
    elif mode in ("1", "L", "LA", "La"):
        gray = np.asarray(im.convert("LA" if mode == "La" else mode).convert("L")).astype(np.float32) / np.float32(255)
    else:
        if mode == "P" and "transparency" in im.info:
            im = im.convert("RGBA")  # Pillow's recommended route for palette transparency; alpha dropped below
        rgb = np.asarray(im.convert("RGB")).astype(np.float32) / np.float32(255)
        return np.ascontiguousarray(rgb)
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))


def _open_error(path: Path, exc: BaseException) -> UserInputError:
    if isinstance(exc, UnidentifiedImageError):  # Pillow names the stream it read (<_io.BytesIO object at 0x...>)
        reason = "it is not a readable image: " + (
            "the file is empty (0 bytes)" if _size(path) == 0 else "its content is no image format Pillow knows")
    else:
        reason = re.sub(r"<_io\.\w+ object at 0x[0-9a-fA-F]+>", f"'{path.name}'", str(exc).strip()) \
            or type(exc).__name__
        if _size(path) == 0:
            reason = f"it is not a readable image: the file is empty (0 bytes); {reason}"
    return UserInputError(
        f"Cannot read image '{path}': {reason}. Expected a PNG, JPEG, BMP, TIFF or WebP image; "
        "replace or remove the file."
    )


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Load one image file as float32 (H, W, 3) RGB in [0, 1].

    Policy per kind of file (Pillow decodes; EXIF orientation is applied; a multi-frame file gives its first frame):

    - 8-bit RGB: / 255. Grayscale (L, 1-bit): / 255 and replicated to 3 channels. Palette (P): its RGB colours.
      CMYK, YCbCr and other colour modes: Pillow's conversion to RGB.
    - Alpha (RGBA, LA, PA, palette transparency) is dropped: the stored colour is kept and not composited on any
      background, as the released Taskonomy loader does (``img[:, :, :3]``). Fully transparent pixels therefore show
      whatever colour the file stores there.
    - 16-bit grayscale (PNG/TIFF, modes I;16 / I): / 65535, full precision.
    - 16-bit RGB(A) TIFF (contiguous or planar): read with tifffile, / 65535, full precision.
    - 16-bit RGB(A) PNG: Pillow has no 16-bit colour mode and decodes these to 8 bits (the high byte, v // 256);
      they are accepted at that precision (error <= 1/255 against v / 65535, the precision of the 8-bit images the
      Taskonomy networks were trained on). Convert them to 16-bit TIFF to keep full precision.
    - 32-bit float grayscale (TIFF mode F): accepted if its values lie in [0, 1], else an error.

    Raises :class:`UserInputError` naming the file when it cannot be opened or decoded.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            return _decode(im, path)
    except UserInputError:
        raise
    except FileNotFoundError:
        raise UserInputError(f"Image file '{path}' does not exist.") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise _open_error(path, exc) from None
