import os

# headless rendering for every test that builds an env (DESIGN.md: MuJoCo works with EGL here)
os.environ.setdefault("MUJOCO_GL", "egl")
