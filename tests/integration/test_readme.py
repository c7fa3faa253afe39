"""The README's panel example runs as printed: first without a token, then with one."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from clirun import cli, provider_home

ROOT = Path(__file__).resolve().parents[2]


def _panel_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Panel integration", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_readme_panel_example_reports_a_missing_token_as_missing_then_runs_licensed(tmp_path: Path) -> None:
    home = provider_home(tmp_path, ("--product", "ispmanager", "--feature", "dns", "--limit", "domains=100"))
    lid = json.loads(cli("issuer", "license", "list", "--json", cwd=home).stdout)[0]["license_id"]
    key = json.loads(cli("issuer", "license", "show", lid, "--json", cwd=home).stdout)["activation_key"]
    provider = json.loads((home / "ledger" / "ledger.json").read_text())["provider"]
    # Only the places of this test's files (and a machine id: tests never read the hardware).
    code = (
        _panel_example()
        .replace("/usr/share/mypanel/trusted_keys.json", str(home / "keys" / "trusted_keys.json"))
        .replace("/var/lib/mypanel/license.token", str(tmp_path / "license.token"))
        .replace('issuer="Acme Hosting")', f'issuer="{provider}", machine_id="readme-box")')
    )
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
