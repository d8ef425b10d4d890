"""The recipe of a transfer-truth run (:mod:`rsa_toolkit.lab.transfer`) and its ``--budget`` presets: plain data, so
the CLI can list the presets without importing torch."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from rsa_toolkit.errors import UserInputError
from rsa_toolkit.validation import check_int

__all__ = ["TransferConfig", "BUDGETS"]


@dataclass(frozen=True)
class TransferConfig:
    """The recipe of one transfer run. ``seeds`` and ``splits`` are how many; the rest fixes each readout."""

    train_frames: int = 2000  # per training split
    val_frames: int = 500
    test_frames: int = 500
    seeds: int = 3
    splits: int = 2
    max_steps: int = 3000
    eval_every: int = 100
    patience: int = 5
    warmup_steps: int = 50
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    width: int = 64  # channels of the first transfer convolution
    decoder_widths: tuple[int, int, int] = (64, 48, 32)  # the teachers' PixelDecoder
    head_hidden: int = 128  # the teachers' VectorHead
    seed: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "decoder_widths":
                object.__setattr__(self, f.name, tuple(check_int(w, name="decoder_widths[i]", minimum=1) for w in value))
            elif f.name in ("lr", "weight_decay"):
                if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0
                        and (value > 0 or f.name == "weight_decay")):
                    raise UserInputError(f"{f.name} must be a finite number > 0 (>= 0 for weight_decay), got "
                                         f"{value!r}.")
            else:
                check_int(value, name=f.name, minimum=0 if f.name in ("warmup_steps", "seed") else 1)


# Presets of --budget. "full" is the evidence-grade recipe (DESIGN §7: trained to convergence with early stopping on
# val, replicated over seeds and splits): the teachers' decoder widths, up to 3,000 steps; far beyond two hours on two
# cores (docs/mini_taskonomy.md gives the estimate). "2h" is the same protocol shrunk to fit 22 x 20 x 3 x 2 = 2,640
# readouts into about two hours on 2 idle CPU cores with --jobs 2: a quarter-width decoder, 1,000 frames per split,
# at most 160 steps of 16. That time is *planned*, extrapolated from 48 timed readouts; and most of its readouts stop
# at the step cap, not at convergence (recipe.json counts them). docs/mini_taskonomy.md, "Transfer truth".
BUDGETS: dict[str, TransferConfig] = {
    "full": TransferConfig(),
    "2h": TransferConfig(train_frames=1000, val_frames=100, test_frames=250, max_steps=160, eval_every=32,
                         patience=2, warmup_steps=10, batch_size=16, lr=2e-3, width=16, decoder_widths=(16, 12, 8),
                         head_hidden=64),
}
