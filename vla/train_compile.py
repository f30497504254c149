"""``torch.compile`` for training steps only, shared by the parts that offer it (the LM's decoder
body: ``optim.compile``; the observation encoder around the image encoder:
``optim.compile_vision``), and the check that
``torch.compile`` can build kernels here at all (also used by ``VLAPolicy(compile=...)``).

The compiled wrapper is kept in the owner's ``__dict__`` under ``key``, not as a submodule, so
weights and state-dict names are unchanged; it runs only in train mode with gradients, so
validation, evaluation and batch-1 control stay eager and never wait for a compile of their
shapes.
"""

import shutil
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

# torch.compile's modes: "reduce-overhead" adds CUDA graphs (GPU), "max-autotune" also times
# candidate kernels when compiling (on a CPU: inductor's C++ GEMM templates beside oneDNN's)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def check_compile_mode(mode: str, option: str) -> None:
    """Refuse a ``torch.compile`` mode it does not know, naming ``option`` and the modes."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"{option}={mode!r}: choose one of {list(COMPILE_MODES)}")


def compile_available(option: str) -> bool:
    """Whether ``torch.compile`` can build kernels here (inductor compiles C++ on CPUs); when it
    cannot, says so, naming ``option`` (what asked for it), and the caller runs eager."""
    if torch.cuda.is_available():
        return True
    from torch._inductor import config as inductor_config

    names = inductor_config.cpp.cxx  # (None, $CXX or g++): the compilers inductor tries
    names = names if isinstance(names, (list, tuple)) else (names,)
    if any(shutil.which(n) for n in names if n):
        return True
    print(
        f"{option} needs a C++ compiler for torch.compile on CPU ({names[-1]} not found: "
        "apt-get install g++, or set CXX); running eager instead, same results"
    )
    return False


def compile_for_training(
    owner: nn.Module, key: str, module: nn.Module | Callable[..., Any], **options: Any
) -> None:
    """Keep ``torch.compile(module, **options)`` (a module or one of ``owner``'s methods) on
    ``owner`` for its training forwards."""
    owner.__dict__[key] = torch.compile(module, **options)


def for_this_forward(owner: nn.Module, key: str, eager: nn.Module | Callable[..., Any]) -> Any:
    """The compiled wrapper in a training forward with gradients, else ``eager``."""
    compiled = owner.__dict__.get(key)
    if compiled is not None and owner.training and torch.is_grad_enabled():
        return compiled
    return eager
