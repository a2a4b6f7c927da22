"""Headless Chromium driven through the Chrome DevTools protocol, over one WebSocket.

Just what the browser test needs: open a page, evaluate JavaScript in it (awaiting promises),
and take screenshots. The protocol is documented at https://chromedevtools.github.io/devtools-protocol/
(``Page.navigate``, ``Runtime.evaluate``, ``Page.captureScreenshot``); ``websocket-client`` comes
with ``jupyter_server``.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, Optional

REPO = Path(__file__).resolve().parents[3]
#: Screenshots, the server's, the browser's and the driver JVM's logs: kept for a failure.
OUT = REPO / "build" / "browser"
#: The flags of a throwaway, quiet browser: no sandbox (root in a container), no GPU, nothing
#: fetched or synced in the background, a fresh profile each run.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


class BrowserError(RuntimeError):
    """The browser reported an error, or a page script threw."""


def find_chromium() -> Optional[str]:
    """The Chromium binary on PATH (Debian's ``chromium``), if any."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Chromium:
    """One headless Chromium process and a connection to its first page."""

    def __init__(self, binary: str, profile: Path, log: Path) -> None:
        import websocket

        profile.mkdir(parents=True, exist_ok=True)
        self._log = open(log, "wb")  # noqa: SIM115 - open while the browser runs
        self.proc = subprocess.Popen(
            [
                binary,
                *FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its renderer and helper processes go with it at close()
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BrowserError(f"Chromium did not start; its output is in {log}")
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as reply:
            pages = [t for t in json.load(reply) if t["type"] == "page"]
        # suppress_origin: Chromium refuses DevTools WebSockets with an Origin it did not allow.
        self.ws = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"], suppress_origin=True, timeout=120
        )
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> Dict[str, Any]:
        """Send one protocol command and return its result (events in between are dropped)."""
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply["result"]

    def evaluate(self, script: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.call(
            "Runtime.evaluate", expression=script, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"page script failed: {text}")
        return result["result"].get("value")

    def wait_for(self, script: str, timeout: float, what: str, interval: float = 0.5) -> Any:
        """Evaluate ``script`` until it is truthy; its value, or BrowserError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(script)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(interval)

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def screenshot(self, path: Path) -> Path:
        """Save a PNG of the page (the window's size) to ``path``."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            stop_group(self.proc)
            self._log.close()


def stop_group(proc: subprocess.Popen, grace: float = 20) -> None:
    """Stop a process started with ``start_new_session`` and whatever it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # helpers that outlived it
    proc.wait()
