import platform
import subprocess
import sys

import pytest

glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not glibc, reason="mallopt tuning is glibc-only")
def test_freed_memory_stays_in_the_process_so_steps_stop_faulting_pages_in():
    # a fresh interpreter: the tuning is process-wide and applied once
    code = """
import resource
import numpy as np
from vla.cpu_runtime import retain_freed_memory

def faults_per_round():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):  # blocks of 8-24 MiB freed in another order than they came, like a step's
        a = np.ones(2 << 20)
        b = np.ones(1 << 20)
        del a
        c = np.ones(3 << 20)
        del b, c
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20

faults_per_round()
default = faults_per_round()
assert retain_freed_memory() and retain_freed_memory()  # applied, idempotent
faults_per_round()
print(default, faults_per_round())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    default, tuned = map(float, out.stdout.split())
    assert default > 500  # glibc's default gave the blocks back: their pages faulted in again
    assert tuned < default / 10


def test_the_tuning_can_be_turned_off():
    code = "from vla.cpu_runtime import retain_freed_memory; print(retain_freed_memory())"
    env = {"VLA_CPU_TUNING": "0", "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "False"


def test_envs_render_in_the_calling_thread_unless_told_otherwise():
    code = "import os, envs; print(os.environ['LP_NUM_THREADS'])"
    run = lambda env: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()
    assert run({}) == "0"
    assert run({"LP_NUM_THREADS": "2"}) == "2"
