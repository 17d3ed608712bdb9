"""A real headless Chromium for the console's tests (make test-browser): Debian's chromium
driven by its chromedriver through Selenium, with a fresh profile each time, nothing
fetched from the network (no component updates, no sync), and screenshots kept under
the test run's temporary folder (SCREENSHOTS, printed at the end)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,900")


def start(profile: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    # The console's pages must load without a Content-Security-Policy violation: the
    # browser's own log says (tests read it with console_errors()).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class Browser:
    """One signed-out browser on one service, with the helpers the console tests share."""

    def __init__(self, base_url: str, screenshots: Path) -> None:
        self.base_url = base_url
        self.screenshots = screenshots
        self.profile = Path(tempfile.mkdtemp(prefix="console-browser-"))
        self.driver = start(self.profile)

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def sign_in(self, token: str, here: bool = False) -> None:
        """Sign in through the form (`here`: the one already open, after a redirect)."""
        if not here:
            self.open("/console/login")
        field = self.driver.find_element(By.ID, "token")
        field.send_keys(token)
        field.submit()
        self.wait_for(lambda d: "/console/login" not in d.current_url)

    def wait_for(self, condition, timeout: float = 15):
        """Until `condition` holds. An element htmx replaced between finding it and reading
        it (the polled progress panel) is looked for again, as one not there yet is."""
        ignored = (NoSuchElementException, StaleElementReferenceException)
        return WebDriverWait(self.driver, timeout, ignored_exceptions=ignored).until(condition)

    def wait_for_text(self, text: str, timeout: float = 15) -> None:
        self.wait_for(expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "body"), text), timeout)

    def text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    def shot(self, name: str) -> Path:
        path = self.screenshots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def console_errors(self) -> list[str]:
        """What the browser logged as errors (a CSP violation, a failed script)."""
        return [entry["message"] for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]

    def close(self) -> None:
        self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)
