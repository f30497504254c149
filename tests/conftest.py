import os

# headless rendering for every test that builds an env (DESIGN.md: MuJoCo works with EGL here)
os.environ.setdefault("MUJOCO_GL", "egl")

# Load triton (pulled in by lightning -> torch._dynamo) before any test creates a Mesa EGL
# context: triton's bundled LLVM segfaults on import once Mesa's llvmpipe LLVM is loaded in the
# same process (seen on this machine). Production code imports torch/lightning first anyway.
import lightning  # noqa: E402, F401
