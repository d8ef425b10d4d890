"""Probe sets: image decoding per file kind, the folder policy, the content hash, and the built-in sets (no network)."""

from __future__ import annotations

import json
import shutil
import socket
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.images.preprocess import get_preprocessing, preprocess_batch
from rsa_toolkit.images.probe import (
    BUILTIN_PROBE_IMAGES,
    PROBE_SETS,
    ProbeSet,
    load_image,
    probe_by_name,
    probe_from_folder,
    resolve_probe,
)

RNG = np.random.default_rng(0)
RGB8 = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
GRAY8 = RNG.integers(0, 256, size=(6, 4), dtype=np.uint8)
GRAY16 = RNG.integers(0, 65536, size=(4, 5), dtype=np.uint16)
RGB16 = RNG.integers(0, 65536, size=(4, 5, 3), dtype=np.uint16)
_Y, _X = np.mgrid[0:16, 0:24]
SMOOTH8 = np.dstack([_X * 10, _Y * 15, 255 - _X * 10]).astype(np.uint8)  # JPEG-friendly (no noise)


def _write_png16(path: Path, values: np.ndarray) -> None:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit colour): IHDR, one IDAT with filter 0, IEND."""
    values = np.asarray(values, dtype=">u2")
    h, w = values.shape[:2]
    colour_type = {2: 0, 3: 2, 4: 6}[values.ndim if values.ndim == 2 else 2 + values.shape[2] // 2]
    raw = b"".join(b"\x00" + values[r].tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "probe"
    d.mkdir()
    Image.fromarray(RGB8, "RGB").save(d / "a_rgb.png")
    Image.fromarray(GRAY8, "L").save(d / "b_gray.png")
    rgba = np.dstack([RGB8, np.full(RGB8.shape[:2], 255, np.uint8)])
    rgba[0, 0, 3] = 0  # a fully transparent pixel keeps its stored colour
    Image.fromarray(rgba, "RGBA").save(d / "c_rgba.png")
    Image.fromarray(RGB8, "RGB").quantize(colors=8).save(d / "d_palette.png")
    Image.fromarray(GRAY16).save(d / "e_gray16.png")
    Image.fromarray(SMOOTH8, "RGB").save(d / "f_photo.JPG", quality=95)
    (d / "notes.txt").write_text("not an image")
    (d / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return d


# --- one image ---------------------------------------------------------------------------------------------------------


def test_load_image_modes_exact(folder):
    def check(name: str, expected: np.ndarray) -> None:
        img = load_image(folder / name)
        assert img.dtype == np.float32 and img.ndim == 3 and img.shape[2] == 3 and img.flags.c_contiguous
        np.testing.assert_array_equal(img, expected.astype(np.float32))

    check("a_rgb.png", RGB8 / np.float32(255))
    check("b_gray.png", np.repeat(GRAY8[:, :, None], 3, axis=2) / np.float32(255))
    check("c_rgba.png", RGB8 / np.float32(255))  # alpha dropped, colour kept (also where alpha = 0)
    palette = np.asarray(Image.open(folder / "d_palette.png").convert("RGB"))
    check("d_palette.png", palette / np.float32(255))
    check("e_gray16.png", np.repeat(GRAY16[:, :, None], 3, axis=2).astype(np.float32) / np.float32(65535))


def test_load_jpeg_is_close_to_the_original(folder):
    img = load_image(folder / "f_photo.JPG")
    assert img.shape == (16, 24, 3)
    assert np.abs(img - SMOOTH8 / 255).max() < 0.05


def test_load_la_one_bit_cmyk_and_palette_transparency(tmp_path):
    la = np.dstack([GRAY8, np.zeros_like(GRAY8)])
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(load_image(tmp_path / "la.png")[..., 1], GRAY8 / np.float32(255))
    Image.fromarray(GRAY8 > 127).save(tmp_path / "bw.png")
    assert set(np.unique(load_image(tmp_path / "bw.png"))) <= {0.0, 1.0}
    cmyk = Image.fromarray(RGB8, "RGB").convert("CMYK")
    cmyk.save(tmp_path / "cmyk.tif")
    np.testing.assert_array_equal(load_image(tmp_path / "cmyk.tif"),
                                  np.asarray(cmyk.convert("RGB")) / np.float32(255))
    pal = Image.fromarray(RGB8, "RGB").quantize(colors=4)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pal_t.png", transparency=0)
    np.testing.assert_array_equal(load_image(tmp_path / "pal_t.png"),
                                  np.asarray(pal.convert("RGB")) / np.float32(255))


def test_16_bit_rgb_png_is_read_at_8_bit_precision(tmp_path):
    # Pillow has no 16-bit colour mode: it keeps the high byte. Pinned here; the docstring tells users.
    _write_png16(tmp_path / "rgb16.png", RGB16)
    img = load_image(tmp_path / "rgb16.png")
    np.testing.assert_array_equal(img, (RGB16 >> 8).astype(np.float32) / np.float32(255))
    assert np.abs(img - RGB16 / 65535).max() <= 1 / 255
    rgba16 = np.dstack([RGB16, np.full(RGB16.shape[:2], 65535, np.uint16)])
    _write_png16(tmp_path / "rgba16.png", rgba16)
    np.testing.assert_array_equal(load_image(tmp_path / "rgba16.png"), img)


def test_16_bit_grayscale_png_written_by_hand_is_full_precision(tmp_path):
    _write_png16(tmp_path / "g16.png", GRAY16)
    np.testing.assert_array_equal(load_image(tmp_path / "g16.png")[..., 2], GRAY16.astype(np.float32) / 65535)


def test_16_bit_rgb_tiff_is_full_precision(tmp_path):
    expected = RGB16.astype(np.float32) / np.float32(65535)
    tifffile.imwrite(tmp_path / "rgb16.tif", RGB16, photometric="rgb")
    np.testing.assert_array_equal(load_image(tmp_path / "rgb16.tif"), expected)
    # planar layout (Pillow mis-decodes it)
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(RGB16, -1, 0), photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(load_image(tmp_path / "planar.tif"), expected)


def test_float_tiff_in_unit_range_accepted_else_error(tmp_path):
    ok = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    tifffile.imwrite(tmp_path / "f.tif", ok)
    np.testing.assert_array_equal(load_image(tmp_path / "f.tif")[..., 0], ok)
    tifffile.imwrite(tmp_path / "big.tif", ok * 300)
    with pytest.raises(UserInputError, match=r"Cannot read image '.*big\.tif': floating-point pixels must lie in"):
        load_image(tmp_path / "big.tif")


def test_exif_orientation_is_applied(tmp_path):
    im = Image.fromarray(RGB8, "RGB")  # 7 wide, 5 high
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    im.save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    assert load_image(tmp_path / "rotated.jpg").shape == (7, 5, 3)


def test_unreadable_images_name_the_file(tmp_path):
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(UserInputError, match=r"Cannot read image '.*text\.png'"):
        load_image(tmp_path / "text.png")
    with pytest.raises(UserInputError, match=r"Image file '.*nope\.png' does not exist"):
        load_image(tmp_path / "nope.png")


# --- folders -----------------------------------------------------------------------------------------------------------


def test_folder_is_sorted_and_non_images_are_skipped_and_reported(folder):
    probe, skipped = probe_from_folder(folder)
    assert probe.ids == ["a_rgb.png", "b_gray.png", "c_rgba.png", "d_palette.png", "e_gray16.png", "f_photo.JPG"]
    assert skipped == [".DS_Store", "notes.txt"] and list(probe.skipped) == skipped
    assert len(probe) == 6 and probe.source == str(folder.resolve())
    assert [p.name for p in probe.paths] == probe.ids
    for i in range(len(probe)):
        img = probe.load(i)
        assert img.dtype == np.float32 and img.shape[2] == 3 and 0 <= img.min() and img.max() <= 1


def test_sort_is_plain_code_point_order(tmp_path):
    for name in ["b.png", "a.png", "C.png", "img10.png", "img2.png"]:
        Image.fromarray(RGB8).save(tmp_path / name)
    probe, skipped = probe_from_folder(tmp_path)
    assert probe.ids == ["C.png", "a.png", "b.png", "img10.png", "img2.png"] and skipped == []


def test_on_non_image_error_raises_listing_them(folder):
    with pytest.raises(UserInputError, match=r"contains 2 non-image file\(s\): \.DS_Store, notes\.txt"):
        probe_from_folder(folder, on_non_image="error")
    with pytest.raises(UserInputError, match="on_non_image must be 'skip' or 'error', got 'warn'"):
        probe_from_folder(folder, on_non_image="warn")


def test_corrupt_image_is_an_error_naming_it_not_skipped(folder):
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(UserInputError, match=r"Cannot read image '.*broken\.png'"):
        probe_from_folder(folder)


def test_truncated_image_fails_at_load_or_with_verify(folder):
    data = (folder / "a_rgb.png").read_bytes()
    (folder / "a_rgb.png").write_bytes(data[: len(data) // 2])
    probe, _ = probe_from_folder(folder)  # the header is fine
    with pytest.raises(UserInputError, match=r"Cannot read image '.*a_rgb\.png'"):
        probe.load(0)
    with pytest.raises(UserInputError, match=r"Cannot read image '.*a_rgb\.png'"):
        probe_from_folder(folder, verify=True)


def test_empty_missing_and_non_folder_inputs(tmp_path):
    with pytest.raises(UserInputError, match=r"No images in '.*': expected files ending in \.bmp, \.jpeg"):
        probe_from_folder(tmp_path)
    (tmp_path / "readme.md").write_text("x")
    with pytest.raises(UserInputError, match=r"No images in '.*' \(1 other file\(s\) skipped\)"):
        probe_from_folder(tmp_path)
    with pytest.raises(UserInputError, match=r"Image folder '.*missing' does not exist\..*skimage, sklearn"):
        probe_from_folder(tmp_path / "missing")
    with pytest.raises(UserInputError, match=r"'.*readme\.md' is not a folder"):
        probe_from_folder(tmp_path / "readme.md")


def test_unreadable_folder(tmp_path, monkeypatch):
    def deny(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "iterdir", deny)
    with pytest.raises(UserInputError, match=r"Cannot read image folder '.*': Permission denied"):
        probe_from_folder(tmp_path)


def test_recursive_and_hidden_folders(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    Image.fromarray(RGB8).save(tmp_path / "sub" / "x.png")
    Image.fromarray(RGB8).save(tmp_path / ".hidden" / "y.png")
    with pytest.raises(UserInputError, match=r"sub-folder\(s\); use recursive=True"):
        probe_from_folder(tmp_path)
    probe, skipped = probe_from_folder(tmp_path, recursive=True)
    assert probe.ids == ["sub/x.png"] and skipped == []


# --- content hash ------------------------------------------------------------------------------------------------------


def _hash(folder: Path) -> str:
    return probe_from_folder(folder)[0].content_hash


def test_content_hash_is_stable_and_independent_of_location(folder, tmp_path):
    first = _hash(folder)
    assert first == _hash(folder) and len(first) == 64
    copy = tmp_path / "elsewhere"
    shutil.copytree(folder, copy)
    assert _hash(copy) == first
    (copy / "more_notes.txt").write_text("skipped files do not count")
    assert _hash(copy) == first
    assert probe_from_folder(copy)[0] == probe_from_folder(folder)[0]


def test_content_hash_changes_with_one_byte_a_name_or_the_order(folder):
    base = _hash(folder)
    path = folder / "b_gray.png"
    original = path.read_bytes()
    path.write_bytes(original + b"\x00")  # one trailing byte: same pixels, different file
    assert _hash(folder) != base
    edited = GRAY8.copy()
    edited[0, 0] ^= 1
    Image.fromarray(edited, "L").save(path)  # one pixel value differs by 1
    assert _hash(folder) != base
    path.write_bytes(original)
    assert _hash(folder) == base
    path.rename(folder / "b_grey.png")  # renamed, same position in the order
    assert _hash(folder) != base
    (folder / "b_grey.png").rename(path)
    assert _hash(folder) == base
    a, b = folder / "a_rgb.png", folder / "b_gray.png"  # swap two files' contents: same ids, other order of bytes
    a_bytes, b_bytes = a.read_bytes(), b.read_bytes()
    a.write_bytes(b_bytes)
    b.write_bytes(a_bytes)
    assert _hash(folder) != base


# --- the ProbeSet object -----------------------------------------------------------------------------------------------


def test_batches_shapes_and_content(folder):
    probe, _ = probe_from_folder(folder)
    prep = get_preprocessing("taskonomy")
    batches = list(probe.batches(4, prep))
    assert [idx for idx, _ in batches] == [[0, 1, 2, 3], [4, 5]]
    assert [tuple(t.shape) for _, t in batches] == [(4, 3, 256, 256), (2, 3, 256, 256)]
    assert all(t.dtype == torch.float32 for _, t in batches)
    whole = preprocess_batch([probe.load(i) for i in range(len(probe))], prep)
    assert torch.equal(torch.cat([t for _, t in batches]), whole)
    assert [tuple(t.shape) for _, t in probe.batches(10, "plain")] == [(6, 3, 224, 224)]
    with pytest.raises(UserInputError, match="batch_size must be an integer >= 1, got 0"):
        next(probe.batches(0, prep))


def test_load_index_checks_and_describe(folder):
    probe, _ = probe_from_folder(folder)
    np.testing.assert_array_equal(probe.load(-1), probe.load(len(probe) - 1))
    with pytest.raises(IndexError, match="out of range for a probe set of 6 images"):
        probe.load(6)
    d = probe.describe()
    assert json.loads(json.dumps(d)) == d == {"source": str(folder.resolve()), "n_images": 6,
                                              "content_hash": probe.content_hash}
    assert hash(probe) == hash(probe_from_folder(folder)[0])


# --- built-in sets -----------------------------------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("network access attempted during a test that must run offline")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.parametrize("name", ["skimage", "sklearn"])
def test_builtin_sets_load_offline(name, no_network):
    probe = probe_by_name(name)
    assert len(probe) >= 2 and probe.ids == [img.file for img in BUILTIN_PROBE_IMAGES[name]]
    assert probe.source.startswith(f"builtin:{name}")
    for i in range(len(probe)):
        img = probe.load(i)
        assert img.ndim == 3 and img.shape[2] == 3 and img.shape[0] >= 256 and img.shape[1] >= 256
        assert img.dtype == np.float32 and img.min() >= 0.0 and img.max() <= 1.0 and img.std() > 0.01
    assert probe_by_name(name) == probe  # stable hash


def test_builtin_images_match_the_packages_own_readers():
    import skimage.io
    from sklearn.datasets import load_sample_images

    sk = probe_by_name("sklearn")
    for i, ref in enumerate(load_sample_images().images):
        np.testing.assert_array_equal(sk.load(i), ref / np.float32(255))
    ski = probe_by_name("skimage")
    i = ski.ids.index("astronaut.png")
    np.testing.assert_array_equal(ski.load(i), skimage.io.imread(ski.paths[i]) / np.float32(255))
    i = ski.ids.index("camera.png")  # grayscale replicated
    np.testing.assert_array_equal(ski.load(i)[..., 1], skimage.io.imread(ski.paths[i]) / np.float32(255))


def test_resolve_probe_folder_name_and_errors(folder, tmp_path, monkeypatch):
    assert resolve_probe(folder) == probe_from_folder(folder)[0]
    assert resolve_probe(str(folder)).skipped == (".DS_Store", "notes.txt")
    assert resolve_probe("sklearn") == probe_by_name("sklearn")
    with pytest.raises(UserInputError, match=r"Probe set 'skimag' is neither an existing folder nor a built-in "
                                             r"probe set\. Did you mean 'skimage'\? Built-in probe sets: skimage"):
        resolve_probe("skimag")
    with pytest.raises(UserInputError, match=r"Unknown probe set 'imagenet'\..*Available: skimage, sklearn, mini\."):
        probe_by_name("imagenet")
    # an existing folder wins over a built-in name
    monkeypatch.chdir(tmp_path)
    shutil.copytree(folder, tmp_path / "sklearn")
    assert resolve_probe("sklearn") == probe_from_folder(folder)[0]
    assert set(PROBE_SETS.names()) == {"mini", "skimage", "sklearn"}


def test_probe_set_is_frozen(folder):
    probe, _ = probe_from_folder(folder)
    with pytest.raises(AttributeError):
        probe.content_hash = "x"  # type: ignore[misc]
    assert isinstance(probe, ProbeSet)
