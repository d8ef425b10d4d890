"""The student: shapes of both architectures, the trunk / last-shared-layer split, sizes against the teachers, and
the n-to-n baseline's parameter matching."""

from __future__ import annotations


import pytest
import torch

from amalgamate.student import Student, StudentEnsemble, build_student, count_parameters
from rsa_toolkit.errors import UserInputError
from rsa_toolkit.zoo.mini.net import build_teacher_net


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_compact_student_shapes_for_pixel_and_image_level_tasks():
    torch.manual_seed(0)
    student = Student(["depth", "normals", "edge2d", "scene_class", "segment_semantic"])
    assert student.tasks == ("depth_zbuffer", "normal", "edge_texture", "class_scene", "segment_semantic")
    z, out = student(torch.randn(2, 3, 64, 64))
    assert z.shape == (2, 8, 16, 16)
    assert {t: tuple(o.shape) for t, o in out.items()} == {
        "depth_zbuffer": (2, 1, 64, 64), "normal": (2, 3, 64, 64), "edge_texture": (2, 1, 64, 64),
        "class_scene": (2, 5), "segment_semantic": (2, 8, 64, 64)}
    for task, o in out.items():  # the teachers' output shapes, so distillation compares like with like
        assert o.shape[1:] == build_teacher_net(task)(torch.randn(2, 3, 64, 64)).shape[1:]


def test_trunk_and_last_shared_layer_compose_to_the_encoder():
    torch.manual_seed(0)
    student = Student(["depth", "normal"]).eval()
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(student.represent(student.trunk(x)), student.encoder(x))
    assert student.shared_weight() is student.encoder.representation.weight
    shared = {id(p) for p in student.shared_parameters()}
    heads = {id(p) for p in student.head_parameters()}
    assert not shared & heads and len(shared) + len(heads) == len(list(student.parameters()))
    assert len(student.state_dict()) == len(dict(student.named_parameters())) + len(dict(student.named_buffers()))


@pytest.mark.parametrize("n", [2, 3, 5])
def test_student_is_smaller_than_its_teachers(n):
    tasks = ["depth_zbuffer", "normal", "edge_texture", "reshading", "keypoints2d"][:n]
    student = Student(tasks)
    teachers = sum(count_parameters(build_teacher_net(t)) for t in tasks)
    assert count_parameters(student) < teachers


def test_n_to_n_students_match_the_n_to_1_size():
    torch.manual_seed(0)
    tasks = ["depth_zbuffer", "normal", "edge_texture"]
    joint = build_student(tasks)
    torch.manual_seed(1)
    ensemble = build_student(tasks, method="kd-n-to-n")
    torch.manual_seed(1)
    again = StudentEnsemble(tasks, widths=ensemble.widths)  # the sizing's throw-away networks did not move the seed
    assert all(torch.equal(a, b) for a, b in zip(ensemble.state_dict().values(), again.state_dict().values()))
    assert isinstance(ensemble, StudentEnsemble) and set(ensemble.students) == set(tasks)
    assert count_parameters(ensemble) == pytest.approx(count_parameters(joint), rel=0.05)
    z, out = ensemble(torch.randn(2, 3, 64, 64))
    assert z is None and {t: o.shape[1] for t, o in out.items()} == {"depth_zbuffer": 1, "normal": 3,
                                                                     "edge_texture": 1}


def test_taskonomy_student_shapes():
    """The seed's full-size student (ResNet-50 encoder, 15-layer decoders), at 64 x 64 to keep it quick: a 4 x 4
    representation, decoded back to 64 x 64."""
    torch.manual_seed(0)
    student = Student(["depth", "normal"], architecture="taskonomy")
    assert student.input_size == 256
    with torch.no_grad():
        z, out = student.eval()(torch.randn(1, 3, 64, 64))
    assert z.shape == (1, 8, 4, 4)
    assert out["depth_zbuffer"].shape == (1, 1, 64, 64) and out["normal"].shape == (1, 3, 64, 64)
    assert student.shared_weight() is student.encoder.compress1.weight


def test_unknown_architecture_and_n_to_n_with_taskonomy():
    with pytest.raises(UserInputError, match="Unknown student architecture 'tiny'. .*Available: compact, taskonomy"):
        Student(["depth", "normal"], architecture="tiny")
    with pytest.raises(UserInputError, match="kd-n-to-n needs the compact architecture"):
        build_student(["depth", "normal"], architecture="taskonomy", method="kd-n-to-n")


def test_output_biases_start_at_the_teachers_mean():
    from amalgamate.student import init_output_biases
    from rsa_toolkit.zoo.mini.net import output_channels

    k = output_channels("class_scene")
    means = {"depth_zbuffer": torch.tensor([1.6]), "class_scene": torch.arange(float(k))}  # a vector head too
    student = Student(["depth_zbuffer", "normal", "class_scene"])
    assert init_output_biases(student, means) == ["depth_zbuffer", "class_scene"]
    assert student.heads["depth_zbuffer"].out.bias.tolist() == pytest.approx([1.6])
    torch.testing.assert_close(student.heads["class_scene"].out.bias.detach(), torch.arange(float(k)))
    ensemble = StudentEnsemble(["depth_zbuffer", "normal"], widths=(8, 16, 32, 48))
    assert init_output_biases(ensemble, {"depth_zbuffer": torch.tensor([1.6])}) == ["depth_zbuffer"]
    assert ensemble.students["depth_zbuffer"].heads["depth_zbuffer"].out.bias.tolist() == pytest.approx([1.6])
    assert init_output_biases(Student(["depth_zbuffer", "normal"], architecture="taskonomy"), means) == []  # tanh
