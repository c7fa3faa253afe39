"""The README's panel examples run as printed: without a token, with one, air-gapped by codes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from clirun import cli, provider_home

ROOT = Path(__file__).resolve().parents[2]


def _panel_examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Panel integration", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def _panel_example() -> str:
    return _panel_examples()[0]


def _for_this_test(code: str, home: Path, tmp_path: Path, provider: str) -> str:
    """Only the places of this test's files (and a machine id: tests never read the hardware)."""
    return (
        code.replace("/usr/share/mypanel/trusted_keys.json", str(home / "keys" / "trusted_keys.json"))
        .replace("/var/lib/mypanel/license.token", str(tmp_path / "license.token"))
        .replace('issuer="Acme Hosting",', f'issuer="{provider}", machine_id="readme-box",')
        .replace('request_code("ispmanager", key)', 'request_code("ispmanager", key, machine_id="readme-box")')
        .replace('product="ispmanager")', 'product="ispmanager", machine_id="readme-box")')
    )


def test_readme_panel_example_reports_a_missing_token_as_missing_then_runs_licensed(tmp_path: Path) -> None:
    home = provider_home(tmp_path, ("--product", "ispmanager", "--feature", "dns", "--limit", "domains=100"))
    lid = json.loads(cli("issuer", "license", "list", "--json", cwd=home).stdout)[0]["license_id"]
    key = json.loads(cli("issuer", "license", "show", lid, "--json", cwd=home).stdout)["activation_key"]
    provider = json.loads((home / "ledger" / "ledger.json").read_text())["provider"]
    code = _for_this_test(_panel_example(), home, tmp_path, provider)
    assert "store=store" in code  # the clock mark and revocation list need the store
    warnings: list[tuple[Any, ...]] = []
    enabled: list[dict[str, Any]] = []

    class Log:
        def warning(self, *args: Any) -> None:
            warnings.append(args)

    def run() -> None:
        exec(code, {"log": Log(), "enable_dns": lambda **kw: enabled.append(kw)})

    run()
    assert [w[1] for w in warnings] == ["missing"] and "no activation token" in warnings[0][2]
    assert enabled == []

    request = cli("verifier", "request", "--product", "ispmanager", "--key", key, "--machine-id", "readme-box", cwd=tmp_path)
    token = cli("issuer", "activate", request.stdout.strip(), cwd=home).stdout.strip()
    (tmp_path / "license.token").write_text(token + "\n")
    run()
    assert len(warnings) == 1 and len(enabled) == 1 and enabled[0]["limit"] == 100


def test_readme_air_gapped_example_activates_and_renews_through_a_quoted_mail(tmp_path: Path) -> None:
    import textwrap

    home = provider_home(tmp_path, ("--product", "ispmanager", "--days", "365"))
    lid = json.loads(cli("issuer", "license", "list", "--json", cwd=home).stdout)[0]["license_id"]
    key = json.loads(cli("issuer", "license", "show", lid, "--json", cwd=home).stdout)["activation_key"]
    provider = json.loads((home / "ledger" / "ledger.json").read_text())["provider"]
    setup, air_gapped = (_for_this_test(c, home, tmp_path, provider) for c in _panel_examples()[:2])
    assert "renewal_code(" in air_gapped and "store.save(" in air_gapped
    asked: list[str] = []

    def ask_the_provider(code: str) -> str:
        command = "renew" if code.startswith("LICET1R.") else "activate"
        asked.append(command)
        token = cli("issuer", command, code, cwd=home).stdout.strip()
        return "\n".join("> " + line for line in textwrap.wrap(token, 76))  # as a mail reply quotes it

    class Log:
        def warning(self, *args: Any) -> None:
            pass

    names: dict[str, Any] = {"log": Log(), "enable_dns": lambda **kw: None, "key": key, "ask_the_provider": ask_the_provider}
    exec(setup, names)
    exec(air_gapped, names)
    assert asked == ["activate", "renew"]
    stored = (tmp_path / "license.token").read_text().strip()
    assert "\n" not in stored and stored.count(".") == 2
    assert names["verifier"].status(names["store"].load()).valid
