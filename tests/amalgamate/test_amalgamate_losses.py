"""Distillation and guidance losses against hand-computed values and their invariants, the GAN discriminator, and
losses that decrease when the student trains on one fixed batch of cached teacher knowledge."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from amalgamate.training.images import image_batch, shard_frames
from amalgamate.training.knowledge import build_knowledge
from amalgamate.training.losses import (GuidanceAdapters, PatchDiscriminator, distillation_loss, guidance_loss,
                                       positive_weight)
from amalgamate.spaces import SPACES, depth_metres, output_space
from amalgamate.student import Student
from amalgamate.zoo import mini_source


pytestmark = pytest.mark.usefixtures("one_torch_thread")


VALUE, BINARY, CLASSES = SPACES.get("log_depth"), SPACES.get("edge_logits"), SPACES.get("class_logits")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_value_losses_by_hand(dtype):
    s = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=dtype)
    t = torch.tensor([[[[1.0, 0.0], [3.5, 4.0]]]], dtype=dtype)
    assert float(distillation_loss(s, t, VALUE)) == pytest.approx((0 + 2 + 0.5 + 0) / 4)
    assert float(distillation_loss(s, t, VALUE, norm="l2")) == pytest.approx((0 + 4 + 0.25 + 0) / 4)
    mask = torch.tensor([[[[1, 0], [1, 1]]]], dtype=torch.bool)
    assert float(distillation_loss(s, t, VALUE, mask=mask)) == pytest.approx(0.5 / 3)
    assert float(distillation_loss(s, t, VALUE, mask=torch.zeros_like(mask))) == 0.0  # no valid pixel: 0, not NaN


def test_soft_target_losses_are_kl_divergences():
    torch.manual_seed(0)
    s, t = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    p, q = torch.sigmoid(t), torch.sigmoid(s)
    kl = (p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))).mean()
    assert float(distillation_loss(s, t, BINARY)) == pytest.approx(float(kl), rel=1e-5)
    assert float(distillation_loss(t, t, BINARY)) == pytest.approx(0.0, abs=1e-6)  # a perfect student scores 0
    logits_s, logits_t = torch.randn(4, 5), torch.randn(4, 5)
    ref = F.kl_div(F.log_softmax(logits_s, 1), F.log_softmax(logits_t, 1), log_target=True, reduction="batchmean")
    assert float(distillation_loss(logits_s, logits_t, CLASSES)) == pytest.approx(float(ref), rel=1e-5)
    # per-pixel classes: the class dimension is dim 1
    maps_s, maps_t = torch.randn(2, 7, 3, 3), torch.randn(2, 7, 3, 3)
    flat = lambda x: x.permute(0, 2, 3, 1).reshape(-1, 7)  # noqa: E731
    ref = F.kl_div(F.log_softmax(flat(maps_s), 1), F.log_softmax(flat(maps_t), 1), log_target=True,
                   reduction="batchmean")
    assert float(distillation_loss(maps_s, maps_t, CLASSES)) == pytest.approx(float(ref), rel=1e-5)
    # temperature: T^2 KL of the softened distributions
    ref_t = F.kl_div(F.log_softmax(logits_s / 2, 1), F.log_softmax(logits_t / 2, 1), log_target=True,
                     reduction="batchmean") * 4
    assert float(distillation_loss(logits_s, logits_t, CLASSES, temperature=2.0)) == pytest.approx(float(ref_t),
                                                                                                    rel=1e-5)


def test_output_spaces_and_depth_is_never_inverted_linearly():
    assert output_space("depth", "mini").name == "log_depth"
    assert output_space("edge2d", "mini").kind == "binary_logits"
    assert output_space("edge2d", "taskonomy").kind == "value"  # Taskonomy's edges are tanh regressions
    assert output_space("class_scene", "taskonomy").kind == "class_logits"
    assert float(depth_metres(torch.tensor(math.log(2.5)), "log_depth")) == pytest.approx(2.5)
    # Taskonomy: raw = 2 log(1 + 512 d) / log(2^16) - 1
    d = 3.0
    raw = 2 * math.log(1 + 512 * d) / math.log(2 ** 16) - 1
    assert float(depth_metres(torch.tensor(raw), "taskonomy_depth")) == pytest.approx(d)
    assert float(depth_metres(torch.tensor(1.0), "taskonomy_depth")) == pytest.approx((2 ** 16 - 1) / 512)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_class_balanced_edge_loss_by_hand(dtype):
    """l(s) = wBCE(s + log w, p) - wBCE(t + log w, p) at one pixel, written out; its minimum is the teacher."""
    s, t, w = 0.3, -1.2, 4.0
    p = 1 / (1 + math.exp(-t))

    def wbce(x: float) -> float:
        q = 1 / (1 + math.exp(-(x + math.log(w))))
        return -w * p * math.log(q) - (1 - p) * math.log(1 - q)

    one = lambda v: torch.tensor([[[[v]]]], dtype=dtype)  # noqa: E731
    assert float(distillation_loss(one(s), one(t), BINARY, pos_weight=w)) == pytest.approx(wbce(s) - wbce(t), rel=1e-5)
    assert float(distillation_loss(one(t), one(t), BINARY, pos_weight=w)) == pytest.approx(0.0, abs=1e-6)
    grid = torch.linspace(-6, 6, 1201, dtype=torch.float64)
    values = torch.stack([distillation_loss(one(float(v)).double(), one(t).double(), BINARY, pos_weight=w)
                          for v in grid])
    assert float(grid[values.argmin()]) == pytest.approx(t, abs=0.011)  # calibrated: the minimiser is the teacher
    # a student that says "no edge" is pulled w times harder at an edge pixel than by plain BCE / KL
    edge = torch.tensor([[[[8.0]]]], dtype=dtype)
    missing = torch.tensor([[[[-8.0]]]], dtype=dtype, requires_grad=True)
    distillation_loss(missing, edge, BINARY, pos_weight=w).backward()
    weighted = float(missing.grad)
    missing.grad = None
    distillation_loss(missing, edge, BINARY).backward()
    assert weighted == pytest.approx(w * float(missing.grad), rel=1e-2)
    # w+ from the class balance: one edge pixel in ten -> 9
    maps = torch.full((1, 1, 10, 1), -1e3, dtype=dtype)
    maps[0, 0, 0, 0] = 1e3
    assert positive_weight(maps) == pytest.approx(9.0)
    assert positive_weight(torch.full((1, 1, 2, 2), 5.0)) == 1.0  # mostly edges: never below 1


def test_guidance_adapters_start_at_the_identity_and_average_over_teachers():
    r1, r2 = torch.full((1, 8, 2, 2), 3.0), torch.full((1, 8, 2, 2), -1.0)
    stats = {"depth_zbuffer": (1.0, 2.0), "auxiliary": (0.0, 0.5)}
    adapters = GuidanceAdapters(["depth_zbuffer", "auxiliary"], 8)
    z = torch.zeros_like(r1, requires_grad=True)
    loss = guidance_loss(z, {"depth_zbuffer": r1, "auxiliary": r2}, stats, adapters)
    # identity adapters: mean(|0 - (3 - 1) / 2|, |0 - (-1 - 0) / 0.5|) = mean(1, 2)
    assert float(loss.detach()) == pytest.approx(1.5)
    loss.backward()
    assert z.grad is not None and all(p.grad is not None for p in adapters.parameters())
    assert r1.grad is None  # the teachers' representations are constants
    with torch.no_grad():  # an adapter that reads z out as the teacher's standardised representation: loss 0
        adapters.adapters["depth_zbuffer"].bias.fill_(1.0)
        adapters.adapters["auxiliary"].bias.fill_(-2.0)
        assert float(guidance_loss(torch.zeros_like(r1), {"depth_zbuffer": r1, "auxiliary": r2}, stats,
                                   adapters)) == pytest.approx(0.0)


def test_patch_discriminator_shape():
    d = PatchDiscriminator(3 + 1, width=8)
    assert len([m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]) == 5
    out = d(torch.randn(2, 3, 64, 64), torch.randn(2, 1, 64, 64))
    assert out.shape == (2, 1, 6, 6)


def test_losses_decrease_on_a_fixed_batch(tiny_zoo, tiny_shards, tmp_path):
    zoo = mini_source(tiny_zoo)
    targets = [zoo.target("depth"), zoo.target("normal")]
    images = shard_frames(tiny_shards[0])
    knowledge = build_knowledge(targets, zoo.auxiliary("class_scene"), images, cache_dir=tmp_path)
    idx = [0, 1, 2, 3]
    x, kb = image_batch(images, idx, zoo.student_preprocessing), knowledge.batch(idx)
    torch.manual_seed(0)
    student = Student(["depth", "normal"])
    adapters = GuidanceAdapters(list(knowledge.stats.guides()), 8)
    opt = torch.optim.Adam([*student.parameters(), *adapters.parameters()], lr=1e-3)

    def losses() -> list[float]:
        z, out = student(x)
        parts = [distillation_loss(out[t.name], kb.outputs[t.name], t.space) for t in targets]
        parts.append(guidance_loss(z, kb.guides(), knowledge.stats.guides(), adapters))
        return parts

    first = [float(v.detach()) for v in losses()]
    for _ in range(15):
        opt.zero_grad()
        sum(losses()).backward()
        opt.step()
    last = [float(v.detach()) for v in losses()]
    assert all(b < a for a, b in zip(first, last)), (first, last)
