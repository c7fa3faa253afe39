"""A reference control panel that embeds licet's verifier the way a real panel would.

Standard library only, like the verifier (plus segno, loaded only to draw the
QR codes of the air-gapped path). On start it runs the start-up flow (stored
token → renewal in grace → automatic activation → activation form); while
unlicensed every page shows the activation form; once activated it shows the
license, its state and the days left, with a renewal banner in the grace
window. Servers without a way to the license server use the air-gapped path:
the page shows a request (or renewal) code with its QR code, and a field to
paste the token the provider sends back. Its own web server answers the
license server's automatic-activation callback, so the callback port is the
panel's port.

    python examples/panel/panel.py --product ispmanager --trusted-keys keys/trusted_keys.json \\
        --license-server http://127.0.0.1:8470 --port 8080 --buy-url https://example.com/buy
"""

from __future__ import annotations

import argparse
import html
import http.server
import threading
import urllib.parse
from pathlib import Path
from typing import Any

from verifier import (
    ActivationRequiredError,
    License,
    LicenseError,
    NoLicenseForAddressError,
    Status,
    TokenState,
    TokenStore,
    TrustedKeys,
    Verifier,
    renewal_code,
    request_code,
)
from verifier.client import CHALLENGE_PATH, Challenge, renew_online, startup
from verifier.clock import format_utc, last_day
from verifier.encoding import unfold
from verifier.qr import qr_svg

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; color: #222; }}
 .box {{ border: 1px solid #ccc; border-radius: 8px; padding: 1.5rem; }}
 .message {{ background: #fff4e5; border-left: 4px solid #e67e22; padding: .75rem; margin: 1rem 0; }}
 .ok {{ background: #eafaf1; border-left-color: #27ae60; }}
 input {{ font: 1.1rem monospace; width: 100%; padding: .5rem; box-sizing: border-box; }}
 button {{ margin-top: 1rem; padding: .5rem 1.5rem; font-size: 1rem; }}
 dt {{ font-weight: bold; }}
 .grace {{ background: #fdecea; border-left: 4px solid #c0392b; padding: .75rem; margin: 1rem 0; }}
 .code {{ font: .8rem monospace; word-break: break-all; background: #f4f4f4; padding: .5rem; }}
 textarea {{ font: .8rem monospace; width: 100%; height: 6rem; box-sizing: border-box; }}
</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""


class Panel:
    """The panel's licensing state and actions."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.product = args.product
        self.server_url = args.license_server
        self.buy_url = args.buy_url
        self.port = args.port
        self.machine_id = args.machine_id
        self.store = TokenStore(args.store)
        self.verifier = Verifier(
            args.product,
            TrustedKeys.from_file(args.trusted_keys),
            machine_id=args.machine_id,
            store=self.store,
        )
        # What our web server answers, once, while automatic activation waits for
        # the license server's callback; None at every other time.
        self.challenge: Challenge | None = None
        self.message: str | None = None
        self.request_code: str | None = None  # the air-gapped request on display
        self.lock = threading.Lock()

    def boot(self) -> None:
        """The start-up flow: valid token → run; else automatic activation; else the form."""
        self.challenge = Challenge()
        try:
            lic = startup(
                self.verifier,
                self.store,
                server_url=self.server_url,
                callback_port=self.port if self.server_url else None,
                buy_url=self.buy_url,
                challenge=self.challenge,
                listen=None,  # our own web server answers the callback
            )
            self.message = f"Activated: license {lic.license_id}."
        except ActivationRequiredError as err:
            self.message = explain(err.reason)
        except LicenseError as err:  # a clock set back: the panel stops and says why
            self.message = explain(err)
        finally:
            self.challenge = None  # nothing is answered once the attempt is over

    def status(self) -> Status:
        """Checked on every page (a repeated check costs microseconds)."""
        return self.verifier.status(self.store.load())

    def request(self, key: str) -> None:
        """The air-gapped form: show a request code to copy to the provider."""
        with self.lock:
            try:
                self.request_code = request_code(self.product, key, machine_id=self.machine_id)
                self.message = "Send this request code to your provider; paste the token below."
            except LicenseError as err:
                self.request_code = None
                self.message = explain(err)

    def install(self, token: str) -> None:
        """The paste-token field: verify the token the provider sent, then keep it."""
        token = unfold(token)  # pasted from a mail: folded at 76 columns, maybe "> " quoted
        with self.lock:
            try:
                lic = self.verifier.verify(token)
                self.store.save(token)
                self.request_code = None
                self.message = f"Token installed: license {lic.license_id}."
            except LicenseError as err:
                self.message = explain(err)

    def renew(self) -> None:
        """The banner's Renew button: online renewal."""
        with self.lock:
            if not self.server_url:
                self.message = "No license server is configured; use the renewal code below."
                return
            try:
                lic = renew_online(self.server_url, self.verifier, self.store)
                self.message = f"Renewed until {format_utc(lic.expires_at)}."
            except LicenseError as err:
                self.message = explain(err)

    def activate(self, key: str) -> None:
        """The Activate button: manual online activation with the typed key."""
        with self.lock:
            if not self.server_url:
                self.message = "No license server is configured; use the air-gapped activation."
                return
            try:
                # Same product and machine id as the checks: the key binds to this panel.
                lic = self.verifier.activate(key, server_url=self.server_url, store=self.store)
                self.message = f"Activated: license {lic.license_id}."
            except LicenseError as err:
                self.message = explain(err)


def explain(err: LicenseError | None) -> str:
    """The server's answer in words a customer understands."""
    if err is None:
        return "This panel is not activated yet."
    if isinstance(err, NoLicenseForAddressError):
        return "No license is assigned to this server's address. Enter your activation key."
    return err.message[:1].upper() + err.message[1:] + "."


PASTE_TOKEN = """<form id="install-form" method="post" action="/install">
 <label for="token">Token from your provider</label>
 <textarea id="token" name="token" required></textarea>
 <button id="install" type="submit">Install token</button>
</form>"""


def render_code(code_id: str, code: str) -> str:
    """A code to carry across the air gap: as text, and as an inline SVG QR code."""
    return (
        f'<p class="code" id="{code_id}">{html.escape(code)}</p>'
        f'<div id="{code_id}-qr">{qr_svg(code)}</div>'
    )


def render_form(panel: Panel, status: Status) -> str:
    message = (
        f'<p class="message" id="message">{html.escape(panel.message)}</p>' if panel.message else ""
    )
    state = f'<p>State: <b id="state">{html.escape(str(status.state))}</b></p>'
    buy = f'<p><a id="buy" href="{html.escape(panel.buy_url or "#")}">Buy a license</a></p>'
    airgap = f"""<h2>No internet on this server?</h2>
<form id="request-form" method="post" action="/request">
 <label for="offline-key">Activation key</label>
 <input id="offline-key" name="key" autocomplete="off" required>
 <button id="make-request" type="submit">Show request code</button>
</form>{render_code("request-code", panel.request_code) if panel.request_code else ""}
{PASTE_TOKEN}"""
    return PAGE.format(
        title="Activate this panel",
        body=f"""<div class="box">{message}{state}
<form id="activation-form" method="post" action="/activate">
 <label for="key">Activation key</label>
 <input id="key" name="key" placeholder="XXXX-XXXX-XXXX-XXXX-XXXX-XXXX" autocomplete="off" required>
 <button id="activate" type="submit">Activate</button>
</form>{buy}</div><div class="box" id="airgap">{airgap}</div>""",
    )


def render_grace(panel: Panel, status: Status) -> str:
    """The renewal banner: days left, a Renew button, and the air-gapped renewal path."""
    days = status.days_left
    left = "less than a day" if not days else f"{days} day{'s' if days != 1 else ''}"
    token = panel.store.load() or ""
    code = renewal_code(token, product=panel.product, machine_id=panel.machine_id)
    renew = (
        '<form method="post" action="/renew"><button id="renew" type="submit">Renew now</button></form>'
        if panel.server_url
        else ""
    )
    return f"""<div class="grace" id="grace-banner">Your license lease must be renewed:
<b id="days-left">{left}</b> left. {renew}
<details id="renew-offline"><summary>Renew without internet</summary>
<p>Send this renewal code to your provider and paste the token you get back.</p>
{render_code("renewal-code", code)}{PASTE_TOKEN}</details></div>"""


def render_license(panel: Panel, status: Status, lic: License) -> str:
    message = (
        f'<p class="message ok" id="message">{html.escape(panel.message)}</p>'
        if panel.message
        else ""
    )
    banner = render_grace(panel, status) if status.state == TokenState.GRACE else ""
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in status.notes)
    features = ", ".join(sorted(lic.features)) or "none"
    limits = ", ".join(f"{k}: {v}" for k, v in sorted(lic.limits.items())) or "none"
    license_end = lic.license_expires_at
    return PAGE.format(
        title="Panel",
        body=f"""{message}{banner}<div class="box" id="license"><h2>Licensed</h2><dl>
<dt>State</dt><dd id="state">{html.escape(str(status.state))}</dd>
<dt>Product</dt><dd id="product">{html.escape(lic.product)}</dd>
<dt>License</dt><dd id="license-id">{html.escape(lic.license_id)}</dd>
<dt>Features</dt><dd id="features">{html.escape(features)}</dd>
<dt>Limits</dt><dd id="limits">{html.escape(limits)}</dd>
<dt>Lease until</dt><dd id="expires">{format_utc(lic.expires_at)}</dd>
<dt>Days left</dt><dd id="days">{status.days_left}</dd>
<dt>License valid through</dt><dd id="license-expires">{
            "no end" if license_end is None else last_day(license_end)
        }</dd>
</dl>{f'<ul id="notes">{notes}</ul>' if notes else ""}</div>""",
    )


def make_handler(panel: Panel) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(
            self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8"
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == CHALLENGE_PATH:
                challenge = panel.challenge
                answer = None if challenge is None else challenge.answer(self.path)
                if answer is None:
                    self._send(404, b"no activation in progress", "text/plain")
                else:
                    self._send(200, answer, "text/plain")
                return
            status = panel.status()
            lic = status.license
            page = render_form(panel, status) if lic is None else render_license(panel, status, lic)
            self._send(200, page.encode())

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            actions = {
                "/activate": lambda f: panel.activate(f.get("key", [""])[0]),
                "/request": lambda f: panel.request(f.get("key", [""])[0]),
                "/install": lambda f: panel.install(f.get("token", [""])[0]),
                "/renew": lambda f: panel.renew(),
            }
            action = actions.get(self.path)
            if action is None or length > 16384:
                self._send(400, b"bad request", "text/plain")
                return
            action(urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace")))
            self.send_response(303)  # post/redirect/get: a reload does not re-submit the key
            self.send_header("Location", "/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="licet reference panel")
    parser.add_argument("--product", required=True)
    parser.add_argument("--trusted-keys", required=True, type=Path)
    parser.add_argument("--license-server", help="License server URL (online activation).")
    parser.add_argument("--buy-url", default="https://example.com/buy-a-license")
    parser.add_argument("--store", type=Path, default=Path("panel-license.token"))
    parser.add_argument("--machine-id")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    panel = Panel(args)
    server = http.server.ThreadingHTTPServer((args.host, args.port), make_handler(panel))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    panel.boot()  # after the server listens: it must answer the license server's callback
    print(f"panel on http://{args.host}:{args.port}: {panel.message}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
