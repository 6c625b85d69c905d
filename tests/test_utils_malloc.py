"""skderm._utils.malloc: import skderm keeps large buffers on glibc's heap, unless told not to."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from skderm._utils import malloc

GLIBC = bool(malloc._glibc_version())
ROOT = Path(__file__).resolve().parents[1]

# After `import skderm`, where does a fresh 64 MiB malloc land? glibc's default
# serves it with its own mmap (freed back to the kernel, faulted in again next
# time); with the thresholds raised it comes from the brk heap.
PROBE = """
import ctypes, json
import skderm
from skderm._utils.malloc import malloc_tuning
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
p = libc.malloc(64 << 20)
lo, hi = next(line.split()[0].split("-") for line in open("/proc/self/maps") if "[heap]" in line)
print(json.dumps({"in_heap": int(lo, 16) <= p < int(hi, 16), **malloc_tuning()._asdict()}))
libc.free(p)
"""


def probe(**env):
    import json

    environ = {k: v for k, v in os.environ.items()
               if k not in ("GLIBC_TUNABLES", malloc.OPT_OUT) and not k.startswith("MALLOC_")}
    environ.update(env, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", PROBE], env=environ, capture_output=True,
                         text=True, timeout=120, check=True)
    return json.loads(out.stdout)


@pytest.mark.skipif(not GLIBC, reason="the tuning applies to glibc only")
def test_import_raises_the_thresholds_and_large_buffers_stay_on_the_heap():
    got = probe()
    assert got["applied"] is True
    assert got["mmap_threshold"] == malloc.MMAP_THRESHOLD
    assert got["trim_threshold"] == malloc.TRIM_THRESHOLD
    assert got["in_heap"] is True


@pytest.mark.skipif(not GLIBC, reason="the tuning applies to glibc only")
@pytest.mark.parametrize("env", [{malloc.OPT_OUT: "0"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"},
                                 {"MALLOC_TRIM_THRESHOLD_": "131072"}])
def test_opt_out_and_the_users_own_settings_leave_malloc_alone(env):
    got = probe(**env)
    assert got["applied"] is False
    assert got["in_heap"] is False  # glibc's default: a buffer this large is mmapped


@pytest.fixture
def fresh(monkeypatch):
    """The module as before its first call, with mallopt out of reach."""
    monkeypatch.setattr(malloc, "_STATE", malloc.MallocTuning(False, "not run"))

    def no_libc(*args, **kwargs):
        raise AssertionError("ctypes.CDLL must not be called")

    import ctypes

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    return monkeypatch


@pytest.mark.parametrize("confstr", [None, "musl 1.2", ValueError("unrecognized configuration "
                                                                  "name")])
def test_nothing_is_touched_without_glibc(fresh, confstr):
    def fake(name):
        if isinstance(confstr, Exception):
            raise confstr
        return confstr

    fresh.setattr(os, "confstr", fake)
    got = malloc.tune_malloc(environ={})
    assert got.applied is False and "not glibc" in got.reason
    assert malloc.malloc_tuning() == got


@pytest.mark.parametrize("value", ["0", "false", "OFF", " no "])
def test_opt_out_values(fresh, value):
    got = malloc.tune_malloc(environ={malloc.OPT_OUT: value})
    assert got.applied is False and malloc.OPT_OUT in got.reason


def test_other_tunables_do_not_count_as_a_malloc_choice():
    assert malloc._skip_reason({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"}) is None
    assert malloc._skip_reason({malloc.OPT_OUT: "1"}) is None
