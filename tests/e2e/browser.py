"""Headless Chromium driven through chromedriver's W3C WebDriver HTTP API (Debian's
`chromium` and `chromium-driver` packages; no Python driver library needed)."""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C web element identifier
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1440,2200",
]


def executables() -> tuple[str, str] | None:
    """(chromium, chromedriver) when both are installed."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Browser:
    """One chromedriver process and one session; always closed by `with`."""

    def __init__(self, chromium: str, driver: str, timeout: float = 120) -> None:
        self.chromium, self.driver, self.timeout = chromium, driver, timeout
        self.profile = Path(tempfile.mkdtemp(prefix="trueup-chromium-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(timeout=timeout)
        self.process: subprocess.Popen[bytes] | None = None
        self.session = ""

    def __enter__(self) -> Browser:
        self.process = subprocess.Popen(
            [self.driver, f"--port={self.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + self.timeout
        while not self._ready():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("chromedriver did not start")
            time.sleep(0.2)
        options = {"binary": self.chromium, "args": [*CHROMIUM_FLAGS, f"--user-data-dir={self.profile}"]}
        capabilities = {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}
        self.session = self._call("POST", "/session", {"capabilities": capabilities})["sessionId"]
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.session:
                self.http.delete(f"{self.base}/session/{self.session}")
        except httpx.HTTPError:
            pass
        finally:
            self.http.close()
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=30)
            shutil.rmtree(self.profile, ignore_errors=True)

    def _ready(self) -> bool:
        try:
            return bool(self.http.get(f"{self.base}/status", timeout=2).json()["value"]["ready"])
        except (httpx.HTTPError, ValueError, KeyError):
            return False

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, f"{self.base}{path}", json=body)
        value = response.json().get("value")
        if response.status_code >= 400:
            raise RuntimeError(f"webdriver {path}: {value}")
        return value

    def _session(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call(method, f"/session/{self.session}{path}", body)

    def open(self, url: str) -> None:
        self._session("POST", "/url", {"url": url})

    def text(self) -> str:
        return str(self.run("return document.body.innerText"))

    def run(self, script: str) -> Any:
        return self._session("POST", "/execute/sync", {"script": script, "args": []})

    def wait_for_text(self, *needles: str, timeout: float = 120) -> str:
        """Poll the page until every needle shows (bounded); returns the page text."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.text()
            if all(n in text for n in needles):
                return text
            time.sleep(1)
        missing = [n for n in needles if n not in text]
        raise AssertionError(f"not on the page after {timeout:.0f}s: {missing}\n---\n{text[:3000]}")

    def click_text(self, label: str) -> bool:
        """Click the element whose text is `label`; False when there is none."""
        xpath = f"//*[normalize-space(text())={label!r}]"
        found = self._session("POST", "/elements", {"using": "xpath", "value": xpath})
        if not found:
            return False
        self._session("POST", f"/element/{found[0][ELEMENT]}/click", {})
        return True

    def dismiss(self, title: str, button: str, wait: float = 0) -> bool:
        """Close a dialog that may pop up (within `wait` seconds) by clicking `button`."""
        deadline = time.monotonic() + wait
        while True:
            if title in self.text():
                return self.click_text(button)
            if time.monotonic() >= deadline:
                return False
            time.sleep(1)

    def screenshot(self, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(self._session("GET", "/screenshot")))
        return target
