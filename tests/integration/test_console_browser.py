"""The provider console in a real chromium against a real `issuer console`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import cli, provider_home
from consoles import PASSWORD, ConsoleServer, add_user
from support import PRODUCT
from test_panel import SHOTS, browser, needs_browser


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = provider_home(tmp_path)
    add_user(folder, "alice")
    return folder


@pytest.fixture
def console(home: Path) -> Iterator[ConsoleServer]:
    server = ConsoleServer(home)
    yield server
    server.stop()


def create(home: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    return json.loads(cli("issuer", "license", "create", "--product", PRODUCT, "--json", *extra, cwd=home).stdout)


def show(home: Path, license_id: str) -> dict:  # type: ignore[type-arg]
    return json.loads(cli("issuer", "license", "show", license_id, "--json", cwd=home).stdout)


def click_and_wait(driver, target, expect: str) -> None:  # type: ignore[no-untyped-def]
    """Click ``target`` (an element or its id), then wait, up to a deadline, for the next page.

    The old page is marked with a script variable: the wait ends only once a
    new document without the mark has loaded and shows ``expect``, the element
    the test reads next.
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("window.licetOldPage = true;")
    (driver.find_element(By.ID, target) if isinstance(target, str) else target).click()

    def arrived(d) -> bool:  # type: ignore[no-untyped-def]
        try:
            fresh = d.execute_script("return window.licetOldPage === undefined && document.readyState === 'complete'")
            return bool(fresh and d.find_element(By.ID, expect).is_displayed())
        except WebDriverException:  # between two documents
            return False

    WebDriverWait(driver, 30, poll_frequency=0.1).until(arrived, message=f"no {expect} after clicking {target}")


@needs_browser
def test_console_in_a_real_browser(home: Path, console: ConsoleServer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    for i in range(3):
        create(home, "--customer", f"Other Customer {i}")
    target = create(home, "--customer", "Searchable Hosting Ltd", "--ip", "203.0.113.50", "--days", "365",
                    "--feature", "dns", "--feature", "mail", "--limit", "domains=25")
    cli("issuer", "activate", "-", cwd=home, input=_request_code(target["activation_key"]))
    lid = target["license_id"]

    driver = browser()
    try:
        driver.set_window_size(1280, 900)
        driver.get(console.url + "/")
        assert driver.current_url.endswith("/login")
        driver.find_element(By.ID, "user").send_keys("alice")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        click_and_wait(driver, "login", "licenses")
        assert driver.find_element(By.ID, "licenses").is_displayed()
        assert len(driver.find_elements(By.CLASS_NAME, "license-link")) == 4

        driver.find_element(By.ID, "q").send_keys("searchable")
        click_and_wait(driver, "search", "licenses")
        links = driver.find_elements(By.CLASS_NAME, "license-link")
        assert [link.text for link in links] == [lid]
        click_and_wait(driver, links[0], "activation-key")

        assert driver.find_element(By.ID, "license-id").text == lid
        key = driver.find_element(By.ID, "activation-key").text
        assert key == show(home, lid)["activation_key"] == target["activation_key"]
        assert driver.find_element(By.ID, "activated-hostname").text == "browser-server"
        assert driver.find_element(By.ID, "customer").get_attribute("value") == "Searchable Hosting Ltd"
        # The Copy button: what it put on the clipboard is the key.
        driver.execute_cdp_cmd("Browser.grantPermissions", {
            "origin": console.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
        copy = driver.find_element(By.ID, "copy-key")
        assert copy.is_displayed()
        copy.click()
        WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "copy-key").text == "Copied")
        assert copy.get_attribute("data-copied") == key
        clipboard = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "navigator.clipboard.readText().then(done, (e) => done('error: ' + e));")
        assert clipboard == key
        shots = Path(os.environ.get("LICET_CONSOLE_SCREENSHOTS", SHOTS))
        driver.save_screenshot(str(shots / "console.png"))

        # Regenerate, with confirmation; afterwards the button is disabled and says from when.
        assert driver.find_element(By.ID, "regenerate").is_enabled()
        click_and_wait(driver, "regenerate", "confirm")
        assert "Regenerate the activation key?" in driver.find_element(By.TAG_NAME, "h1").text
        click_and_wait(driver, "confirm", "notice")
        assert "new activation key was issued" in driver.find_element(By.ID, "notice").text
        new_key = driver.find_element(By.ID, "activation-key").text
        assert new_key != key and new_key == show(home, lid)["activation_key"]
        assert driver.find_element(By.ID, "generation").text == "2"
        button = driver.find_element(By.ID, "regenerate")
        allowed = show(home, lid)["next_regeneration"]
        assert not button.is_enabled() and button.text == f"Regenerate key (possible from {allowed})"
        assert driver.find_element(By.ID, "next-regeneration").text == f"possible from {allowed}"
        assert "Not activated" in driver.find_element(By.ID, "activation").text

        # Save an edit, then revoke with confirmation.
        customer = driver.find_element(By.ID, "customer")
        customer.clear()
        customer.send_keys("Searchable Hosting AG")
        click_and_wait(driver, "save", "notice")
        assert driver.find_element(By.ID, "notice").text == "Changes saved."
        click_and_wait(driver, "revoke", "confirm")
        click_and_wait(driver, "confirm", "notice")
        assert driver.find_element(By.ID, "status").text == "revoked"
        history = driver.find_element(By.ID, "history").text
        assert "console:alice" in history and "Searchable Hosting AG" in history

        # Readable on a phone: nothing wider than the screen except the scrolling tables.
        driver.set_window_size(390, 844)
        driver.get(console.url + f"/licenses/{lid}")
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        driver.save_screenshot(str(shots / "console-phone.png"))
        driver.set_window_size(1280, 900)

        click_and_wait(driver, "logout", "login-form")
        assert driver.current_url.endswith("/login")
        driver.get(console.url + "/licenses")
        assert driver.current_url.endswith("/login")
    finally:
        driver.quit()

    stored = show(home, lid)
    assert stored["status"] == "revoked" and stored["customer"] == "Searchable Hosting AG"
    actors = [(e["action"], e["actor"]) for e in stored["history"]]
    assert ("regenerated", "console:alice") in actors and ("revoked", "console:alice") in actors


def _request_code(key: str) -> str:
    from verifier import request_code

    return request_code(PRODUCT, key, machine_id="machine-browser", hostname="browser-server")


@needs_browser
def test_the_create_form_and_search_in_a_real_browser(home: Path, console: ConsoleServer) -> None:
    """Bad fields are each marked and named; Product is a choice; a key typed without dashes finds its license;
    a revoked license offers no Copy button for its dead key."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    first = create(home, "--customer", "First Ltd")
    driver = browser()
    try:
        driver.set_window_size(1280, 900)
        driver.get(console.url + "/login")
        driver.find_element(By.ID, "user").send_keys("alice")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        click_and_wait(driver, "login", "licenses")

        driver.get(console.url + "/licenses/new")
        product = Select(driver.find_element(By.ID, "product"))
        assert [o.get_attribute("value") for o in product.options] == [PRODUCT, "+new"]
        assert product.first_selected_option.get_attribute("value") == PRODUCT
        assert "(30)" in driver.find_element(By.CSS_SELECTOR, "label[for=lease_days]").text
        Select(driver.find_element(By.ID, "machine_ids")).select_by_value("refuse")
        driver.find_element(By.ID, "days").send_keys("soon")
        driver.find_element(By.ID, "ip").send_keys("nope")
        driver.find_element(By.ID, "customer").send_keys("Browser Co")
        click_and_wait(driver, "create", "message")
        assert driver.find_element(By.ID, "message").text == "2 fields need a fix: “Server IP”, “Valid for days”"
        for field in ("days", "ip"):
            box = driver.find_element(By.ID, field)
            assert box.get_attribute("aria-invalid") == "true"
            assert driver.find_element(By.ID, box.get_attribute("aria-describedby")).is_displayed()
        assert driver.find_element(By.ID, "customer").get_attribute("aria-invalid") is None
        assert driver.find_element(By.ID, "customer").get_attribute("value") == "Browser Co"
        for field in ("days", "ip"):
            driver.find_element(By.ID, field).clear()
        driver.find_element(By.ID, "days").send_keys("30")
        click_and_wait(driver, "create", "activation-key")
        made = driver.find_element(By.ID, "license-id").text
        assert show(home, made)["accept_machine_id"] is False and show(home, made)["customer"] == "Browser Co"

        key = show(home, first["license_id"])["activation_key"]
        driver.get(console.url + "/licenses")
        driver.find_element(By.ID, "q").send_keys(key.replace("-", "").lower())
        click_and_wait(driver, "search", "licenses")
        links = driver.find_elements(By.CLASS_NAME, "license-link")
        assert [link.text for link in links] == [first["license_id"]]

        cli("issuer", "license", "revoke", first["license_id"], "--yes", cwd=home)
        click_and_wait(driver, links[0], "activation-key")
        assert driver.find_elements(By.ID, "copy-key") == [] and driver.find_elements(By.ID, "next-regeneration") == []
        assert "revoked" in driver.find_element(By.ID, "key-dead").text
    finally:
        driver.quit()
