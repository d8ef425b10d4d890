"""The Mini-Taskonomy renderer: determinism, every label's shape/dtype/range, and the geometry against independent
references (hand-computed hits, brute-force ray marching, projective geometry of vanishing points)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.scenes import (ALL_TASKS, CLASSES, LABEL_SPECS, OBJECT_CLASSES, SCENE_TYPES, Camera, Light, Room,
                                Scene, Shape, Texture, add_noise, inpainting_mask, render,
                                room_layout, sample_scene, to_gray, vanishing_point_pixels, vanishing_points)
from rsa_toolkit.scenes.raycast import camera_rays
from rsa_toolkit.tasks import list_tasks

SIZE = 64
SEEDS = (0, 1, 2, 3, 4, 5)


@pytest.fixture(scope="module")
def frames() -> dict[int, dict[str, np.ndarray]]:
    return {seed: render(sample_scene(seed), SIZE) for seed in SEEDS}


def _solid(rgb=(0.8, 0.8, 0.8)) -> Texture:
    return Texture(kind="solid", color_a=np.array(rgb), color_b=np.array(rgb))


def _scene(shapes=(), *, room=(100.0, 100.0, 100.0), cam=(50.0, 50.0, 50.0), yaw=0.0, pitch=0.0, roll=0.0,
           light=(50.0, 50.0, 90.0), ambient=0.2) -> Scene:
    return Scene(room=Room(size=np.array(room), wall=_solid(), floor=_solid(), ceiling=_solid()),
                 camera=Camera(position=np.array(cam), yaw=yaw, pitch=pitch, roll=roll),
                 shapes=tuple(shapes), light=Light(position=np.array(light), ambient=ambient))


def _sphere(center, r, semantic=5) -> Shape:
    return Shape(kind="sphere", center=np.array(center, dtype=float), half_size=np.array([r, r, r], dtype=float),
                 yaw=0.0, semantic=semantic, texture=_solid((0.2, 0.4, 0.9)))


def _shape(kind, center, half, yaw=0.0, semantic=4) -> Shape:
    return Shape(kind=kind, center=np.array(center, dtype=float), half_size=np.array(half, dtype=float), yaw=yaw,
                 semantic=semantic, texture=_solid((0.9, 0.3, 0.2)))


# ---------------------------------------------------------------------------------------------- determinism, API


def test_same_seed_same_arrays_and_different_seeds_differ():
    a, b = render(sample_scene(11), SIZE), render(sample_scene(11), SIZE)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    c = render(sample_scene(12), SIZE)
    assert not np.array_equal(a["rgb"], c["rgb"])
    assert not np.array_equal(a["depth_zbuffer"], c["depth_zbuffer"])


def test_label_specs_cover_the_20_tasks_in_registry_order():
    assert tuple(LABEL_SPECS) == ALL_TASKS == tuple(t.name for t in list_tasks())


@pytest.mark.parametrize("seed", SEEDS)
def test_every_label_has_its_documented_shape_dtype_and_range(frames, seed):
    frame = frames[seed]
    assert set(frame) == {"rgb", *ALL_TASKS}
    for task, spec in LABEL_SPECS.items():
        x = frame[task]
        expected = (SIZE, SIZE, spec.channels) if spec.per_pixel else (spec.channels,)
        assert x.shape == expected, task
        assert x.dtype == np.float32, task
        assert np.isfinite(x).all(), task
        assert x.min() >= spec.low and x.max() <= spec.high, task
        if spec.kind == "binary":
            assert set(np.unique(x)) <= {0.0, 1.0}, task
        if spec.kind == "ids":
            np.testing.assert_array_equal(x, np.round(x), err_msg=task)


def test_tasks_argument_computes_only_those_and_accepts_aliases():
    frame = render(sample_scene(0), SIZE, tasks=["depth", "normals", "depth_zbuffer"])
    assert set(frame) == {"rgb", "depth_zbuffer", "normal"}
    assert set(render(sample_scene(0), SIZE, tasks="edge3d")) == {"rgb", "edge_occlusion"}
    assert set(render(sample_scene(0), SIZE, tasks=[])) == {"rgb"}


def test_bad_inputs_raise_one_clear_error():
    with pytest.raises(UserInputError, match=r"Unknown task 'dpeth'.*Did you mean 'depth_zbuffer'"):
        render(sample_scene(0), SIZE, tasks=["dpeth"])
    with pytest.raises(UserInputError, match=r"size must be an integer >= 16, got 8"):
        render(sample_scene(0), 8)
    with pytest.raises(UserInputError, match=r"size must be an integer >= 16, got 64.0"):
        render(sample_scene(0), 64.0)
    with pytest.raises(UserInputError, match=r"sigma must be >= 0"):
        add_noise(np.zeros((4, 4, 3)), seed=0, sigma=-1)
    with pytest.raises(UserInputError, match=r"seed must be an integer >= 0, got -1"):
        sample_scene(-1)
    with pytest.raises(UserInputError, match=r"scene must be a rsa_toolkit.scenes.Scene .* got int"):
        render(3, SIZE)
    with pytest.raises(UserInputError, match=r"Unknown Shape.kind 'cube'. Available: box, sphere, cylinder"):
        _shape("cube", (0, 0, 0), (1, 1, 1))
    with pytest.raises(UserInputError, match=r"Unknown Texture.kind 'dots'"):
        Texture(kind="dots", color_a=np.ones(3), color_b=np.ones(3))


def test_autoencoding_like_targets_are_the_image(frames):
    frame = frames[0]
    for task in ("autoencoding", "denoising", "colorization", "inpainting"):
        np.testing.assert_array_equal(frame[task], frame["rgb"])
    assert 0 <= frame["rgb"].min() and frame["rgb"].max() <= 1


def test_input_transforms():
    rgb = render(sample_scene(3), SIZE, tasks=[])["rgb"]
    noisy = add_noise(rgb, seed=5, sigma=0.1)
    np.testing.assert_array_equal(noisy, add_noise(rgb, seed=5, sigma=0.1))
    assert noisy.dtype == np.float32 and noisy.min() >= 0 and noisy.max() <= 1
    assert 0.05 < np.abs(noisy - rgb).mean() < 0.1  # E|N(0, 0.1)| = 0.08, less where clipped
    gray = to_gray(rgb)
    assert gray.shape == (SIZE, SIZE, 1)
    np.testing.assert_allclose(gray[..., 0], rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32), rtol=1e-6)
    mask = inpainting_mask(SIZE, seed=9)
    np.testing.assert_array_equal(mask, inpainting_mask(SIZE, seed=9))
    rows, cols = np.flatnonzero(mask.any(axis=(1, 2))), np.flatnonzero(mask.any(axis=(0, 2)))
    assert mask.sum() == len(rows) * len(cols)  # one filled rectangle
    assert SIZE // 4 <= len(rows) <= SIZE // 2 and SIZE // 4 <= len(cols) <= SIZE // 2


def test_sampled_scenes_cover_the_types_and_classes():
    scenes = [sample_scene(s) for s in range(60)]
    assert {s.scene_type for s in scenes} == set(range(len(SCENE_TYPES)))
    assert {sh.semantic for s in scenes for sh in s.shapes} == {4, 5, 6, 7}
    for s in scenes:
        assert 1 <= len(s.shapes) <= 6
        assert np.all(s.camera.position > 0) and np.all(s.camera.position < s.room.size)
        assert np.all(s.light.position > 0) and np.all(s.light.position < s.room.size)


# ---------------------------------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("seed", SEEDS)
def test_normals_are_unit_and_face_the_camera(frames, seed):
    n = frames[seed]["normal"].reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5)
    rays = camera_rays(SIZE, float(np.deg2rad(60))).T
    assert np.all(np.sum(n * rays, axis=1) < 1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_zbuffer_is_distance_times_cosine_to_the_optical_axis(frames, seed):
    cos = camera_rays(SIZE, float(np.deg2rad(60)))[2].reshape(SIZE, SIZE, 1)
    f = frames[seed]
    np.testing.assert_allclose(f["depth_zbuffer"], f["depth_euclidean"] * cos, rtol=1e-6)


def _march(scene: Scene, d: np.ndarray, step: float = 1e-3) -> tuple[float, int]:
    """Brute-force reference: walk along the ray in 1 mm steps; the first sample inside a shape (by its implicit
    inequality) or outside the room. Returns (distance, shape index or -1 for the room)."""
    o = scene.camera.position
    t = np.arange(step, 20.0, step)
    p = o + t[:, None] * d
    first, who = np.inf, -1
    outside = np.any((p < 0) | (p > scene.room.size), axis=1)
    if outside.any():
        first = t[np.argmax(outside)]
    for k, sh in enumerate(scene.shapes):
        q = (p - sh.center) @ sh.rotation  # local coordinates
        h = sh.half_size
        if sh.kind == "box":
            inside = np.all(np.abs(q) <= h, axis=1)
        elif sh.kind == "sphere":
            inside = np.sum(q * q, axis=1) <= h[0] ** 2
        else:
            inside = (q[:, 0] ** 2 + q[:, 1] ** 2 <= h[0] ** 2) & (np.abs(q[:, 2]) <= h[2])
        if inside.any() and t[np.argmax(inside)] < first:
            first, who = t[np.argmax(inside)], k
    return first, who


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_depth_and_object_match_brute_force_ray_marching(seed):
    scene = sample_scene(seed)
    frame = render(scene, SIZE, tasks=["depth_euclidean", "segment_semantic"])
    rays = camera_rays(SIZE, float(scene.camera.fov)).T @ scene.camera.rotation.T
    rng = np.random.default_rng(seed)
    for i in rng.choice(SIZE * SIZE, size=25, replace=False):
        t_ref, who = _march(scene, rays[i])
        depth = frame["depth_euclidean"].reshape(-1)[i]
        assert t_ref - 1.5e-3 <= depth <= t_ref + 1e-4, (i, depth, t_ref)
        semantic = frame["segment_semantic"].reshape(-1)[i]
        if who >= 0 and abs(depth - t_ref) < 5e-4:
            assert semantic == scene.shapes[who].semantic


def test_hand_made_sphere_depth_normal_and_curvature():
    # camera at (50, 50, 50) looking along +y; sphere of radius 1.5 centred 5 m ahead; odd size: a centre pixel
    size = 65
    frame = render(_scene([_sphere((50.0, 55.0, 50.0), 1.5)]), size)
    c = size // 2
    assert frame["depth_zbuffer"][c, c, 0] == pytest.approx(3.5, abs=1e-6)
    assert frame["depth_euclidean"][c, c, 0] == pytest.approx(3.5, abs=1e-6)
    np.testing.assert_allclose(frame["normal"][c, c], [0.0, 0.0, -1.0], atol=1e-6)
    ball = frame["segment_semantic"][..., 0] == CLASSES.index("ball")
    np.testing.assert_allclose(frame["curvature"][ball], 1 / 1.5, rtol=1e-6)
    assert np.all(frame["curvature"][~ball] == 0)  # the walls of the room are planes
    # the sphere's angular radius asin(1.5 / 5) fixes its image radius: f tan(asin(0.3))
    f = 0.5 * size / np.tan(np.deg2rad(30))
    radius_px = f * np.tan(np.arcsin(0.3))
    yy, xx = np.mgrid[:size, :size] + 0.5 - 0.5 * size
    r = np.hypot(xx, yy)
    assert ball[r < radius_px - 0.75].all() and not ball[r > radius_px + 0.75].any()
    # the silhouette is an occlusion edge; nothing else in a bare room is
    edges = frame["edge_occlusion"][..., 0] > 0
    assert edges.any() and np.all(np.abs(r[edges] - radius_px) < 1.5)


def test_cylinder_curvature_and_flat_box():
    size = 64
    shapes = [_shape("cylinder", (48.0, 56.0, 50.0), (0.8, 0.8, 2.0), semantic=6),
              _shape("box", (52.0, 56.0, 50.0), (0.7, 0.7, 0.7), yaw=0.5, semantic=4)]
    frame = render(_scene(shapes), size)
    sem = frame["segment_semantic"][..., 0]
    curv = frame["curvature"]
    np.testing.assert_allclose(curv[sem == 6], np.broadcast_to([1 / 0.8, 0.0], curv[sem == 6].shape), rtol=1e-6)
    assert np.all(curv[sem == 4] == 0)


def test_room_creases_are_not_occlusion_edges():
    # a bare room seen into a corner, with pitch and roll: walls, floor and ceiling meet only in creases
    scene = _scene(room=(6.0, 5.0, 3.0), cam=(2.0, 1.5, 1.4), yaw=-0.6, pitch=0.2, roll=0.05, light=(3, 3, 2.8))
    frame = render(scene, 128)
    assert len(np.unique(frame["segment_unsup25d"])) >= 4
    assert frame["edge_occlusion"].sum() == 0


def test_segment_25d_is_constant_over_each_box_face():
    scene = _scene([_shape("box", (50.0, 55.0, 48.5), (1.0, 1.0, 1.0), yaw=0.6)])
    frame = render(scene, 96)
    box = frame["segment_semantic"][..., 0] == CLASSES.index("cabinet")
    ids = frame["segment_unsup25d"][..., 0][box]
    faces = np.round(frame["normal"][box], 4)
    face_keys = [tuple(f) for f in faces]
    by_face: dict[tuple, set] = {}
    for key, i in zip(face_keys, ids):
        by_face.setdefault(key, set()).add(float(i))
    assert len(by_face) == 3  # two sides and the top (the camera is above the box's top face)
    assert all(len(v) == 1 for v in by_face.values())
    assert len(set.union(*by_face.values())) == 3
    assert not set(np.unique(frame["segment_unsup25d"][..., 0][~box])) & set.union(*by_face.values())


def test_shadow_gives_zero_shading_without_ambient():
    # light between the camera and a sphere; the sphere's shadow on the far wall (y = 10) forms a ring around it
    light = np.array([5.0, 4.0, 5.0])
    center, r = np.array([5.0, 7.0, 5.0]), 1.0
    scene = _scene([_sphere(center, r)], room=(10.0, 10.0, 10.0), cam=(5.0, 1.0, 5.0), light=light, ambient=0.0)
    size = 96
    frame = render(scene, size)
    shading = frame["reshading"][..., 0]
    assert shading.min() >= 0 and shading.max() <= 1
    # hit points on the far wall, from the camera rays and the rendered distance
    rays = (camera_rays(size, float(scene.camera.fov)).T @ scene.camera.rotation.T).reshape(size, size, 3)
    p = scene.camera.position + frame["depth_euclidean"].astype(np.float64) * rays
    wall = np.abs(p[..., 1] - 10.0) < 1e-3
    to_c = center - light
    cos = np.sum((p - light) * to_c, axis=-1) / (np.linalg.norm(p - light, axis=-1) * np.linalg.norm(to_c))
    in_cone = cos > np.cos(np.arcsin(r / np.linalg.norm(to_c)))
    margin = np.abs(cos - np.cos(np.arcsin(r / np.linalg.norm(to_c)))) > 1e-3
    shadowed, lit = wall & in_cone & margin, wall & ~in_cone & margin
    assert shadowed.sum() > 50 and lit.sum() > 50
    assert np.all(shading[shadowed] == 0)
    # lit wall: Lambert, n = -y (facing the room), l towards the light
    to_light = light - p[lit]
    expected = (to_light @ np.array([0.0, -1.0, 0.0])) / np.linalg.norm(to_light, axis=1)
    np.testing.assert_allclose(shading[lit], expected, rtol=1e-5)


def test_semantic_ids_and_image_level_classes(frames):
    for seed, frame in frames.items():
        sem = frame["segment_semantic"][..., 0].astype(int)
        assert sem.min() >= 1 and sem.max() < len(CLASSES)
        counts = np.array([(sem == CLASSES.index(c)).sum() for c in OBJECT_CLASSES], dtype=float)
        expected = counts / counts.sum() if counts.sum() else np.full(len(OBJECT_CLASSES), 1 / len(OBJECT_CLASSES))
        np.testing.assert_allclose(frame["class_object"], expected, rtol=1e-6)
        one_hot = np.zeros(len(SCENE_TYPES))
        one_hot[sample_scene(seed).scene_type] = 1
        np.testing.assert_array_equal(frame["class_scene"], one_hot)


# --------------------------------------------------------------------------------------- layout, vanishing points


def test_forward_vanishing_point_is_the_principal_point_at_identity_rotation():
    scene = _scene()
    vp = vanishing_points(scene)
    np.testing.assert_allclose(vp, [0, 0, 1, 1, 0, 0, 0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(vanishing_point_pixels(vp, 128, scene.camera.fov)[0], [64.0, 64.0])


@pytest.mark.parametrize("seed", range(8))
def test_vanishing_points_are_where_images_of_room_lines_meet(seed):
    scene = sample_scene(seed)
    vp = vanishing_points(scene).reshape(3, 3)
    np.testing.assert_allclose(np.linalg.norm(vp, axis=1), 1.0)
    r = scene.camera.rotation
    rng = np.random.default_rng(seed)
    for a in vp:  # a is ± one room axis in the camera frame
        axis = r @ a
        assert np.isclose(np.max(np.abs(axis)), 1.0)
        for _ in range(3):  # the image of any 3D line along that axis passes through the vanishing point
            p0 = rng.uniform(0, 1, 3) * scene.room.size
            x1 = r.T @ (p0 - scene.camera.position)
            x2 = r.T @ (p0 + 0.7 * axis - scene.camera.position)
            line = np.cross(x1, x2)  # homogeneous image line (the pinhole intrinsics cancel in this test)
            assert abs(line @ a) < 1e-9 * np.linalg.norm(line)


def _turned(scene: Scene, turns: int) -> Scene:
    """The same room and camera described in the world frame turned by ``turns`` quarter turns (+π/2 each):
    x' = y, y' = W − x, width and depth swap, yaw − π/2."""
    (w, d, h), (x, y, z) = scene.room.size, scene.camera.position
    yaw = scene.camera.yaw
    for _ in range(turns):
        x, y, w, d, yaw = y, w - x, d, w, yaw - np.pi / 2
    room = dataclasses.replace(scene.room, size=np.array([w, d, h]))
    return Scene(room=room, shapes=(), light=scene.light,
                 camera=Camera(position=np.array([x, y, z]), yaw=yaw, pitch=scene.camera.pitch,
                               roll=scene.camera.roll))


@pytest.mark.parametrize("seed", [3, 4, 11])
def test_room_layout_is_invariant_to_quarter_turns_of_the_room(seed):
    scene = sample_scene(seed)
    layout = room_layout(scene)
    for turns in (1, 2, 3):
        np.testing.assert_allclose(room_layout(_turned(scene, turns)), layout, atol=1e-12)
    assert -np.pi / 4 <= layout[0] < np.pi / 4 and np.all(np.abs(layout[3:6]) <= 1)
    assert sorted(layout[6:8] * 8) == pytest.approx(sorted(scene.room.size[:2]))
    # the turned description is the same view: the empty room's depth image is identical (independent of layout.py)
    bare = _turned(scene, 0)
    np.testing.assert_allclose(render(_turned(scene, 1), 32, tasks=["depth_euclidean"])["depth_euclidean"],
                               render(bare, 32, tasks=["depth_euclidean"])["depth_euclidean"], rtol=1e-5, atol=1e-6)


def test_room_layout_by_hand():
    """Room 6 × 5 × 3, camera at (2, 1.5, 1.4) with yaw 2.0 rad: one quarter turn (2.0 ∈ [π/4, 3π/4)), so yaw
    2.0 − π/2, position (1.5, 6 − 2) in a 5 × 6 room."""
    scene = _scene(room=(6.0, 5.0, 3.0), cam=(2.0, 1.5, 1.4), yaw=2.0, pitch=0.1, light=(3, 3, 2.8))
    expected = [2.0 - np.pi / 2, 0.1, 0.0, 2 * 1.5 / 5 - 1, 2 * 4 / 6 - 1, 2 * 1.4 / 3 - 1, 5 / 8, 6 / 8, 3 / 4]
    np.testing.assert_allclose(room_layout(scene), expected, atol=1e-12)


def test_keypoints3d_peak_at_visible_room_corners():
    scene = _scene(room=(6.0, 5.0, 3.0), cam=(2.0, 1.5, 1.4), yaw=-0.6, pitch=0.1, light=(3, 3, 2.8))
    size = 128
    heat = render(scene, size, tasks=["keypoints3d"])["keypoints3d"][..., 0]
    f = 0.5 * size / np.tan(0.5 * scene.camera.fov)
    corners = np.array([[x, y, z] for x in (0, 6) for y in (0, 5) for z in (0, 3)], dtype=float)
    pc = (corners - scene.camera.position) @ scene.camera.rotation
    uv = 0.5 * size + f * pc[:, :2] / pc[:, 2:3]
    inside = (pc[:, 2] > 0) & np.all((uv >= 0) & (uv < size), axis=1)
    assert inside.sum() >= 2
    for u, v in uv[inside]:
        assert heat[int(v), int(u)] > 0.6
    far = np.min(np.hypot(*(np.mgrid[:size, :size][::-1, ..., None] + 0.5 - uv[inside].T[:, None, None])), axis=-1)
    assert np.all(heat[far > 8] < 1e-3)
