"""Teacher zoos: the real Taskonomy networks (visualpriors layout, weights from a local directory) and any PyTorch
model tapped by forward hooks, listed in a zoo file."""

from rsa_toolkit.zoo.teachers import Teacher, hook_features, list_layers, module_teacher, taskonomy_teacher
from rsa_toolkit.zoo.zoo_file import build_zoo, load_zoo_file

__all__ = ["Teacher", "build_zoo", "hook_features", "list_layers", "load_zoo_file", "module_teacher",
           "taskonomy_teacher"]
