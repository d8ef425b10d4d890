"""The 20 single-image Taskonomy tasks: canonical names, aliases, task type and output kind.

Canonical names are the visualpriors names. Aliases cover the Taskonomy TF names (``rgb2depth``), the names used as
keys in Taskonomy's result pickles (``segmentsemantic_rb``) and the short names researchers type (``depth``,
``normals``, ``edge2d``). Matching ignores case, and treats ``-`` and spaces like ``_``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rsa_toolkit.errors import UserInputError, closest_names, unknown_name

__all__ = ["Task", "TASK_TYPES", "list_tasks", "get_task", "resolve_task", "resolve_tasks", "try_resolve_task"]

TASK_TYPES = ("2D", "3D", "semantic", "low-dim geometric")


@dataclass(frozen=True)
class Task:
    name: str
    type: str  # one of TASK_TYPES, as in the RSA paper's taxonomy figure
    output: str  # what the teacher predicts, e.g. "depth map", "class distribution"
    aliases: tuple[str, ...] = ()


_TASKS: tuple[Task, ...] = (
    Task("autoencoding", "2D", "RGB image", ("autoencoder", "autoencode")),
    Task("colorization", "2D", "colour channels", ("colorize", "colourization")),
    Task("denoising", "2D", "RGB image", ("denoise",)),
    Task("edge_texture", "2D", "edge map", ("edge2d", "edges2d", "2d_edges", "texture_edges")),
    Task("inpainting", "2D", "RGB image", ("inpainting_whole", "impainting_whole", "inpaint")),
    Task("keypoints2d", "2D", "keypoint heat map", ("keypoint2d", "2d_keypoints")),
    Task("segment_unsup2d", "2D", "segment embedding", ("segment2d", "2d_segment", "segmentation2d")),
    Task("curvature", "3D", "principal curvatures", ("curvatures",)),
    Task("depth_euclidean", "3D", "distance map", ("distance", "mist", "rgb2mist", "euclidean_depth")),
    Task("depth_zbuffer", "3D", "depth map", ("depth", "rgb2depth", "z_depth", "zbuffer")),
    Task("edge_occlusion", "3D", "edge map", ("edge3d", "edges3d", "occlusion_edges")),
    Task("keypoints3d", "3D", "keypoint heat map", ("keypoint3d", "3d_keypoints")),
    Task("normal", "3D", "surface normals", ("normals", "sfnorm", "rgb2sfnorm", "surface_normals", "surface_normal")),
    Task("reshading", "3D", "shading image", ("reshade", "shading")),
    Task("segment_unsup25d", "3D", "segment embedding", ("segment25d", "2.5d_segment", "segmentation25d")),
    Task("class_object", "semantic", "class distribution", ("class_1000", "object_class", "imagenet")),
    Task("class_scene", "semantic", "class distribution", ("class_places", "scene_class", "places")),
    Task("segment_semantic", "semantic", "semantic label map",
         ("segmentsemantic", "segmentsemantic_rb", "segment_semantic_rb", "semantic", "semantic_segmentation")),
    Task("room_layout", "low-dim geometric", "layout vector", ("layout",)),
    Task("vanishing_point", "low-dim geometric", "vanishing point vector",
         ("vanishing_point_well_defined", "vanishing_points", "vp")),
)


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


_BY_KEY: dict[str, Task] = {}
for _task in _TASKS:
    for _name in (_task.name, *_task.aliases):
        if _key(_name) in _BY_KEY:
            raise RuntimeError(f"task name '{_name}' is used twice")
        _BY_KEY[_key(_name)] = _task


def list_tasks(*, type: str | None = None) -> list[Task]:
    """All 20 tasks in a stable order (grouped by type), optionally only those of one type."""
    if type is not None and type not in TASK_TYPES:
        raise UserInputError(f"Unknown task type '{type}'. Available: {', '.join(TASK_TYPES)}.")
    return [t for t in _TASKS if type is None or t.type == type]


def try_resolve_task(name: str) -> Task | None:
    """The task that ``name`` (canonical name or alias) denotes, or None."""
    return _BY_KEY.get(_key(name))


def get_task(name: str) -> Task:
    """The task that ``name`` denotes; unknown names raise with the closest valid names."""
    task = try_resolve_task(name)
    if task is None:
        hints = dict.fromkeys(_BY_KEY[h].name for h in closest_names(_key(name), _BY_KEY))
        raise UserInputError(unknown_name(
            f"Unknown task '{name}'", name, [t.name for t in _TASKS], hints=hints, listing="Valid tasks",
            shown=f"{', '.join(t.name for t in _TASKS)} (aliases such as depth, normal, edge2d work too)"))
    return task


def resolve_task(name: str) -> str:
    """The canonical name for ``name``: ``resolve_task("rgb2depth") == "depth_zbuffer"``."""
    return get_task(name).name


def resolve_tasks(names: list[str]) -> list[str]:
    return [resolve_task(n) for n in names]
