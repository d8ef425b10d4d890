"""The task registry: the 20 Taskonomy tasks, their types, every alias of DESIGN.md §3 and Taskonomy's own names
(checked against the reference name-mapping table), and the "did you mean" error for unknown names."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.tasks import TASK_TYPES, get_task, list_tasks, resolve_task, resolve_tasks, try_resolve_task

# Taskonomy's name table (SOURCES.md beside it says where it comes from): shipped copy first, then the reference tree.
_MAPPING_CANDIDATES = [
    Path(__file__).resolve().parents[1] / "data" / "taskonomy" / "taskonomy_task_name_mapping.csv",
    Path("/work/shared/reference/taskonomy/taskonomy_task_name_mapping.csv"),
]
MAPPING_CSV = next((p for p in _MAPPING_CANDIDATES if p.exists()), _MAPPING_CANDIDATES[-1])

EXPECTED_BY_TYPE = {
    "2D": {"autoencoding", "colorization", "denoising", "edge_texture", "inpainting", "keypoints2d",
           "segment_unsup2d"},
    "3D": {"curvature", "depth_euclidean", "depth_zbuffer", "edge_occlusion", "keypoints3d", "normal", "reshading",
           "segment_unsup25d"},
    "semantic": {"class_object", "class_scene", "segment_semantic"},
    "low-dim geometric": {"room_layout", "vanishing_point"},
}

# DESIGN.md §3: short aliases researchers type -> canonical (visualpriors) name.
DESIGN_ALIASES = {
    "depth": "depth_zbuffer",
    "distance": "depth_euclidean",
    "mist": "depth_euclidean",
    "normal": "normal",
    "normals": "normal",
    "sfnorm": "normal",
    "edge2d": "edge_texture",
    "edge3d": "edge_occlusion",
    "keypoint2d": "keypoints2d",
    "keypoint3d": "keypoints3d",
    "reshade": "reshading",
    "segment2d": "segment_unsup2d",
    "segment25d": "segment_unsup25d",
    "segmentsemantic": "segment_semantic",
    "class_1000": "class_object",
    "class_places": "class_scene",
    "autoencoder": "autoencoding",
    "denoise": "denoising",
    "inpainting_whole": "inpainting",
}

MULTI_IMAGE = ["egomotion", "fixated_pose", "nonfixated_pose", "point_matching", "jigsaw", "ego_motion", "fix_pose",
               "non_fixated_pose", "point_match"]


def _mapping_rows() -> list[dict[str, str]]:
    if not MAPPING_CSV.exists():
        pytest.skip(f"reference table {MAPPING_CSV} not available")
    with MAPPING_CSV.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_twenty_tasks_four_types_unique_names() -> None:
    tasks = list_tasks()
    assert len(tasks) == 20
    names = [t.name for t in tasks]
    assert len(set(names)) == 20
    assert TASK_TYPES == ("2D", "3D", "semantic", "low-dim geometric")
    assert {t.type for t in tasks} == set(TASK_TYPES)
    for task_type, expected in EXPECTED_BY_TYPE.items():
        assert {t.name for t in list_tasks(type=task_type)} == expected
    # No alias of one task is another task's canonical name or alias.
    all_keys = [k.lower() for t in tasks for k in (t.name, *t.aliases)]
    assert len(all_keys) == len(set(all_keys))


def test_list_tasks_order_is_stable_and_grouped_by_type() -> None:
    names = [t.name for t in list_tasks()]
    assert names == [t.name for t in list_tasks()]
    types = [t.type for t in list_tasks()]
    # grouped: each type appears in one contiguous run, in TASK_TYPES order
    runs = [ty for i, ty in enumerate(types) if i == 0 or types[i - 1] != ty]
    assert runs == list(TASK_TYPES)


def test_unknown_task_type() -> None:
    with pytest.raises(UserInputError, match=r"Unknown task type '4D'\. Available: 2D, 3D, semantic"):
        list_tasks(type="4D")


@pytest.mark.parametrize("name", [t.name for t in list_tasks()])
def test_canonical_names_resolve_to_themselves(name: str) -> None:
    assert resolve_task(name) == name
    assert get_task(name).name == name


@pytest.mark.parametrize(("alias", "canonical"), sorted(DESIGN_ALIASES.items()))
def test_design_aliases(alias: str, canonical: str) -> None:
    assert resolve_task(alias) == canonical


def test_taskonomy_names_from_reference_table() -> None:
    rows = _mapping_rows()
    in_rsa20 = [r for r in rows if r["in_rsa20"] == "1"]
    assert len(in_rsa20) == 20
    assert {r["visualpriors_name"] for r in in_rsa20} == {t.name for t in list_tasks()}
    for row in in_rsa20:
        canonical = row["visualpriors_name"]
        for column in ("taskonomy_tf_name", "affinity_pickle_name", "visualpriors_name"):
            task = get_task(row[column])
            assert task.name == canonical, (column, row[column])
            assert task.type == row["task_type_rsa"], (column, row[column])


def test_multi_image_tasks_are_not_in_the_registry() -> None:
    rows = _mapping_rows()
    excluded = [r for r in rows if r["in_rsa20"] == "0"]
    for row in excluded:
        for column in ("taskonomy_tf_name", "affinity_pickle_name", "visualpriors_name"):
            assert try_resolve_task(row[column]) is None, row[column]
    for name in MULTI_IMAGE:
        assert try_resolve_task(name) is None


@pytest.mark.parametrize(("spelling", "canonical"), [
    ("DEPTH", "depth_zbuffer"),
    ("Depth_ZBuffer", "depth_zbuffer"),
    ("depth-zbuffer", "depth_zbuffer"),
    ("depth zbuffer", "depth_zbuffer"),
    ("  normal  ", "normal"),
    ("Segment-Unsup2D", "segment_unsup2d"),
    ("RGB2Depth", "depth_zbuffer"),
    ("class-1000", "class_object"),
    ("Vanishing Point", "vanishing_point"),
    ("segment-semantic-rb", "segment_semantic"),
])
def test_case_dash_and_space_insensitive(spelling: str, canonical: str) -> None:
    assert resolve_task(spelling) == canonical


def test_resolve_tasks_keeps_order() -> None:
    assert resolve_tasks(["normal", "depth", "edge2d"]) == ["normal", "depth_zbuffer", "edge_texture"]
    assert resolve_tasks([]) == []


def test_try_resolve_task_unknown_is_none() -> None:
    assert try_resolve_task("not_a_task") is None


@pytest.mark.parametrize(("typo", "suggestion"), [
    ("nromal", "normal"),
    ("depth_zbufer", "depth_zbuffer"),
    ("curvture", "curvature"),
    ("colourisation", "colorization"),
])
def test_unknown_task_suggests_closest(typo: str, suggestion: str) -> None:
    with pytest.raises(UserInputError, match=rf"Unknown task '{typo}'\. Did you mean [^?]*'{suggestion}'") as info:
        get_task(typo)
    message = str(info.value)
    assert "\n" not in message
    assert "Valid tasks: autoencoding" in message
    # suggestions are canonical names, not aliases
    hints = message.split("Did you mean ")[1].split("?")[0]
    for hint in hints.split(", "):
        assert hint.strip("'") in {t.name for t in list_tasks()}


def test_unknown_task_without_close_match_lists_valid_tasks() -> None:
    with pytest.raises(UserInputError, match=r"Unknown task 'xyzzy'\. Valid tasks: autoencoding, colorization"):
        get_task("xyzzy")


def test_resolve_task_unknown_raises_value_error_too() -> None:
    # UserInputError subclasses ValueError so notebook users can catch it the usual way.
    with pytest.raises(ValueError, match="Unknown task"):
        resolve_task("egomotion")
