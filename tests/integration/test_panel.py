"""The reference panel: start-up flow, automatic activation, and the activation form in a real browser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
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
    def __init__(self, home: Path, server_url: str | None, machine_id: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        server = ["--license-server", server_url] if server_url else []
        self.proc = subprocess.Popen(
            [sys.executable, str(PANEL), "--product", PRODUCT, "--trusted-keys", str(home / "keys" / "trusted_keys.json"),
             *server, "--port", str(self.port), "--machine-id", machine_id,
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

    driver.find_element(By.ID, "key").send_keys(key)
    press(driver, "activate", result)


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
        assert driver.find_element(By.ID, "license-expires").text == fresh["last_day"]
        assert driver.find_element(By.ID, "state").text == "valid"

        driver.get(panel.url + "/settings")  # any page, once licensed, shows the panel
        assert driver.find_element(By.ID, "license").is_displayed()
        driver.save_screenshot(str(SHOTS / "panel-licensed.png"))
    finally:
        driver.quit()
        panel.stop()


def lease_end(token: str) -> str:
    import base64
    import datetime as dt

    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return dt.datetime.fromtimestamp(claims["exp"], dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def press(driver, button_id: str, result) -> None:  # type: ignore[no-untyped-def]
    """Press a button and wait, up to a deadline, until ``result`` holds on the answer page.

    While the browser swaps the old page for the answer, reading an element can
    fail with "node does not belong to the document": that is a page in
    between, so the wait goes on rather than failing.
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.ID, button_id).click()
    WebDriverWait(driver, 30, poll_frequency=0.1, ignored_exceptions=(WebDriverException,)).until(
        result, message=f"the answer page never showed {result}")


def paste_token(driver, token: str, result) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, "token")
    # send_keys of a 700-character token is slow and flaky; set it as a user's paste would.
    driver.execute_script("arguments[0].value = arguments[1];", field, token)
    press(driver, "install", result)


@needs_browser
def test_air_gapped_activation_in_a_real_browser(provider: Path) -> None:
    from selenium.webdriver.common.by import By

    lic = create(provider, "--feature", "dns", "--days", "365")
    panel = PanelProcess(provider, None, "island-box")  # no license server at all
    driver = browser()
    try:
        driver.get(panel.url + "/")
        assert driver.find_element(By.ID, "state").text == "missing"
        driver.find_element(By.ID, "offline-key").send_keys(lic["activation_key"])
        press(driver, "make-request", shown("request-code"))
        code = driver.find_element(By.ID, "request-code").text.strip()
        assert code.startswith("LICET1.")
        qr = driver.find_element(By.CSS_SELECTOR, "#request-code-qr svg")
        assert qr.is_displayed() and qr.size["width"] > 50
        driver.save_screenshot(str(SHOTS / "panel-airgapped-request.png"))

        token = cli("issuer", "activate", code, cwd=provider).stdout.strip()  # the provider's side
        paste_token(driver, token[:-5], message_with("ignature"))  # a damaged paste is refused and changes nothing
        assert "signature" in driver.find_element(By.ID, "message").text.lower()
        assert not (provider / "island-box.token").exists()
        mailed = "\n".join("> " + line for line in textwrap.wrap(token, 76))  # as a mail reply quotes it
        paste_token(driver, mailed, shown("license-id"))
        assert driver.find_element(By.ID, "license-id").text == lic["license_id"]
        assert driver.find_element(By.ID, "state").text == "valid"
        assert (provider / "island-box.token").read_text().strip() == token  # stored on one line
        assert int(driver.find_element(By.ID, "days").text) in (29, 30)
        assert driver.find_elements(By.ID, "grace-banner") == []
    finally:
        driver.quit()
        panel.stop()


@needs_browser
def test_grace_banner_and_air_gapped_renewal_in_a_real_browser(provider: Path) -> None:
    from selenium.webdriver.common.by import By

    # A one-day lease is in its grace window (at least one day) from the start.
    lic = create(provider, "--lease-days", "1")
    code = cli("verifier", "request", "--product", PRODUCT, "--key", lic["activation_key"],
               "--machine-id", "grace-box", cwd=provider).stdout.strip()
    token = cli("issuer", "activate", code, cwd=provider).stdout.strip()
    (provider / "grace-box.token").write_text(token + "\n")
    panel = PanelProcess(provider, None, "grace-box")
    driver = browser()
    try:
        driver.get(panel.url + "/")
        assert driver.find_element(By.ID, "state").text == "grace"
        banner = driver.find_element(By.ID, "grace-banner")
        assert banner.is_displayed() and "renewed" in banner.text
        assert driver.find_element(By.ID, "days-left").text == "less than a day"
        before = driver.find_element(By.ID, "expires").text
        driver.find_element(By.CSS_SELECTOR, "#renew-offline summary").click()
        renewal = driver.find_element(By.ID, "renewal-code").text.strip()
        assert renewal.startswith("LICET1R.")
        assert driver.find_element(By.CSS_SELECTOR, "#renewal-code-qr svg").is_displayed()
        driver.save_screenshot(str(SHOTS / "panel-grace.png"))

        fresh = cli("issuer", "renew", renewal, cwd=provider).stdout.strip()
        paste_token(driver, fresh, message_with("installed"))
        assert "installed" in driver.find_element(By.ID, "message").text
        shown = driver.find_element(By.ID, "expires").text
        assert shown >= before and shown == lease_end(fresh)  # the renewed lease, same license
        assert driver.find_element(By.ID, "license-id").text == lic["license_id"]
        history = json.loads(cli("issuer", "license", "show", lic["license_id"], "--json", cwd=provider).stdout)["history"]
        assert history[-1]["action"] == "renewed"
    finally:
        driver.quit()
        panel.stop()


@needs_browser
def test_renew_now_in_the_grace_banner_renews_online(provider: Path, server: LicenseServer) -> None:
    from selenium.webdriver.common.by import By

    lic = create(provider, "--lease-days", "1")  # in grace from the start
    code = cli("verifier", "request", "--product", PRODUCT, "--key", lic["activation_key"],
               "--machine-id", "online-grace", cwd=provider).stdout.strip()
    (provider / "online-grace.token").write_text(cli("issuer", "activate", code, cwd=provider).stdout)
    panel = PanelProcess(provider, server.url, "online-grace")
    driver = browser()
    try:
        assert "Activated" in panel.boot_line  # start-up renewed the lease in grace
        driver.get(panel.url + "/")
        assert driver.find_element(By.ID, "grace-banner").is_displayed()
        press(driver, "renew", message_with("Renewed until"))
        assert driver.find_element(By.ID, "message").text.startswith("Renewed until")
        history = json.loads(cli("issuer", "license", "show", lic["license_id"], "--json", cwd=provider).stdout)["history"]
        assert [e["action"] for e in history][-2:] == ["renewed", "renewed"]
    finally:
        driver.quit()
        panel.stop()
