"""The foundation's one mechanism per job (issue 14): one device resolver, one validator family, one "unknown name"
message, library errors that name parameters (the CLI writes its options), text tables and JSON-safe values; and what
importing a package loads at run time (tests/test_architecture.py checks the static import graph and file sizes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rsa_toolkit
from rsa_toolkit.cli.main import build_parser
from rsa_toolkit.console import as_command_line, json_safe, text_table
from rsa_toolkit.devices import resolve_device
from rsa_toolkit.errors import UserInputError, did_you_mean, unknown_name
from rsa_toolkit.validation import check_bool, check_int, check_number

ROOT = Path(__file__).resolve().parents[1]


def _imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    return set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())


def test_images_import_no_zoo_and_rsa_no_networks() -> None:
    modules = _imported_after("import rsa_toolkit.images.probe, rsa_toolkit.images.preprocess")
    assert not {m for m in modules if m.startswith("rsa_toolkit.zoo")}
    modules = _imported_after("import rsa_toolkit.rsa.similarity, rsa_toolkit.rsa.bootstrap, rsa_toolkit.rsa.interop")
    assert not {m for m in modules if m.startswith(("rsa_toolkit.zoo", "torch"))}


def test_the_mini_probe_set_is_found_by_name() -> None:
    code = ("from rsa_toolkit.images.probe import PROBE_SETS; import sys; "
            "print('mini' in PROBE_SETS, PROBE_SETS.names(), 'rsa_toolkit.zoo.mini.embedded' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True ['skimage', 'sklearn', 'mini'] False"  # registered, nothing rendered or loaded


def test_package_names_hold_no_stray_imports() -> None:
    for name in ("annotations", "lazy_exports"):
        assert name not in dir(rsa_toolkit) and name not in rsa_toolkit.__all__


def test_resolve_device() -> None:
    assert resolve_device(None, rsa=True) is None
    assert str(resolve_device("cpu", rsa=True)) == str(resolve_device("cpu")) == "cpu"
    with pytest.raises(UserInputError, match=r"^device='gpu0': .*; expected cpu, cuda, cuda:N or mps\.$") as info:
        resolve_device("gpu0")
    assert info.value.parameter == "device"
    with pytest.raises(UserInputError, match=r"^device 'mps': the RSA math runs on 'cpu' or 'cuda' devices"):
        resolve_device("mps", rsa=True)


@pytest.mark.parametrize(("check", "value", "kwargs", "message"), [
    (check_int, 0, {"minimum": 1}, "n must be an integer >= 1, got 0."),
    (check_int, True, {}, "n must be an integer, got True."),
    (check_int, 2.0, {"minimum": 1, "form": "expected"}, "n: expected an integer >= 1, got 2.0."),
    (check_int, 5, {"minimum": 1, "maximum": 4}, "n must be an integer between 1 and 4, got 5."),
    (check_int, "x", {"minimum": 1, "optional": True}, "n must be an integer >= 1 or None, got 'x'."),
    (check_number, 0, {"above": 0}, "n must be a number > 0, got 0."),
    (check_number, float("nan"), {"finite": True, "optional": True, "form": "expected"},
     "n: expected a finite number or None, got nan."),
    (check_number, 1.0, {"above": 0, "below": 1, "expected": "in (0, 1)"}, "n must be in (0, 1), got 1.0."),
    (check_bool, 1, {}, "n must be True or False, got 1."),
])
def test_validators(check, value, kwargs, message: str) -> None:  # noqa: ANN001
    with pytest.raises(UserInputError) as info:
        check(value, name="n", **kwargs)
    assert str(info.value) == message


def test_validators_pass_valid_values() -> None:
    assert check_int(np.int64(3), name="n", minimum=1) == 3 and check_int(None, name="n", optional=True) is None
    assert check_number(np.float32(0.5), name="x", above=0, below=1) == 0.5
    assert check_bool(np.bool_(True), name="b") is True


def test_unknown_name() -> None:
    assert did_you_mean("spearmn", ["kendall", "spearman"]) == " Did you mean 'spearman'?"
    assert did_you_mean("zzz", ["pearson"]) == ""
    assert unknown_name("Unknown comparison 'spearmn'", "spearmn", ["pearson", "spearman"]) == (
        "Unknown comparison 'spearmn'. Did you mean 'spearman', 'pearson'? Available: pearson, spearman.")
    assert unknown_name("Unknown method 'spearmn'", "spearmn", ["pearson", "spearman"], n=1) == (
        "Unknown method 'spearmn'. Did you mean 'spearman'? Available: pearson, spearman.")
    assert unknown_name("Unknown x 'a'", "a", ["b"], listing="Listed", shown="b (and more)") == (
        "Unknown x 'a'. Listed: b (and more).")


def test_the_cli_writes_parameters_as_options() -> None:
    parser = build_parser()
    args = parser.parse_args(["matrix"])
    cases = {
        ("device='cuda': no CUDA device is available here; use device=cpu.", "device"):
            "--device 'cuda': no CUDA device is available here; use --device cpu.",
        ("scratch '/x' is not a directory (scratch=DIR).", "scratch"): "scratch '/x' is not a directory (--scratch DIR).",
        ("max_memory must be a size, got 'x'.", "max_memory"): "--max-memory must be a size, got 'x'.",
        ("cache (cache_dir= on shared storage).", "cache_dir"): "cache (--cache-dir on shared storage).",
        ("n_jobs must be an integer >= 1, got 0.", None): "n_jobs must be an integer >= 1, got 0.",
        ("nothing=1 here", "nothing"): "nothing=1 here",  # no such option: unchanged
    }
    for (message, parameter), expected in cases.items():
        assert as_command_line(UserInputError(message, parameter=parameter), parser, args) == expected


def test_text_table_and_json_safe() -> None:
    assert text_table(["a", "bb"], [["xyz", "1"], ["q", "22"]], left={0}) == "a    bb\nxyz   1\nq    22"
    assert text_table(["a", "b"], [["1", ""]], left={0, 1}, rstrip=True) == "a  b\n1"
    assert json_safe({"a": [1.0, float("nan"), (float("inf"), "s")], "b": None}) == {"a": [1.0, None, [None, "s"]],
                                                                                     "b": None}


def test_rsa_toolkit_starts_without_torch_or_scipy_stats() -> None:
    # Every command pays its start-up: building the parser must not import torch (about 1 s) or scipy.stats (about
    # 0.7 s), only running a command that needs them (amalgamate's parser: tests/amalgamate/test_choices.py).
    code = ("import sys, rsa_toolkit.cli.main as m; m.build_parser(); "
            "print('torch' in sys.modules, 'scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"
