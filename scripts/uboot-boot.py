#!/usr/bin/env python3
"""Boot the image through U-Boot's console, as a person would.

  uboot-boot.py ADDR TIMEOUT QEMU ARGS...

Starts QEMU (whose -bios is U-Boot and whose -device loader has put the image
at ADDR), stops autoboot with a key press when U-Boot offers it, then types
`setenv bootargs hv.exit=semihosting; booti ADDR - ${fdtcontroladdr}` (U-Boot
writes bootargs into the DTB's /chosen, which is how the image learns it may
exit through semihosting). Copies the console to stdout and exits with
QEMU's status, or 124 when TIMEOUT seconds pass first.
"""
import os
import select
import subprocess
import sys
import time

address, timeout, command = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
deadline = time.monotonic() + timeout
qemu = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
seen = b""


def read_until(marker):
    """Copy console output until `marker` appears (True) or QEMU ends or
    time runs out (False)."""
    global seen
    while time.monotonic() < deadline:
        if marker is not None and marker in seen:
            return True
        ready, _, _ = select.select([qemu.stdout], [], [], 0.1)
        if ready:
            data = os.read(qemu.stdout.fileno(), 4096)
            if not data:
                return False
            seen += data
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
    return False


def type_line(text):
    qemu.stdin.write(text.encode() + b"\n")
    qemu.stdin.flush()


if read_until(b"Hit any key to stop autoboot"):
    type_line("")
    if read_until(b"=> "):
        seen = b""
        type_line("setenv bootargs hv.exit=semihosting; booti %s - ${fdtcontroladdr}" % address)
read_until(None)
try:
    status = qemu.wait(timeout=max(0.0, deadline - time.monotonic()))
except subprocess.TimeoutExpired:
    qemu.kill()
    qemu.wait()
    status = 124
sys.exit(status)
