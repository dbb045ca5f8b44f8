"""Fixtures for the browser tests: a private JupyterLab server and headless Chromium.

The server runs from this virtual environment on a free loopback port, with its own
temporary Jupyter config, runtime, data and IPython folders, so a developer's own Jupyter
settings, workspaces and running servers never leak into a test. The virtual environment's
share/jupyter stays on the Jupyter path, which is where the ipywidgets lab extension lives.

Chromium is Debian's /usr/bin/chromium, driven through Playwright. The tests never
download a browser: `scripts/install-browser.sh` installs it. Set DPKIT_CHROMIUM to use
another Chromium or Chrome binary.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DPKIT_CHROMIUM", "/usr/bin/chromium")

SERVER_START_TIMEOUT_S = 90
SERVER_STOP_TIMEOUT_S = 20

# Flags that keep Chromium off the network: without the background-networking and
# component-update flags it keeps trying to reach Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-sync",
    "--disable-component-update",
    "--no-first-run",
    "--disable-default-apps",
]
VIEWPORT = {"width": 1280, "height": 1400}

# JupyterLab user settings for the private server, keyed by plugin settings file.
LAB_USER_SETTINGS = {
    # Run-all must never write outputs into the repository's notebooks.
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    # JupyterLab 4.6 defaults to "contentVisibility", which lets the browser skip cells
    # outside the viewport. "none" renders every cell, so the DOM checks see all outputs.
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # No news prompt over the notebook, and no requests to jupyter.org.
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}

collect_ignore = ["fixtures"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "browser: end-to-end test in JupyterLab and headless Chromium "
        "(deselect with -m 'not browser')",
    )


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab server owned by the test session."""

    base_url: str
    token: str
    root_dir: Path
    log_path: Path

    def url(self, path: str, **query: str) -> str:
        """Build an address on the server with the token appended to the query."""
        pairs = [*(f"{key}={value}" for key, value in query.items()), f"token={self.token}"]
        return f"{self.base_url}{path}?{'&'.join(pairs)}"

    def request(self, method: str, path: str, timeout: float = 10) -> bytes:
        """Send a request to the server's REST API and return the response body."""
        request = urllib.request.Request(self.url(path), method=method)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def free_loopback_port() -> int:
    """Return a port that was free on 127.0.0.1 a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_lab_user_settings(config_dir: Path) -> None:
    settings_dir = config_dir / "lab" / "user-settings"
    for relative_path, settings in LAB_USER_SETTINGS.items():
        path = settings_dir / relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))


def server_environment(jupyter_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("config", "runtime", "data", "ipython"):
        (jupyter_home / name).mkdir(parents=True, exist_ok=True)
    env["JUPYTER_CONFIG_DIR"] = str(jupyter_home / "config")
    env["JUPYTER_RUNTIME_DIR"] = str(jupyter_home / "runtime")
    env["JUPYTER_DATA_DIR"] = str(jupyter_home / "data")
    env["IPYTHONDIR"] = str(jupyter_home / "ipython")
    env["DPKIT_PROFILE"] = "fast"
    # ipykernel 7 selects the inline backend only when MPLBACKEND is unset, so a
    # developer's MPLBACKEND=Agg would hide every figure.
    env.pop("MPLBACKEND", None)
    return env


def wait_for_server(process: subprocess.Popen, server: LabServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"JupyterLab exited with code {process.returncode} before it answered "
                f"on {server.base_url}. Server log:\n{server.log_tail()}"
            )
        try:
            server.request("GET", "/api/status", timeout=2)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise TimeoutError(
        f"JupyterLab did not answer on {server.base_url}/api/status within "
        f"{SERVER_START_TIMEOUT_S} s. Server log:\n{server.log_tail()}"
    )


def stop_server(process: subprocess.Popen, server: LabServer) -> None:
    """Stop the server and its kernels: REST shutdown first, then signals to its group.

    jupyter_client starts each kernel in a session of its own, so signals to the
    server's process group do not reach kernels. The REST shutdown and the server's
    SIGTERM handler stop them. After the last resort, SIGKILL, a kernel can outlive
    the server.
    """
    if process.poll() is None:
        try:
            server.request("POST", "/api/shutdown", timeout=5)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            logger.warning("JupyterLab REST shutdown failed: %s", error)
        try:
            process.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            logger.warning("JupyterLab still running after REST shutdown, sending SIGTERM")

    # Signal the whole group even after the server exited, in case a child outlived it.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            logger.warning(
                "JupyterLab (pid %d) still running after %s", process.pid, sig.name
            )


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory) -> Iterator[LabServer]:
    """Start JupyterLab on a free loopback port with the repository as its root folder."""
    jupyter_home = tmp_path_factory.mktemp("jupyter")
    env = server_environment(jupyter_home)
    write_lab_user_settings(jupyter_home / "config")

    port = free_loopback_port()
    server = LabServer(
        base_url=f"http://127.0.0.1:{port}",
        token=secrets.token_hex(24),
        root_dir=REPO_ROOT,
        log_path=jupyter_home / "server.log",
    )
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        # Fail instead of moving to another port that the tests would not know about.
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={server.token}",
        f"--ServerApp.root_dir={REPO_ROOT}",
        # The tests drive the notebook through window.jupyterapp.
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")

    with server.log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_server(process, server)
        yield server
    finally:
        stop_server(process, server)


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory):
    """Launch headless Chromium with a fresh, empty profile."""
    if not os.access(CHROMIUM, os.X_OK):
        message = (
            f"Chromium not found at {CHROMIUM}. Run scripts/install-browser.sh, "
            "or set DPKIT_CHROMIUM to a Chromium binary."
        )
        if os.environ.get("DPKIT_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=tmp_path_factory.mktemp("chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def lab_page(browser_context, lab_server):
    """Open a new browser tab, and close it and shut down its kernels after the test."""
    page = browser_context.new_page()
    try:
        yield page
    finally:
        page.close()
        shutdown_sessions(lab_server)


def shutdown_sessions(server: LabServer) -> None:
    """Delete every notebook session, so no kernel of one test competes with the next."""
    try:
        sessions = json.loads(server.request("GET", "/api/sessions"))
        for session in sessions:
            server.request("DELETE", f"/api/sessions/{session['id']}")
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        logger.warning("Shutting down JupyterLab sessions failed: %s", error)
