"""What visualpriors 0.3.5 released for the Taskonomy networks: each task's decoder (channels, head, tanh), the
checkpoint files by name and digest, and where users obtain them. Facts only, no torch: from
``visualpriors/taskonomy_network.py`` (line numbers refer to that file)."""

from __future__ import annotations

from typing import Literal

from rsa_toolkit.errors import UserInputError, unknown_name
from rsa_toolkit.tasks import try_resolve_task

__all__ = ["DECODER_CHANNELS", "DECODER_HEADS", "NO_TANH_TASKS", "ENCODER_ONLY_TASKS", "VISUALPRIORS_WEIGHT_FILES",
           "VISUALPRIORS_SOURCE", "checkpoint_filename"]


#: Output channels of each task's decoder, from ``CHANNELS_TO_TASKS`` (lines 36-44). ``None``: the source names no
#: decoder for the task. Earlier midlevel-reps revisions disagree for the segmentation tasks (see the docs).
DECODER_CHANNELS: dict[str, int | None] = {
    # 2D
    "autoencoding": 3,
    "colorization": 1,  # listed in CHANNELS_TO_TASKS, but visualpriors ships no colorization decoder checkpoint
    "denoising": 3,
    "edge_texture": 1,
    "inpainting": 3,
    "keypoints2d": 1,
    "segment_unsup2d": 64,  # 64-d pixel embedding (older midlevel-reps revisions said 128)
    # 3D
    "curvature": 2,  # two principal curvatures
    "depth_euclidean": 1,
    "depth_zbuffer": 1,
    "edge_occlusion": 1,
    "keypoints3d": 1,
    "normal": 3,
    "reshading": 1,
    "segment_unsup25d": 64,
    # semantic
    "class_object": 1000,  # ImageNet classes; MLP head
    "class_scene": 63,  # scene classes; MLP head
    "segment_semantic": 17,  # class logits; no tanh (DONT_APPLY_TANH_TASKS, line 58)
    # low-dim geometric: visualpriors ships encoders only and the source does not give the head or its size
    "room_layout": None,
    "vanishing_point": None,
}

#: Decoder head per task: "conv" for PIX_TO_PIX_TASKS (lines 48-54), "mlp" for the classification tasks
#: (``is_decoder_mlp = task not in PIX_TO_PIX_TASKS``, transforms.py line 224), None where no decoder exists.
DECODER_HEADS: dict[str, str | None] = {
    task: (None if n is None else "mlp" if task in ("class_object", "class_scene") else "conv")
    for task, n in DECODER_CHANNELS.items()
}

#: Tasks whose conv decoder ends without tanh (``DONT_APPLY_TANH_TASKS``, line 58).
NO_TANH_TASKS: frozenset[str] = frozenset({"segment_semantic"})

#: Tasks among the 20 for which visualpriors ships an encoder checkpoint but no decoder checkpoint.
ENCODER_ONLY_TASKS: tuple[str, ...] = ("colorization", "room_layout", "vanishing_point")

#: The checkpoint file names of the 20 single-image tasks (``TASKONOMY_PRETRAINED_WEIGHT_FILES``, lines 70-111;
#: the 5 multi-image tasks' encoders are left out). The hex part looks like the file's SHA-256 (torch.hub style).
VISUALPRIORS_WEIGHT_FILES: tuple[str, ...] = (
    "autoencoding_decoder-a4a006b5a8b314b9b0ae815c12cf80e4c5f2e6c703abdf65a64a020d3fef7941.pth",
    "autoencoding_encoder-e35146c09253720e97c0a7f8ee4e896ac931f5faa1449df003d81e6089ac6307.pth",
    "class_object_decoder-3cdb6d9ec5a221ca39352e62412c2ab5ae7a00258a962b9b67fe398566ce6c5d.pth",
    "class_object_encoder-4a4e42dad58066039a0d2f9d128bb32e93a7e4aa52edb2d2a07bcdd1a6536c18.pth",
    "class_scene_decoder-517010623d64eb108ca3225fde2a87e72e3e97137b744aa12deeff2fa4f097dc.pth",
    "class_scene_encoder-ad85764467cddafd98211313ceddebb98adf2a6bee2cedfe0b922a37ae65eaf8.pth",
    "colorization_encoder-5ed817acdd28d13e443d98ad15ebe1c3059a3252396a2dff6a2090f6f86616a5.pth",
    "curvature_decoder-b93aed18d7510ad9502755f05c1ef569c00d1fc9c4620333a764ad0d6d131fd3.pth",
    "curvature_encoder-3767cf5d06d9c6bca859631eb5a3c368d66abeb15542171b94188ffbe47d7571.pth",
    "denoising_decoder-5c4e343e885ac13ed0093b4f357680437b8a81f4d36c0b27b6ac831ba5c9fce6.pth",
    "denoising_encoder-b64cab95af4a2c565066a7e8effaf37d6586c3b9389b47fff9376478d849db38.pth",
    "depth_euclidean_decoder-f8d7d0d2bdaf55fac3bdfc8c2812c599bac84985d55503ec92960a4c8b5db7e8.pth",
    "depth_euclidean_encoder-88f18d41313de7dbc88314a7f0feec3023047303d94d73eb8622dc40334ef149.pth",
    "depth_zbuffer_decoder-4833f06833899a8d81b29c6d7eda8adf69b394a91a8c0389b0d58db523097de9.pth",
    "depth_zbuffer_encoder-cc343a8ed622fd7ee3ce54398be8682bbbbfb5d11fa80e8d03a56a5ae4e11b09.pth",
    "edge_occlusion_decoder-1b74d29a2b5afd9eb1a2cf2179289a31e2757909135615d5ba0a9164eb22505f.pth",
    "edge_occlusion_encoder-5ac3f3e918131f61e01fe95e49f462ae2fc56aa463f8d353ca84cd4e248b9c08.pth",
    "edge_texture_decoder-e241e823d6417a0c9b36b7616aad759380dfd3eb83362124e90f9ed5daa92c73.pth",
    "edge_texture_encoder-be2d686a6a4dfebe968d16146a17176eba37e29f736d5cd9a714317c93718810.pth",
    "inpainting_decoder-5982904d2a3ce470ce993d89572134dd835dd809f5cfd6290334dc0fe8b1277f.pth",
    "inpainting_encoder-bf96fbaaea9268a820a19a1d13dbf6af31798f8983c6d9203c00fab2d236a142.pth",
    "keypoints2d_decoder-0157a2a18c4e1f861c725d8d4cf3701b02e9444f47e22bdd1262c879dd2d0839.pth",
    "keypoints2d_encoder-6b77695acff4c84091c484a7b128a1e28a7e9c36243eda278598f582cf667fe0.pth",
    "keypoints3d_decoder-724ea6f255cbe4c487a984230242ec7c3557fa8234bde2487d69eacc7b9b75af.pth",
    "keypoints3d_encoder-7e3f1ec97b82ae30030b7ea4fec2dc606b71497d8c0335d05f0be3dc909d000d.pth",
    "normal_decoder-8f18bfb30ee733039f05ed4a65b4db6f7cc1f8a4b9adb4806838e2bf88e020ec.pth",
    "normal_encoder-f5e2c7737e4948e3b2a822f584892c342eaabbe66661576ba50db7cdd40561c5.pth",
    "reshading_decoder-5bda58f921a3065992ab0034aa0ed787af97f26ac9e5668746dae49c299606cb.pth",
    "reshading_encoder-de456246e171dc8407fb2951539aa60d75925ae0f1dbb43f110b7768398b36a6.pth",
    "room_layout_encoder-1e1662f43b834261464b1825227a04efba59b50cc8883bee9adc3ddafd4796c1.pth",
    "segment_semantic_decoder-d74c6fcf4e0f2bbdce9afe21f9064453a2ac5c7131226527b1d0748f701d04a0.pth",
    "segment_semantic_encoder-bb3007244520fc89cd111e099744a22b1e5c98cd83ed3f116fbff6376d220127.pth",
    "segment_unsup25d_decoder-64c1553cadf76e7efd59138321dc94d186a27eb2bb21e5e6c2624ae825bd4da1.pth",
    "segment_unsup25d_encoder-7d12d2500c18c003ffc23943214f5dfd74932f0e3d03dde2c3a81ebc406e31a0.pth",
    "segment_unsup2d_decoder-a0f3975a22032f116d36e3f3a49f33ddcd6e798cced3ac0962eef5bdccfc397f.pth",
    "segment_unsup2d_encoder-b679053a920e8bcabf0cd454606098ae85341e054080f2be29473971d4265964.pth",
    "vanishing_point_encoder-afd2ae9b71d46a54efc5231b3e38ebc3e35bfab78cb0a78d9b75863a240b19a8.pth",
)
_WEIGHT_FILE_BY_STEM: dict[str, str] = {f.split("-", 1)[0]: f for f in VISUALPRIORS_WEIGHT_FILES}

#: Where users obtain the files; quoted in every "file not found" message.
VISUALPRIORS_SOURCE = (
    "Fetch them with `rsa-toolkit weights fetch --tasks TASK ... --dest DIR` (downloads from "
    "https://github.com/alexsax/visual-prior/raw/networks/assets/pytorch/<file name> and checks each sha256), or "
    "obtain them yourself from the visualpriors release (PyPI package 'visualpriors', github.com/alexsax/visual-prior; "
    "if you have run visualpriors before, they are already in ~/.cache/torch/hub/checkpoints); apart from that one "
    "command, rsa-toolkit never downloads weights"
)
#: visualpriors' released files by the digest in their names: lets a renamed file be recognised.
_RELEASED_BY_DIGEST: dict[str, str] = {
    name.rsplit("-", 1)[1].removesuffix(".pth"): name.split("-", 1)[0] for name in VISUALPRIORS_WEIGHT_FILES
}


def _check_task(task: str) -> str:
    if task not in DECODER_CHANNELS:  # aliases (rgb2depth, normals, ...) resolve to canonical names
        resolved = try_resolve_task(task) if isinstance(task, str) else None
        if resolved is None:
            raise UserInputError(unknown_name(f"Unknown Taskonomy task '{task}'", task, DECODER_CHANNELS))
        task = resolved.name
    return task


def checkpoint_filename(task: str, part: Literal["encoder", "decoder"]) -> str | None:
    """visualpriors' file name for a task's encoder or decoder checkpoint; None where none was released."""
    if part not in ("encoder", "decoder"):
        raise UserInputError(f"part must be 'encoder' or 'decoder', got {part!r}.")
    return _WEIGHT_FILE_BY_STEM.get(f"{_check_task(task)}_{part}")
