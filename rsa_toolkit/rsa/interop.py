"""Optional conversion to and from rsatoolbox (https://github.com/rsagroup/rsatoolbox) ``RDMs`` objects.

rsatoolbox is not a dependency: it is imported inside the functions, and a missing install is a
:class:`~rsa_toolkit.errors.UserInputError` with the fix. Both libraries store an RDM as its upper triangle, row by
row (i < j, the order of ``scipy.spatial.distance.squareform``), so the conversion copies the numbers unchanged and
``from_rsatoolbox(to_rsatoolbox(x, names=n))`` returns ``x`` (condensed) and ``n`` exactly, dtype included.

Note the RDM conventions differ: our ``correlation`` centres each feature over images first (the RSA recipe);
rsatoolbox's ``calc_rdm(..., method='correlation')`` does not, and its ``'euclidean'`` is the squared euclidean
distance divided by the number of features. Converting does not change the numbers, only the container.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rsa_toolkit.validation import check_square_stack
from rsa_toolkit.errors import UserInputError

__all__ = ["to_rsatoolbox", "from_rsatoolbox"]


def _import_rsatoolbox() -> Any:
    try:
        import rsatoolbox.rdm
    except ImportError:
        raise UserInputError("rsatoolbox is not installed; pip install rsatoolbox") from None
    return rsatoolbox


def to_rsatoolbox(rdms: np.ndarray, *, names: Sequence[str] | None = None, method: str = "correlation") -> Any:
    """Our stack of T RDMs, condensed (T, N(N-1)/2) or square (T, N, N), as one ``rsatoolbox.rdm.RDMs`` object.

    ``rdm_descriptors['name']`` holds the teacher ``names`` (default ``"0"``, ``"1"``, ...) and
    ``dissimilarity_measure`` the RDM ``method``. Square matrices are reduced to their upper triangles (the diagonal
    and the lower triangle are dropped, as rsatoolbox does). The values keep their dtype and are copied, so the
    object never aliases ``rdms``.
    """
    rsatoolbox = _import_rsatoolbox()
    check_square_stack(rdms)
    stack = np.asarray(rdms)
    if stack.ndim == 3:
        n = stack.shape[1]
        iu = np.triu_indices(n, 1)
        condensed = np.stack([m[iu] for m in stack])
    else:
        condensed = stack.copy()
    t = condensed.shape[0]
    labels = [str(i) for i in range(t)] if names is None else [str(nm) for nm in names]
    if len(labels) != t:
        raise UserInputError(f"names has {len(labels)} entries but there are {t} RDMs; give one name per RDM.")
    return rsatoolbox.rdm.RDMs(condensed, dissimilarity_measure=method, rdm_descriptors={"name": labels})


def from_rsatoolbox(rdms_obj: Any) -> tuple[np.ndarray, list[str]]:
    """An ``rsatoolbox.rdm.RDMs`` object -> (condensed stack (T, N(N-1)/2), names).

    Names come from ``rdm_descriptors['name']`` when present, else they are the RDM indices as strings.
    """
    rsatoolbox = _import_rsatoolbox()
    if not isinstance(rdms_obj, rsatoolbox.rdm.RDMs):
        raise UserInputError(f"expected an rsatoolbox.rdm.RDMs object, got {type(rdms_obj).__name__}.")
    vectors = np.array(rdms_obj.get_vectors(), copy=True)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    t = vectors.shape[0]
    raw = rdms_obj.rdm_descriptors.get("name")
    names = [str(nm) for nm in raw] if raw is not None else [str(i) for i in range(t)]
    if len(names) != t:
        raise UserInputError(f"rdm_descriptors['name'] has {len(names)} entries but the object holds {t} RDMs.")
    return vectors, names
