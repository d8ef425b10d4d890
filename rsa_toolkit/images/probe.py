"""Probe image sets: the N images every teacher sees, in a fixed order, with a content hash for caches and provenance.

A :class:`ProbeSet` is a sorted list of image files plus a SHA-256 over their ids and bytes. It comes from a folder
(:func:`probe_from_folder`) or from a built-in set of photos shipped inside an installed package
(:func:`probe_by_name`: ``skimage``, 13 photos; ``sklearn``, 2); :func:`resolve_probe` takes either, and warns
(:class:`SmallProbeSetWarning`) when a set has fewer than 50 images. Images load lazily, one at a
time, as float32 (H, W, 3) RGB in [0, 1] (:func:`load_image`); :meth:`ProbeSet.batches` preprocesses them in batches.

Folder policy (documented for the CLI):

- image files are recognised by extension, case-insensitive: .png .jpg .jpeg .bmp .tif .tiff .webp;
- ids are paths relative to the folder (POSIX separators), sorted by plain code-point order, as the RSA release's
  ``glob(...); image_list.sort()`` (so ``B.png`` < ``a.png`` and ``img10`` < ``img2``);
- other files, and hidden entries (names starting with ``.``, e.g. ``.DS_Store`` or macOS ``._x.png`` forks), are
  skipped and listed in ``ProbeSet.skipped`` (``on_non_image="skip"``, the default: the CLI warns with the list) or
  make it an error (``on_non_image="error"``); sub-folders are only entered with ``recursive=True``, and never
  hidden ones (``.git``, ``.ipynb_checkpoints``), whose files are neither used nor listed;
- a file with an image extension that is not a readable image is always an error naming it, never skipped: its
  header is checked when the set is made, its pixels when it is loaded (``verify=True`` decodes everything up front);
- an empty, missing or unreadable folder is an error.

The content hash depends on the ids, their order and every file's bytes, not on where the folder lives: renaming,
reordering or editing any image changes it; moving or copying the folder does not.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from rsa_toolkit.errors import SmallProbeSetWarning, UserInputError, unknown_name
from rsa_toolkit.images.image_file import _open_error, load_image
from rsa_toolkit.images.preprocess import Preprocessing, get_preprocessing
from rsa_toolkit.images.teacher_inputs import INPUT_KINDS, prepare_image
from rsa_toolkit.registry import Registry
from rsa_toolkit.validation import check_int

__all__ = [
    "BUILTIN_PROBE_IMAGES", "BuiltinImage", "IMAGE_EXTENSIONS", "PROBE_SETS", "ProbeSet", "SMALL_PROBE_SET",
    "SmallProbeSetWarning", "load_image", "probe_by_name", "probe_from_folder", "resolve_probe", "warn_if_small",
]

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
_HASH_TAG = b"rsa-toolkit probe set v1\n"


# ---------------------------------------------------------------------------------------------------------------------
# a set of images


@dataclass(frozen=True, eq=False)
class ProbeSet:
    """N probe images in a fixed order.

    ``ids`` (list of str, do not mutate): file names relative to the folder (sorted), or the file names of a
    built-in set. ``source``: the folder's absolute path or ``builtin:<name>``. ``content_hash``: SHA-256 (hex) over
    the ids and every file's bytes, in order. ``paths``: the files, aligned with ``ids``. ``skipped``: entries of
    the folder that were not used (non-images, hidden files), for the CLI's warning.

    Two probe sets are equal when their content hashes are.
    """

    ids: list[str]
    source: str
    content_hash: str
    paths: tuple[Path, ...] = field(repr=False)
    skipped: tuple[str, ...] = field(default=(), repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProbeSet):
            return NotImplemented
        return self.content_hash == other.content_hash

    def __hash__(self) -> int:
        return hash(self.content_hash)

    def load(self, i: int) -> np.ndarray:
        """Image ``i`` as float32 (H, W, 3) RGB in [0, 1] (see :func:`load_image`)."""
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"image index must be an integer, got {type(i).__name__}")
        if not -len(self) <= i < len(self):
            raise IndexError(f"image index {i} out of range for a probe set of {len(self)} images")
        return load_image(self.paths[i])

    def batches(self, batch_size: int, prep: Preprocessing | str, *, start: int = 0, stop: int | None = None,
                input_kind: str = "clean") -> Iterator[tuple[list[int], torch.Tensor]]:
        """Yield ``(indices, tensor)`` with tensor (B, 3, S, S) float32, B <= batch_size, in order, for the images
        ``start:stop`` (default all: one rank's shard is a slice); images are loaded only when their batch is
        reached. ``input_kind`` (:data:`rsa_toolkit.images.teacher_inputs.INPUT_KINDS`) is what the teacher sees of
        each image (grey, noisy, masked), seeded by the image's id; the default is the clean image."""
        batch_size = check_int(batch_size, name="batch_size", minimum=1)
        prep = get_preprocessing(prep)
        INPUT_KINDS.get(input_kind)
        stop = len(self) if stop is None else min(stop, len(self))
        for first in range(start, stop, batch_size):
            indices = list(range(first, min(first + batch_size, stop)))
            yield indices, torch.stack([prepare_image(prep, self.load(i), input_kind, image_id=self.ids[i])
                                        for i in indices])

    def describe(self) -> dict[str, Any]:
        """JSON-ready provenance record: source, number of images and content hash."""
        return {"source": self.source, "n_images": len(self), "content_hash": self.content_hash}


def _content_hash(ids: list[str], paths: list[Path], *, check: Callable[[Path, bytes], None]) -> str:
    """SHA-256 over, per image in order: the id (length-prefixed UTF-8) and the SHA-256 of the file's bytes.
    ``check`` sees every file's bytes once (header or full decode check)."""
    outer = hashlib.sha256(_HASH_TAG)
    for image_id, path in zip(ids, paths):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UserInputError(f"Cannot read image '{path}': {exc.strerror or exc}.") from None
        check(path, data)
        encoded = image_id.encode("utf-8", "surrogateescape")
        outer.update(f"{len(encoded)}:".encode())
        outer.update(encoded)
        outer.update(hashlib.sha256(data).digest())
    return outer.hexdigest()


def _check_header(path: Path, data: bytes) -> None:
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width < 1 or im.height < 1:
                raise ValueError("image has zero width or height")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise _open_error(path, exc) from None


def _check_decode(path: Path, data: bytes) -> None:
    _check_header(path, data)
    load_image(path)


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _probe_from_files(ids: list[str], paths: list[Path], *, source: str, skipped: tuple[str, ...] = (),
                      verify: bool = False) -> ProbeSet:
    digest = _content_hash(ids, paths, check=_check_decode if verify else _check_header)
    return ProbeSet(ids=ids, source=source, content_hash=digest, paths=tuple(paths), skipped=skipped)


def probe_from_folder(folder: str | os.PathLike[str], *, recursive: bool = False, on_non_image: str = "skip",
                      verify: bool = False) -> tuple[ProbeSet, list[str]]:
    """The images in ``folder`` as a :class:`ProbeSet`, and the skipped entries (relative paths, sorted).

    See the module docstring for the policy. ``verify=True`` decodes every image now, so a corrupt file fails here
    rather than in the middle of a feature extraction.
    """
    if on_non_image not in ("skip", "error"):
        raise UserInputError(f"on_non_image must be 'skip' or 'error', got {on_non_image!r}.")
    root = Path(folder).expanduser()
    if not root.exists():
        raise UserInputError(
            f"Image folder '{folder}' does not exist. Pass a folder of images, or a built-in probe set: "
            f"{', '.join(PROBE_SETS.names())}."
        )
    if not root.is_dir():
        raise UserInputError(f"'{folder}' is not a folder. Pass the folder that contains the probe images.")
    root = root.resolve()
    try:
        entries = sorted(root.rglob("*") if recursive else root.iterdir())
    except OSError as exc:
        raise UserInputError(f"Cannot read image folder '{folder}': {exc.strerror or exc}.") from None

    images: dict[str, Path] = {}
    skipped: list[str] = []
    subfolders = 0
    for entry in entries:
        relative = entry.relative_to(root)
        if entry.is_dir():
            subfolders += 1
            continue
        rel = relative.as_posix()
        if _is_hidden(relative):
            if recursive and any(p.startswith(".") for p in relative.parts[:-1]):
                continue  # inside a hidden folder (.git, .ipynb_checkpoints): not part of the set, not reported
            skipped.append(rel)
        elif entry.suffix.lower() in IMAGE_EXTENSIONS:  # a broken link fails below, by name
            images[rel] = entry
        else:
            skipped.append(rel)
    skipped.sort()

    if skipped and on_non_image == "error":
        shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        raise UserInputError(
            f"Image folder '{folder}' contains {len(skipped)} non-image file(s): {shown}. Remove them, or allow "
            "skipping them (on_non_image='skip')."
        )
    if not images:
        hint = f" It has {subfolders} sub-folder(s); use recursive=True to include them." if (
            subfolders and not recursive) else ""
        other = f" ({len(skipped)} other file(s) skipped)" if skipped else ""
        raise UserInputError(
            f"No images in '{folder}'{other}: expected files ending in "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))}.{hint}"
        )
    ids = sorted(images)
    probe = _probe_from_files(ids, [images[i] for i in ids], source=str(root), skipped=tuple(skipped),
                              verify=verify)
    return probe, list(skipped)


# ---------------------------------------------------------------------------------------------------------------------
# built-in sets: photos shipped inside installed packages, read straight from the package directory


@dataclass(frozen=True)
class BuiltinImage:
    file: str
    description: str
    licence: str


# Every natural photo that ships as a file inside the scikit-image wheel (skimage/data/; scikit-image 0.26.0), read
# directly: skimage.data's functions are never called (most datasets in its _registry.py are downloaded through
# pooch; only the files listed here are in the wheel). The installed data/README.txt says nothing about licences;
# each licence below is quoted from the image's loader docstring in skimage/data/_fetchers.py. Chosen: colour or grey
# photographs of real scenes and objects, at least 256 pixels on each side (the teachers' inputs are 224-256 pixels
# square: a smaller photo would be upscaled). 13 images.
#
# Left out, each for a reason:
#   cell.png                  a quantitative phase image computed from a hologram (microscopy), not a photograph
#   ihc.png                   a microscope image of stained tissue (immunohistochemistry), not a scene photograph
#   retina.jpg                a medical fundus photograph: a disc on black, outside the natural-image domain
#   microaneurysms.png        a 102 x 102 green-channel crop of a retina: tiny, medical
#   clock_motion.png          a deliberately motion-blurred test image for deconvolution: a featureless smear
#   text.png                  a photo of handwriting, but 448 x 172: below 256 pixels on the short side
#   page.png                  a scanned printed page (document scan for thresholding demos), not a photograph
#   chessboard_GRAY.png, chessboard_RGB.png   synthetic test patterns (200 x 200)
#   color.png                 a synthetic colour wheel
#   phantom.png               the synthetic Shepp-Logan phantom
#   logo.png                  the scikit-image logo: an RGBA graphic
#   horse.png                 a binary (black and white) clip-art silhouette, a mask
#   multipage.tif, multipage_rgb.tif   tiny multi-page TIFF test files (10 x 15)
#   no_time_for_that_tiny.gif a tiny (14 x 25) animated GIF test file
#   lfw_subset.npy            25 x 25 face crops in a NumPy array: tiny, and not image files
#   motorcycle_disp.npz       the stereo pair's disparity map, not an image
#   lbpcascade_frontalface_opencv.xml   a detector's parameters
# moon.png (a grayscale photograph of the lunar surface) and the Middlebury 2014 motorcycle pair state no licence in
# their loader docstrings; they are read from the installed package, never redistributed by this project.
SKIMAGE_IMAGES: tuple[BuiltinImage, ...] = (
    BuiltinImage("astronaut.png", "astronaut Eileen Collins, colour portrait",
                 "public domain (NASA Great Images; 'No known copyright restrictions')"),
    BuiltinImage("brick.png", "brick wall, grayscale texture photo", "CC0 (CC0Textures)"),
    BuiltinImage("camera.png", "man with a camera, grayscale", "CC0 (photographer Lav Varshney)"),
    BuiltinImage("chelsea.png", "Chelsea the cat", "CC0 (photographer Stefan van der Walt)"),
    BuiltinImage("coffee.png", "coffee cup on a wooden table", "CC0 (photographer Rachel Michetti)"),
    BuiltinImage("coins.png", "Greek coins, grayscale", "no known copyright restrictions (Brooklyn Museum)"),
    BuiltinImage("grass.png", "grass, grayscale texture photo", "CC0 (DeviantArt, linolafett)"),
    BuiltinImage("gravel.png", "gravel, grayscale texture photo", "CC0 (CC0Textures)"),
    BuiltinImage("hubble_deep_field.jpg", "Hubble eXtreme Deep Field", "public domain (NASA / HubbleSite)"),
    BuiltinImage("moon.png", "surface of the moon, grayscale, low contrast", "not stated by scikit-image"),
    BuiltinImage("motorcycle_left.png", "motorcycle in a studio, left view of the Middlebury 2014 stereo pair",
                 "not stated by scikit-image (Middlebury stereo benchmark, Scharstein et al. 2014)"),
    BuiltinImage("motorcycle_right.png", "motorcycle in a studio, right view of the Middlebury 2014 stereo pair",
                 "not stated by scikit-image (Middlebury stereo benchmark, Scharstein et al. 2014)"),
    BuiltinImage("rocket.jpg", "Falcon 9 launch carrying DSCOVR", "public domain (SpaceX)"),
)

# scikit-learn's bundled sample images (what sklearn.datasets.load_sample_images reads), licences from
# sklearn/datasets/images/README.txt.
SKLEARN_IMAGES: tuple[BuiltinImage, ...] = (
    BuiltinImage("china.jpg", "Summer Palace, Beijing", "CC BY 2.0, danielbuechele on Flickr"),
    BuiltinImage("flower.jpg", "flower close-up", "CC BY 2.0, vultilion on Flickr"),
)

BUILTIN_PROBE_IMAGES: dict[str, tuple[BuiltinImage, ...]] = {"skimage": SKIMAGE_IMAGES, "sklearn": SKLEARN_IMAGES}

#: Probe sets by name. Built-in photos register here; other packages register theirs in a provider module listed
#: here (by name: images imports no zoo), which the registry imports the first time a name is looked up or listed.
PROBE_SETS: Registry[Callable[[], ProbeSet]] = Registry("probe set", providers=("rsa_toolkit.zoo.mini.probe_set",))


def _package_dir(package: str, distribution: str) -> tuple[Path, str]:
    """The installed package's directory (found without importing it) and its version."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        raise UserInputError(
            f"The built-in probe set needs the '{distribution}' package, which is not installed: "
            f"pip install {distribution}."
        )
    try:
        version = metadata.version(distribution)
    except metadata.PackageNotFoundError:
        version = "unknown"
    return Path(spec.origin).parent, version


def _builtin(name: str, package: str, distribution: str, subdir: str) -> ProbeSet:
    base, version = _package_dir(package, distribution)
    folder = base / subdir
    images = BUILTIN_PROBE_IMAGES[name]
    missing = [img.file for img in images if not (folder / img.file).is_file()]
    if missing:
        raise UserInputError(
            f"Built-in probe set '{name}': {distribution} {version} at '{folder}' lacks {', '.join(missing)}; "
            f"install a complete {distribution} (scikit-image >= 0.19, any recent scikit-learn) or use a folder."
        )
    ids = [img.file for img in images]
    return _probe_from_files(ids, [folder / f for f in ids], source=f"builtin:{name} ({distribution} {version})")


@PROBE_SETS.register("skimage")
def _skimage_probe() -> ProbeSet:
    return _builtin("skimage", "skimage", "scikit-image", "data")


@PROBE_SETS.register("sklearn")
def _sklearn_probe() -> ProbeSet:
    return _builtin("sklearn", "sklearn", "scikit-learn", "datasets/images")


def probe_by_name(name: str) -> ProbeSet:
    """A built-in probe set: ``mini`` (500 rendered mini-Taskonomy frames, the default), ``skimage`` (13 photos from
    scikit-image: every natural photo its wheel ships, the Middlebury motorcycle stereo pair's two views included) or
    ``sklearn`` (2 photos from scikit-learn). Nothing is downloaded: the photos are read from the installed package,
    the frames rendered. A set of fewer than :data:`SMALL_PROBE_SET` images warns (:func:`warn_if_small`)."""
    return warn_if_small(PROBE_SETS.get(name)())


#: Below this many images a probe set warns: RSA estimates from so few images vary a lot between image sets.
SMALL_PROBE_SET = 50


def warn_if_small(probe: ProbeSet) -> ProbeSet:
    """``probe``, after a :class:`SmallProbeSetWarning` when it has fewer than :data:`SMALL_PROBE_SET` images."""
    if len(probe) < SMALL_PROBE_SET:
        import warnings

        warnings.warn(f"probe set {probe.source} has {len(probe)} images (fewer than {SMALL_PROBE_SET}): similarities "
                      "from so few images are noisy; run with --bootstrap B (e.g. 100) to see their confidence "
                      "intervals, or use a larger set", SmallProbeSetWarning, stacklevel=3)
    return probe


def resolve_probe(spec: str | os.PathLike[str], *, recursive: bool = False, on_non_image: str = "skip",
                  verify: bool = False) -> ProbeSet:
    """A probe set from an existing folder path, else a built-in name. An existing path wins over a name; the
    skipped entries of a folder are in ``ProbeSet.skipped``. A set of fewer than :data:`SMALL_PROBE_SET` images
    warns (:class:`SmallProbeSetWarning`)."""
    path = Path(spec).expanduser()
    if path.exists():
        return warn_if_small(probe_from_folder(path, recursive=recursive, on_non_image=on_non_image,
                                               verify=verify)[0])
    name = str(spec)
    if name in PROBE_SETS:
        return warn_if_small(PROBE_SETS.get(name)())
    raise UserInputError(unknown_name(f"Probe set '{spec}' is neither an existing folder nor a built-in probe set",
                                      name, PROBE_SETS.names(), listing="Built-in probe sets"))
