"""The trainer of a student: the model, its optimisers, the data order and everything a step changes, and the state
a checkpoint holds.

:class:`Trainer` builds the student of the run's method (:data:`amalgamate.config.METHODS`), the weighting, the
guidance adapters (SOKA: one 1 x 1 convolution per guiding teacher, :class:`amalgamate.training.losses.GuidanceAdapters`),
two AdamW optimisers with warm-up and cosine decay (``"shared"``: the shared encoder and the adapters; ``"heads"``:
the task heads and learned weight parameters), and the optional GAN discriminators; :meth:`Trainer.train_step` draws
the next batch and hands it to the method's step function (:mod:`amalgamate.training.steps`: SOKA's collaboration
and competition, or KD), then logs what it did.

**Where the task weights act: on the shared encoder only.** The collaboration loss ``sum_i w_i L_i + lambda L_guide``
trains the encoder; each head is trained on its own, unweighted L_i. A head receives gradient from its own task
only, so a weight on it is a constant factor on its gradient, which AdamW cancels (its update is invariant to the
gradient's scale) and which plain SGD would turn into a per-head learning rate, mixing the balance of the tasks with
the tuning of each head's step size. The weights decide how the tasks share the encoder, which is where they compete
(GradNorm balances gradients on its last layer W); the heads learn at the optimiser's rate. A test checks that
doubling a weight leaves the heads' update unchanged and changes the encoder's.

**Edges.** Binary-map tasks (a space of kind ``binary_logits``, :mod:`amalgamate.spaces`) get a positive weight
w+ from the class balance of the teacher's maps over the first training images
(:func:`amalgamate.training.losses.positive_weight`).

**Balance.** SOKA starts with ``kd_warmup`` steps of distillation only (equal weights, no guidance, no competition).
Then the competition is *balanced* when the drift of the weights (the mean over tasks of |twice-EMA-smoothed
log(w_i(t) / w_i(t-1))|) stays below ``balance_threshold`` for ``balance_window`` competition steps in which the
weighting was active (:class:`amalgamate.training.balance.BalanceCriterion`); the step and why are logged, and with
``stop_competition_when_balanced`` (the default) a weighting that ``freezes_when_balanced`` (GradNorm, the seed's
competition) keeps its weights from then on and training continues in the collaboration regime (the heads keep
training, on their own losses); the other balancers move their weights to the end, as published.

Runs are reproducible and resumable: every random thing is seeded (initialisation by ``torch.manual_seed(seed)``,
the data order by a numpy generator), and a checkpoint holds the model, both optimisers and schedulers, the
weighting's state, the discriminators, the RNG states and the data order, so a run killed and resumed ends with
the same weights, bit for bit, as an uninterrupted one. A non-finite loss stops training with the step and the last
good checkpoint named. Under ``torchrun`` each rank takes its share of every global batch, and the step averages
what must be averaged (:mod:`amalgamate.training.data_parallel`). :func:`amalgamate.training.run.train` runs the
steps; this module is what one step changes.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from rsa_toolkit.distributed import all_reduce_mean, is_distributed
from rsa_toolkit.errors import UserInputError

from amalgamate.training import losses as L
from amalgamate.config import AmalgamateConfig
from amalgamate.training.data_parallel import average_gradients, global_batchnorm, local_share, wrap
from amalgamate.training.images import image_batch
from amalgamate.training.balance import BalanceCriterion
from amalgamate.training.knowledge import STATS_IMAGES, Knowledge, KnowledgeBatch
from amalgamate.training.masks import load_masks
from amalgamate.run_dir import RunDir
from amalgamate.student import build_student, init_output_biases, model_spec
from amalgamate.training.weighting import Weighting, build_weighting

if TYPE_CHECKING:
    from pathlib import Path

    from amalgamate.training.setup import RunSetup

__all__ = ["Trainer", "TrainingDiverged", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = 2  # 2: guidance adapters and the balance criterion's state (issue 16)


class TrainingDiverged(UserInputError):
    """A loss became NaN or infinite; the message names the step and the last good checkpoint."""


# --- the trainer ------------------------------------------------------------------------------------------------------

def _schedule(steps: int, warmup: float):  # noqa: ANN202 - a LambdaLR factor function
    warm = int(round(warmup * steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


class Trainer:
    """The student, its optimisers and everything a step changes; :meth:`train_step` does one step of the run's
    method (``setup.method.step``, :mod:`amalgamate.training.steps`), which reads and changes this object through
    :class:`amalgamate.training.steps.StepTrainer`."""

    def __init__(self, config: AmalgamateConfig, setup: RunSetup, knowledge: Knowledge, run: RunDir,
                 device: torch.device, masks: list[Path] | None = None) -> None:
        self.config, self.knowledge, self.run, self.device, self.masks = config, knowledge, run, device, masks
        self.method = setup.method
        self.tasks = list(config.targets)
        self.spaces = {t.name: t.space for t in setup.targets}
        self.prep = setup.zoo.student_preprocessing
        self.dtype = getattr(torch, config.precision)
        torch.manual_seed(config.seed)
        self.model = build_student(self.tasks, architecture=setup.architecture, method=config.method)
        self.model.to(device, self.dtype)
        init_output_biases(self.model, self._mean_outputs())
        options = config.weighting_options
        self.weighting: Weighting = build_weighting(
            config.weighting, len(self.tasks),
            **options.get(config.weighting, options.get(config.weighting.replace("-", "_"), {})))
        self.weighting.to(device, self.dtype)
        self.guide_weight = config.guide_weight if self.method.self_coordinated else 0.0  # lambda; 0: no guidance
        self.adapters = nn.ModuleDict()  # "guidance": the GuidanceAdapters when the run guides
        if self.guide_weight > 0:
            roles = list(knowledge.stats.guides())
            channels = int(knowledge.batch([0]).representations[self.tasks[0]].shape[1])
            self.adapters["guidance"] = L.GuidanceAdapters(roles, channels)
        self.adapters.to(device, self.dtype)
        self.pos_weights = self._positive_weights()
        opt = lambda params: torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)  # noqa: E731
        self.optimizers = {"shared": opt(self.shared_trained()),
                           "heads": opt(list(self.model.head_parameters()) + list(self.weighting.parameters()))}
        factor = _schedule(config.steps, config.warmup)
        self.schedulers = {k: torch.optim.lr_scheduler.LambdaLR(o, factor) for k, o in self.optimizers.items()}
        pixel_tasks = [t for t in self.tasks if self._is_pixel_task(t)]
        self.discriminators = nn.ModuleDict()
        if config.gan_start is not None:
            torch.manual_seed(config.seed + 1)
            self.discriminators = nn.ModuleDict({
                t: L.PatchDiscriminator(3 + self._channels(t), config.gan_width) for t in pixel_tasks}).to(device,
                                                                                                       self.dtype)
        self.d_optimizer = torch.optim.Adam(self.discriminators.parameters(), lr=config.lr, betas=(0.5, 0.999)) \
            if len(self.discriminators) else None
        # under torchrun: the student in DDP (self.net runs its forward; self.model is the module itself)
        self.net = wrap(self.model, device)
        if is_distributed():
            global_batchnorm(self.discriminators)
        self.rng = np.random.default_rng([config.seed, 7])
        self.order = self.rng.permutation(len(knowledge))
        self.cursor = 0
        self.step = 0
        self.balance_state = BalanceCriterion(threshold=config.balance_threshold, window=config.balance_window,
                                              ema=config.balance_ema)
        self.frozen = False
        self.last_checkpoint: int | None = None

    def _mean_outputs(self) -> dict[str, Tensor]:
        """Per value-space task, the teacher's mean output per channel over the first training images (float64 sums)."""
        idx = np.arange(min(STATS_IMAGES, len(self.knowledge)))
        outputs = self.knowledge.batch(idx).outputs
        return {t: outputs[t].double().mean(dim=[0, 2, 3] if outputs[t].dim() == 4 else 0).to(self.dtype)
                for t in self.tasks if self.spaces[t].kind == "value"}

    def _positive_weights(self) -> dict[str, float]:
        """w+ per binary-map task, from the teacher's maps over the first training images."""
        binary = [t for t in self.tasks if self.spaces[t].kind == "binary_logits"]
        if not binary:
            return {}
        outputs = self.knowledge.batch(np.arange(min(STATS_IMAGES, len(self.knowledge)))).outputs
        return {t: L.positive_weight(outputs[t], temperature=self.config.temperature) for t in binary}

    @property
    def balanced_at(self) -> int | None:
        return self.balance_state.balanced_at

    @property
    def in_kd_warmup(self) -> bool:
        """SOKA's first ``kd_warmup`` steps: distillation only."""
        return self.method.self_coordinated and self.step < self.config.kd_warmup

    def shared_trained(self) -> list[nn.Parameter]:
        """What the collaboration trains: the shared encoder and the guidance adapters."""
        return list(self.model.shared_parameters()) + list(self.adapters.parameters())

    def _is_pixel_task(self, task: str) -> bool:
        from rsa_toolkit.scenes import LABEL_SPECS

        return LABEL_SPECS[task].per_pixel

    def _channels(self, task: str) -> int:
        return int(self.knowledge.batch([0]).outputs[task].shape[1])  # the teacher's output channels

    # --- state ---

    def state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT, "step": self.step, "targets": self.tasks, "method": self.config.method,
            "spec": model_spec(self.model, self.config.method),
            "model": self.model.state_dict(), "weighting": self.weighting.state_dict(),
            "adapters": self.adapters.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "discriminators": self.discriminators.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict() if self.d_optimizer else {},
            "rng": {"torch": torch.get_rng_state(), "numpy": self.rng.bit_generator.state},
            "order": torch.from_numpy(self.order.astype(np.int64)), "cursor": self.cursor,
            "balance": {**self.balance_state.state_dict(), "frozen": self.frozen},
        }

    def load(self, ckpt: Mapping[str, Any]) -> None:
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise UserInputError(f"'{self.run.file('checkpoint.pt')}' has checkpoint format {ckpt.get('format')}, "
                                 f"this version reads {CHECKPOINT_FORMAT}.")
        if list(ckpt["targets"]) != self.tasks or ckpt["method"] != self.config.method:
            raise UserInputError(
                f"resume: '{self.run.file('checkpoint.pt')}' is a checkpoint of a {ckpt['method']} student for targets "
                f"{', '.join(ckpt['targets'])}, but this run trains a {self.config.method} student for {', '.join(self.tasks)}; "
                "it comes from another run. Start again with overwrite=.", parameter=("resume", "overwrite"))
        self.model.load_state_dict(ckpt["model"])
        self.weighting.load_state_dict(ckpt["weighting"])
        self.adapters.load_state_dict(ckpt["adapters"])
        for k, o in self.optimizers.items():
            o.load_state_dict(ckpt["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(ckpt["schedulers"][k])
        self.discriminators.load_state_dict(ckpt["discriminators"])
        if self.d_optimizer:
            self.d_optimizer.load_state_dict(ckpt["d_optimizer"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        self.rng.bit_generator.state = ckpt["rng"]["numpy"]
        self.order, self.cursor = ckpt["order"].numpy().copy(), int(ckpt["cursor"])
        self.balance_state.load_state_dict(ckpt["balance"])
        self.frozen = bool(ckpt["balance"]["frozen"])
        self.step = self.last_checkpoint = int(ckpt["step"])

    def checkpoint(self) -> None:
        for p in (*self.model.parameters(), *self.adapters.parameters(), self.weighting.weights):
            if not torch.isfinite(p).all():
                return  # never overwrite the last good checkpoint with broken weights; the next loss stops the run
        self.run.save_checkpoint(self.state())  # the previous one stays as checkpoint.prev.pt
        self.last_checkpoint = self.step

    # --- one step ---

    def _next_indices(self) -> np.ndarray:
        """The next global batch; every rank draws the same order and takes its share in :meth:`train_step`."""
        b = self.config.batch_size
        if self.cursor + b > len(self.order):  # a new epoch: reshuffle
            self.order, self.cursor = self.rng.permutation(len(self.order)), 0
        idx = np.sort(self.order[self.cursor:self.cursor + b])
        self.cursor += b
        return idx

    def task_losses(self, outputs: dict[str, Tensor], kb: KnowledgeBatch) -> Tensor:
        """Per-task losses on this rank's share of the batch."""
        return torch.stack([L.distillation_loss(outputs[t], kb.outputs[t], self.spaces[t], norm=self.config.distill,
                                                temperature=self.config.temperature, mask=kb.masks.get(t),
                                                pos_weight=self.pos_weights.get(t, 1.0))
                            for t in self.tasks])

    def _with_masks(self, kb: KnowledgeBatch, idx: np.ndarray) -> KnowledgeBatch:
        """Attach the validity masks of this batch, at each pixel task's output size."""
        if self.masks is None:
            return kb
        by_size: dict[int, Tensor] = {}
        for t, out in kb.outputs.items():
            if out.dim() == 4:
                size = int(out.shape[-1])
                if size not in by_size:
                    by_size[size] = load_masks(self.masks, idx, size, self.prep).to(self.device)
                kb.masks[t] = by_size[size]
        return kb

    def _gan_active(self) -> bool:
        return self.config.gan_start is not None and self.step >= self.config.gan_start and len(self.discriminators) > 0

    def with_gan(self, distill: Tensor, x: Tensor, outputs: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Per-task training losses: distillation, mixed 0.996 / 0.004 with the GAN term once it is active."""
        if not self._gan_active():
            return distill, {}
        a, b = L.GAN_MIX
        gan = {t: L.gan_generator_loss(self.discriminators[t], x, L.as_probabilities(outputs[t], self.spaces[t]))
               for t in self.discriminators}
        mixed = torch.stack([a * distill[i] + b * gan[t] if t in gan else distill[i]
                             for i, t in enumerate(self.tasks)])
        return mixed, {t: float(v.detach()) for t, v in gan.items()}

    def checked_mean(self, losses: Tensor, names: list[str] | None = None) -> Tensor:
        """Detached losses averaged over the ranks (the global batch's), checked to be finite on every rank alike."""
        mean = all_reduce_mean(losses.detach().clone())
        self._check_finite(dict(zip(names or self.tasks, mean)))
        return mean

    def _check_finite(self, values: Mapping[str, Tensor | float]) -> None:
        for name, value in values.items():
            v = float(value.detach()) if isinstance(value, Tensor) else float(value)
            if not math.isfinite(v):
                where = (f"The last good checkpoint is '{self.run.file('checkpoint.pt')}' (step {self.last_checkpoint})"
                         if self.last_checkpoint is not None else
                         f"No checkpoint was written yet (every {self.config.checkpoint_every} steps)")
                raise TrainingDiverged(
                    f"training stopped: the {name} loss is {v} at step {self.step + 1}. {where}. Lower lr= (now "
                    f"{self.config.lr:g}) and start again with overwrite=.", parameter=("lr", "overwrite"))

    def guidance_loss(self, z: Tensor, kb: KnowledgeBatch) -> Tensor:
        """The guidance of the shared representation z by each target teacher's and the auxiliary's representation,
        through its adapter: the mean over the guiding teachers."""
        return L.guidance_loss(z, kb.guides(), self.knowledge.stats.guides(), self.adapters["guidance"],
                               norm=self.config.distill)

    def train_discriminators(self, x: Tensor, kb: KnowledgeBatch, outputs: dict[str, Tensor]) -> None:
        if not self._gan_active():
            return
        loss = sum(L.gan_discriminator_loss(d, x, L.as_probabilities(kb.outputs[t], self.spaces[t]),
                                            L.as_probabilities(outputs[t].detach(), self.spaces[t]))
                   for t, d in self.discriminators.items())
        self.d_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(p.grad for p in self.discriminators.parameters())
        self.d_optimizer.step()

    def balance(self, before: Tensor, after: Tensor) -> None:
        """One active competition step moved the weights ``before`` -> ``after``; freeze them once balanced (with
        ``stop_competition_when_balanced``)."""
        if self.balance_state.observe(before.double().tolist(), after.double().tolist(), step=self.step + 1):
            self.frozen = self.config.stop_competition_when_balanced and self.weighting.freezes_when_balanced

    def train_step(self) -> dict[str, Any]:
        idx = local_share(self._next_indices())
        x = image_batch(self.knowledge.images, idx, self.prep).to(self.device, self.dtype)
        kb = self._with_masks(self.knowledge.batch(idx).to(self.device, self.dtype), idx)
        self.model.train()
        lr = self.optimizers["shared"].param_groups[0]["lr"]  # the rate this step uses
        parts = self.method.step(self, x, kb)
        for s in self.schedulers.values():
            s.step()
        self.step += 1
        entry: dict[str, Any] = {
            "step": self.step,
            "losses": {t: float(v) for t, v in zip(self.tasks, parts["distill"].detach())},
            "weights": {t: float(w) for t, w in zip(self.tasks, self.weighting.weights)},
            "lr": lr,
        }
        if parts["guide"] is not None:
            entry["guide"] = float(parts["guide"].detach())
        if parts["gan"]:
            entry["gan"] = parts["gan"]
        for key in ("grad_norms", "rates"):
            if key in parts["decision"]:
                entry[key] = dict(zip(self.tasks, parts["decision"][key]))
        if self.method.self_coordinated:
            entry["balanced"] = self.balanced_at is not None
            if self.step <= self.config.kd_warmup:  # the step just done was one of distillation only
                entry["phase"] = "kd-warmup"
            elif self.balance_state.drift is not None:
                entry["drift"] = self.balance_state.drift
            if self.balanced_at == self.step:
                entry["balance"] = {"step": self.step, "why": self.balance_state.reason,
                                    "then": "weights frozen; collaboration continues" if self.frozen else
                                    "competition continues (stop_competition_when_balanced = false, or a "
                                    "balancer that moves its weights to the end)"}
        return entry

    def check_shapes(self) -> None:
        """The student's outputs must have the teachers' shapes (one 2-image forward, no state changes)."""
        idx = np.arange(min(2, len(self.knowledge)))
        x = image_batch(self.knowledge.images, idx, self.prep).to(self.device, self.dtype)
        kb = self.knowledge.batch(idx)
        self.model.eval()
        with torch.no_grad():
            z, outputs = self.model(x)
        self.model.train()
        for t in self.tasks:
            if tuple(outputs[t].shape) != tuple(kb.outputs[t].shape):
                raise UserInputError(f"the student's {t} head gives {tuple(outputs[t].shape[1:])} per image, the "
                                     f"teacher {tuple(kb.outputs[t].shape[1:])}; choose the architecture that "
                                     "matches the zoo (compact for the mini zoo, taskonomy for Taskonomy weights).")
        if z is not None:
            guides = [(t.name, kb.representations[t.name]) for t in self.knowledge.targets]
            if self.knowledge.auxiliary is not None:
                guides.append((self.knowledge.auxiliary.name, kb.auxiliary))
            for name, r in guides:
                if tuple(r.shape) != tuple(z.shape):
                    raise UserInputError(f"teacher '{name}' has a {tuple(r.shape[1:])} representation, the "
                                         f"student {tuple(z.shape[1:])}; they must match for the guidance.")
