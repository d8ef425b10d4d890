"""Synthetic teacher features with a known task structure, for trying the pipeline before any zoo is at hand.

Not a model of any real network. Each probe "image" i has latent factors: texture t_i (2D cues), geometry g_i
(3D cues), semantics s_i and room layout l_i. Teacher k of task type tau mixes them with type-specific weights
(2D tasks lean on texture, 3D on geometry, ...) through its own random projection and a ReLU, plus noise:

    f_k(i) = relu(W_k [a_tau,t t_i, a_tau,g g_i, a_tau,s s_i, a_tau,l l_i]) + sigma eps_ki,   shape (8, 16, 16)

so the similarity matrix should show the 2D / 3D / semantic / low-dim blocks, which makes it a useful smoke test of
RSA itself. The same seed gives the same features.
"""

from __future__ import annotations

import numpy as np

from rsa_toolkit.validation import check_int
from rsa_toolkit.tasks import list_tasks

__all__ = ["make_synthetic_features"]

_FACTOR_DIMS = {"texture": 24, "geometry": 24, "semantics": 12, "layout": 6}
_MIX = {  # how strongly each task type reads each factor
    "2D": {"texture": 1.0, "geometry": 0.3, "semantics": 0.15, "layout": 0.1},
    "3D": {"texture": 0.3, "geometry": 1.0, "semantics": 0.2, "layout": 0.3},
    "semantic": {"texture": 0.25, "geometry": 0.3, "semantics": 1.0, "layout": 0.1},
    "low-dim geometric": {"texture": 0.1, "geometry": 0.6, "semantics": 0.1, "layout": 1.0},
}


def make_synthetic_features(n_images: int = 200, *, seed: int = 0, shape: tuple[int, ...] = (8, 16, 16),
                            noise: float = 0.5) -> dict[str, np.ndarray]:
    """A dict task name -> float32 features (n_images, *shape) for the 20 Taskonomy tasks."""
    n_images = check_int(n_images, name="n_images", minimum=3)
    rng = np.random.default_rng(seed)
    factors = {k: rng.standard_normal((n_images, d)) for k, d in _FACTOR_DIMS.items()}
    n_out = int(np.prod(shape))
    features = {}
    for task in list_tasks():
        mix = _MIX[task.type]
        # Each task also weighs the factors a little differently, so tasks of one type are alike, not identical.
        latent = np.concatenate(
            [mix[k] * rng.uniform(0.6, 1.4) * factors[k] for k in _FACTOR_DIMS], axis=1)
        w = rng.standard_normal((latent.shape[1], n_out)) / np.sqrt(latent.shape[1])
        f = np.maximum(latent @ w, 0.0) + noise * rng.standard_normal((n_images, n_out))
        features[task.name] = f.reshape(n_images, *shape).astype(np.float32)
    return features
