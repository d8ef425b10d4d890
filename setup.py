"""What pyproject.toml cannot say: the top-level ``data/`` folder (the embedded mini zoo, the transfer truth, the
Taskonomy tables) ships inside the wheel as the package ``rsa_toolkit.data``, so an installed copy works from any
folder without the checkout (found by :func:`rsa_toolkit.package_data.shipped_data_dir`)."""

from pathlib import Path

from setuptools import find_packages, setup

data_packages = ["rsa_toolkit.data"] + [f"rsa_toolkit.data.{d.name}" for d in sorted(Path("data").iterdir()) if d.is_dir()]
setup(
    packages=[*find_packages(include=["rsa_toolkit*", "amalgamate*"]), *data_packages],
    package_dir={name: "data" + name[len("rsa_toolkit.data"):].replace(".", "/") for name in data_packages},
    package_data={name: ["*"] for name in data_packages},
)
