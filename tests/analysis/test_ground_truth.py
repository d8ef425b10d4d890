"""A measured ground truth knows which mini zoo it was measured on, and says so when scored against another."""

from __future__ import annotations

import json
import warnings

import pytest

from rsa_toolkit.analysis.ground_truth import check_truth_zoo, load_ground_truth
from rsa_toolkit.errors import TruthZooWarning
from rsa_toolkit.files import file_sha256


def test_a_truth_measured_on_another_zoo_says_so(tmp_path) -> None:
    manifest = tmp_path / "zoo" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text('{"teachers": {}}\n')
    truth_dir = tmp_path / "truth"
    truth_dir.mkdir()
    (truth_dir / "transfer.csv").write_text(",depth_zbuffer,normal\ndepth_zbuffer,1,0.5\nnormal,0.4,1\n")
    assert load_ground_truth(truth_dir / "transfer.csv").zoo_manifest_sha256 == ""  # no recipe: nothing to check
    (truth_dir / "recipe.json").write_text(json.dumps({"zoo_manifest_sha256": file_sha256(manifest)}))
    truth = load_ground_truth(truth_dir / "transfer.csv")
    assert truth.zoo_manifest_sha256 == file_sha256(manifest)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_truth_zoo(truth, manifest)  # the same zoo: silent
    manifest.write_text('{"teachers": {"depth_zbuffer": {}}}\n')  # the zoo was retrained
    with pytest.warns(TruthZooWarning, match="measured on another mini zoo"):
        check_truth_zoo(truth, manifest)
