import subprocess
import sys


def test_retain_freed_memory_applies_on_glibc():
    """Run in a child process: the setting is process-wide."""
    code = (
        "import platform; from interplab.core.memory import retain_freed_memory; "
        "ok = retain_freed_memory(); "
        "print(ok, platform.libc_ver()[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    applied, libc = out[0] == "True", out[1] if len(out) > 1 else ""
    assert applied == (libc == "glibc")
