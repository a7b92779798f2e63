"""Headless Debian Chromium under selenium, for the chat page's tests.

The browser is the system's (``make system-deps`` installs ``chromium`` and
``chromium-driver``); nothing is downloaded. Without it the tests skip with
the reason. Every wait is a bounded poll on the page (``WebDriverWait``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 60.0
"""Seconds any one wait may take (first tokens on two loaded cores)."""


def start_browser() -> WebDriver:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("chromium/chromium-driver are not installed (run `make system-deps`)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1200,900")
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


@dataclass
class Page:
    """One test's view of the page: waits, lookups and numbered screenshots."""

    driver: WebDriver
    shots: Path
    taken: list[Path] = field(default_factory=list)

    def open(self, url: str) -> None:
        self.driver.get(url)
        self.wait_ready()

    def wait_ready(self) -> None:
        self.until(lambda d: d.execute_script("return document.body.dataset.ready") == "true")

    def until(self, condition: Callable[[WebDriver], Any], timeout: float = WAIT) -> Any:
        return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(condition)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element("css selector", css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements("css selector", css)

    def visible(self, css: str) -> bool:
        return any(e.is_displayed() for e in self.all(css))

    def shot(self, name: str) -> None:
        path = self.shots / f"{len(self.taken):02d}-{name}.png"
        assert self.driver.save_screenshot(str(path))
        self.taken.append(path)
