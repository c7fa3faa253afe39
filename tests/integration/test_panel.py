"""The reference panel: start-up flow, automatic activation, and the activation form in a real browser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import cli, provider_home
from servers import LicenseServer, first_line, free_port
from support import PRODUCT, code_for

PANEL = Path(__file__).resolve().parents[2] / "examples" / "panel" / "panel.py"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SHOTS = Path(os.environ.get("LICET_SCREENSHOTS", "/tmp"))


@pytest.fixture
def provider(tmp_path: Path) -> Path:
    return provider_home(tmp_path)


def create(home: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    return json.loads(cli("issuer", "license", "create", "--product", PRODUCT, "--json", *extra, cwd=home).stdout)


class PanelProcess:
    def __init__(self, home: Path, server_url: str, machine_id: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, str(PANEL), "--product", PRODUCT, "--trusted-keys", str(home / "keys" / "trusted_keys.json"),
             "--license-server", server_url, "--port", str(self.port), "--machine-id", machine_id,
             "--store", str(home / f"{machine_id}.token"), "--buy-url", "https://example.com/buy"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.boot_line = first_line(self.proc, deadline=60)  # printed after the start-up flow ran

    def page(self) -> str:
        with urllib.request.urlopen(self.url + "/", timeout=10) as response:
            return response.read().decode()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def server(provider: Path) -> Iterator[LicenseServer]:
    srv = LicenseServer(provider, "--allow-private-callbacks")
    yield srv
    srv.stop()


def test_panel_activates_itself_on_start(provider: Path, server: LicenseServer) -> None:
    lic = create(provider, "--ip", "127.0.0.1", "--feature", "dns")
    panel = PanelProcess(provider, server.url, "auto-box")
    try:
        assert "Activated" in panel.boot_line, panel.boot_line
        page = panel.page()
        assert lic["license_id"] in page and 'id="license"' in page and "dns" in page
    finally:
        panel.stop()
    # A restart runs from the stored token, offline.
    server.stop()
    again = PanelProcess(provider, "http://127.0.0.1:9", "auto-box")
    try:
        assert lic["license_id"] in again.page()
    finally:
        again.stop()


def test_panel_without_a_license_for_its_address_shows_the_form(provider: Path, server: LicenseServer) -> None:
    panel = PanelProcess(provider, server.url, "manual-box")
    try:
        assert "No license is assigned to this server" in panel.boot_line
        page = panel.page()
        assert 'id="activation-form"' in page and 'id="buy"' in page
    finally:
        panel.stop()


def browser():  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


needs_browser = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("CI"),
    reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
)


def submit(driver, key: str, result) -> None:  # type: ignore[no-untyped-def]
    """Type a key, press Activate, and wait, up to a deadline, until ``result`` holds on the answer page.

    ``result`` names the element the test reads next (e.g. the message with
    its text, or the license box): waiting for that, rather than for the old
    page to go away, cannot pass while the answer is still loading.
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.ID, "activate").click()
    WebDriverWait(driver, 30, poll_frequency=0.1).until(result, message=f"the answer page never showed {result}")


def message_with(text: str):  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions

    return expected_conditions.text_to_be_present_in_element((By.ID, "message"), text)


def shown(element_id: str):  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions

    return expected_conditions.visibility_of_element_located((By.ID, element_id))


@needs_browser
def test_activation_form_in_a_real_browser(provider: Path, server: LicenseServer) -> None:
    from selenium.webdriver.common.by import By

    used = create(provider)
    cli("issuer", "activate", code_for(used["activation_key"], "someone-else"), cwd=provider)
    fresh = create(provider, "--feature", "dns", "--days", "365")
    panel = PanelProcess(provider, server.url, "browser-box")
    driver = browser()
    try:
        driver.get(panel.url + "/")
        assert driver.find_element(By.ID, "activation-form").is_displayed()
        assert driver.find_element(By.ID, "buy").get_attribute("href") == "https://example.com/buy"
        assert driver.find_element(By.ID, "activate").text == "Activate"

        submit(driver, used["activation_key"], message_with("Already activated"))
        message = driver.find_element(By.ID, "message").text
        driver.save_screenshot(str(SHOTS / "panel-refused.png"))
        assert "Already activated — ask your provider to regenerate the activation key; possible from" in message
        assert driver.find_element(By.ID, "activation-form").is_displayed()

        submit(driver, fresh["activation_key"].lower().replace("-", " "), shown("license-id"))
        assert driver.find_element(By.ID, "product").text == PRODUCT
        assert driver.find_element(By.ID, "features").text == "dns"
        assert driver.find_element(By.ID, "license-id").text == fresh["license_id"]
        assert driver.find_element(By.ID, "expires").text == fresh["expires_at"][:10]

        driver.get(panel.url + "/settings")  # any page, once licensed, shows the panel
        assert driver.find_element(By.ID, "license").is_displayed()
        driver.save_screenshot(str(SHOTS / "panel-licensed.png"))
    finally:
        driver.quit()
        panel.stop()
