"""State-dict tables of the Taskonomy networks (keys, shapes, kinds), and the generated part of
docs/taskonomy_architecture.md."""

from __future__ import annotations

from collections.abc import Iterable

import torch.nn as nn

from rsa_toolkit.zoo.taskonomy.decoder import build_decoder
from rsa_toolkit.zoo.taskonomy.encoder import TaskonomyEncoder

__all__ = ["expected_state_dict_shapes", "param_table", "param_table_markdown", "architecture_markdown"]


def expected_state_dict_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    """Every state-dict key (parameters and buffers, in order) with its shape."""
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def param_table(module: nn.Module) -> list[dict[str, object]]:
    """One row per state-dict entry: key, shape, kind ("parameter"/"buffer"), numel, dtype."""
    parameters = {name for name, _ in module.named_parameters()}
    return [{"key": key, "shape": tuple(value.shape), "kind": "parameter" if key in parameters else "buffer",
             "numel": value.numel(), "dtype": str(value.dtype).removeprefix("torch.")}
            for key, value in module.state_dict().items()]


def _shape_text(shape: Iterable[int]) -> str:
    shape = tuple(shape)
    return "()" if not shape else "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def param_table_markdown(module: nn.Module) -> str:
    """A markdown table of :func:`param_table`, preceded by a one-line count summary."""
    rows = param_table(module)
    n_param = sum(r["kind"] == "parameter" for r in rows)
    numel = sum(int(r["numel"]) for r in rows if r["kind"] == "parameter")  # type: ignore[arg-type]
    nbt = sum(str(r["key"]).endswith("num_batches_tracked") for r in rows)
    lines = [f"{len(rows)} keys: {n_param} parameters ({numel:,} values), {len(rows) - n_param} buffers "
             f"(of which {nbt} `num_batches_tracked`).", "",
             "| # | key | shape | kind |", "|---:|---|---|---|"]
    lines += [f"| {i} | `{r['key']}` | {_shape_text(r['shape'])} | {r['kind']} |"  # type: ignore[arg-type]
              for i, r in enumerate(rows)]
    return "\n".join(lines)


def _summary_markdown(module: nn.Module) -> str:
    groups: dict[str, list[int]] = {}
    for row in param_table(module):
        top = str(row["key"]).split(".", 1)[0]
        count = groups.setdefault(top, [0, 0])
        count[0] += 1
        count[1] += int(row["numel"]) if row["kind"] == "parameter" else 0  # type: ignore[arg-type]
    lines = ["| module | keys | parameter values |", "|---|---:|---:|"]
    lines += [f"| `{name}` | {k} | {n:,} |" for name, (k, n) in groups.items()]
    lines.append(f"| **total** | {sum(k for k, _ in groups.values())} | {sum(n for _, n in groups.values()):,} |")
    return "\n".join(lines)


def architecture_markdown() -> str:
    """The generated part of docs/taskonomy_architecture.md: summaries and full key/shape tables."""
    encoder, conv_decoder, mlp_decoder = TaskonomyEncoder(), build_decoder("normal"), build_decoder("class_object")
    parts = [
        "### Encoder (`TaskonomyEncoder`, every task)", "", _summary_markdown(encoder), "",
        "### Conv decoder (`TaskonomyDecoder(3)`, shown for normal)", "",
        "Only `decoder_output.0.*` depends on the task: (C, 16, 3, 3) and (C,), C from the channel table.", "",
        _summary_markdown(conv_decoder), "",
        "### MLP decoder (`TaskonomyDecoder(1000, head=\"mlp\")`, shown for class_object)", "",
        "Only `fc2.*` depends on the task: (C, 2048) and (C,); C = 1000 (class_object) or 63 (class_scene).", "",
        _summary_markdown(mlp_decoder), "",
        "### Full table: encoder", "", param_table_markdown(encoder), "",
        "### Full table: conv decoder (normal, C = 3)", "", param_table_markdown(conv_decoder), "",
        "### Full table: MLP decoder (class_object, C = 1000)", "", param_table_markdown(mlp_decoder),
    ]
    return "\n".join(parts) + "\n"
