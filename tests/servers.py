"""What the tests that start servers on loopback share: a free port, waiting for a Jupyter server, and the
Chromium (Debian's, `make browser`) that drives JupyterLab and formgrader, with its launch flags."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# No sandbox of its own (root, containers), no GPU, nothing fetched that the tests did not ask for
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Local requests never go through a proxy (urlopen's shared opener keeps the proxies it first saw).
LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jupyter_address(server: subprocess.Popen, log_path: Path, token: str, what: str) -> str:
    """The address a Jupyter server started with ``token`` serves on, once it answers (Jupyter moves to the
    next port when the one asked for was taken meanwhile: the one in its log); fails the test after two
    minutes."""
    base = None
    for _ in range(240):
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", log_path.read_text())
        if found:
            base = f"http://127.0.0.1:{found.group(1)}"
            try:
                LOCAL.open(f"{base}/api/status?token={token}", timeout=5)
                return base
            except OSError:
                pass
        time.sleep(0.5)
    server.kill()
    pytest.fail(f"{what} did not answer (found {base}): {log_path.read_text()[-2000:]}")
