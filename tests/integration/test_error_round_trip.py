"""Every licet error crosses the wire intact: the license server's problem+json, then the panel's client.

The real app of ``issuer serve`` runs under uvicorn on 127.0.0.1 in this
process, so its activation function can be made to raise each error in turn;
the panel side is the real client (standard-library HTTP), which rebuilds the
error from the answer's ``code``.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from error_catalogue import every_error_class, example, same_error
from servers import free_port
from support import PRODUCT

from issuer.licensing.activations import Activations
from issuer.web.license_server import ServerConfig, create_app
from verifier import LicenseError, request_code
from verifier.client import activate_online

KEY = "7K3Q-M9XW-2D4H-R8TB-6VNC-PJ5F"  # well-formed; the patched activation never looks it up


class Raising:
    """Stands in for Activations.redeem (what the route calls): raises whichever error the test sets."""

    error: LicenseError | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        assert self.error is not None
        raise self.error


@pytest.fixture(scope="module")
def served(home: Path) -> Iterator[tuple[str, Raising]]:
    raising = Raising()
    patch = pytest.MonkeyPatch()
    patch.setattr(Activations, "redeem", lambda self, *a, **k: raising(*a, **k))
    app = create_app(ServerConfig(ledger=str(home / "ledger"), keys=str(home / "keys"), failure_limit=10**6))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the license server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", raising
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        patch.undo()


@pytest.mark.parametrize("cls", every_error_class(), ids=lambda cls: cls.code)
def test_error_round_trips_through_the_server_and_the_client(served: tuple[str, Raising], cls: type[LicenseError]) -> None:
    url, raising = served
    raising.error = original = example(cls)

    # What the server answers: RFC 9457 problem+json with the error's status, code and data.
    body = json.dumps({"request_code": request_code(PRODUCT, KEY, machine_id="machine-alpha")}).encode()
    request = urllib.request.Request(url + "/v1/activations", data=body, headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=30)
    assert answer.value.code == original.http_status
    assert answer.value.headers["Content-Type"] == "application/problem+json"
    problem = json.loads(answer.value.read())
    if original.http_status >= 500:
        # The provider's own faults: the client keeps the code, the detail (which may
        # name files) stays in the server's log under the incident id it is given.
        assert (problem["status"], problem["code"]) == (original.http_status, original.code)
        assert problem["incident"] in problem["detail"] and original.message not in problem["detail"]
        with pytest.raises(LicenseError) as rebuilt:
            activate_online(url, PRODUCT, KEY, machine_id="machine-alpha", timeout=30)
        assert (type(rebuilt.value), rebuilt.value.code) == (cls, original.code)
        return
    assert (problem["status"], problem["code"], problem["detail"]) == (original.http_status, original.code, original.message)
    assert {k: problem[k] for k in original.details()} == original.details()

    # What the panel's client makes of it: the same error again.
    with pytest.raises(LicenseError) as rebuilt:
        activate_online(url, PRODUCT, KEY, machine_id="machine-alpha", timeout=30)
    same_error(rebuilt.value, original)
