"""Webhooks against a real receiver on 127.0.0.1 that verifies every delivery with
``standardwebhooks``, on both ledger backends: the outbox commits with the change, deliveries keep
each endpoint's order, retries keep the webhook-id, 3 days of failure pause the endpoint."""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import FakeClock, make_issuer, request_for
from webhook_receiver import Receiver

from issuer.licensing.deliverer import Deliverer
from verifier.clock import utc_now
from verifier.errors import BadInputError, ProductMismatchError, WebhookNotFoundError


@pytest.fixture(params=["folder", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ledger_at(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str | None:
    if backend == "folder":
        return None
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _setup(tmp_path: Path, ledger_at: str | None, receiver: Receiver, *, start: dt.datetime | None = None, **add: Any) -> tuple[Any, FakeClock, str]:
    clock = FakeClock(start or utc_now())
    iss = make_issuer(tmp_path, clock, ledger_at)
    endpoint, secret = iss.webhooks.add(receiver.url, allow_private=True, **add)
    receiver.secrets.append(secret)
    return iss, clock, endpoint.endpoint_id


def _once(iss: Any, clock: FakeClock, **kw: Any) -> int:
    return Deliverer(iss.ledger, clock=clock, rng=random.Random(7), **kw).run_once()


def test_each_event_type_arrives_once_with_its_body(tmp_path: Path, ledger_at: str | None, receiver: Receiver) -> None:
    iss, clock, wh = _setup(tmp_path, ledger_at, receiver, start=utc_now() - dt.timedelta(days=40))
    lic = iss.create_license(product="ispmanager", days=365)
    iss.redeem(request_for(lic.activation_key, "s1", clock=clock), method="online")
    iss.update_license(lic.license_id, customer="ACME")
    clock.now = utc_now() - dt.timedelta(seconds=5)
    iss.regenerate(lic.license_id)
    iss.revoke(lic.license_id)
    iss.webhooks.test(wh)
    clock.now = utc_now()
    _once(iss, clock)
    types = [g["type"] for g in receiver.got]
    assert types == ["license.created", "license.activated", "license.updated", "license.regenerated", "license.revoked", "webhook.test"]
    assert len(set(receiver.ids())) == len(types)  # each once
    feed = {e.event.action: e for e in iss.events(limit=100).items if e.license_id}
    for got in receiver.got[:-1]:
        event = got["data"]["event"]
        assert event == feed[event["action"]].to_dict()  # exactly as in /v1/admin/events
        assert got["data"]["license"]["license_id"] == lic.license_id
        assert got["timestamp"].endswith("Z")
    raw = json.dumps(receiver.got)
    assert lic.activation_key not in raw and "activation_key" not in raw  # never sent
    assert receiver.got[-1]["data"] == {"endpoint_id": wh, "message": "a test event from licet"}
    assert _once(iss, clock) == 0  # nothing twice


def test_a_reactivation_by_the_same_server_that_changes_nothing_is_not_an_event(tmp_path: Path, ledger_at: str | None, receiver: Receiver) -> None:
    iss, clock, _ = _setup(tmp_path, ledger_at, receiver)
    lic = iss.create_license(product="ispmanager", days=365)
    iss.redeem(request_for(lic.activation_key, "s1", clock=clock), method="online")
    iss.redeem(request_for(lic.activation_key, "s1", clock=clock), method="online")  # same server again
    _once(iss, clock)
    assert [g["type"] for g in receiver.got] == ["license.created", "license.activated"]


def test_a_renewal_is_a_license_renewed_event(tmp_path: Path, ledger_at: str | None, receiver: Receiver) -> None:
    from support import renewal_for

    iss, clock, _ = _setup(tmp_path, ledger_at, receiver, events=["license.renewed"])
    lic = iss.create_license(product="ispmanager", days=365)
    token = iss.activate(request_code_for(lic.activation_key, "s1", clock))
    iss.renew(renewal_for(token, "s1", clock=clock))
    _once(iss, clock)
    assert [g["type"] for g in receiver.got] == ["license.renewed"]  # the filter let only it through
    assert receiver.got[0]["data"]["event"]["action"] == "renewed"


def request_code_for(key: str, server: str, clock: FakeClock) -> str:
    from verifier import request_code

    return str(request_code("ispmanager", key, machine_id=f"machine-{server}", hostname=server, clock=clock))


def test_an_uncommitted_change_is_never_sent(tmp_path: Path, ledger_at: str | None, receiver: Receiver) -> None:
    iss, clock, _ = _setup(tmp_path, ledger_at, receiver)
    lic = iss.create_license(product="ispmanager", days=365)
    with pytest.raises(ProductMismatchError):
        iss.redeem(request_for(lic.activation_key, "s1", product="other", clock=clock), method="online")
    _once(iss, clock)
    assert [g["type"] for g in receiver.got] == ["license.created"]


def test_fails_twice_then_arrives_on_the_third_try_with_the_same_id_and_order_holds(tmp_path: Path, ledger_at: str | None, receiver: Receiver) -> None:
    iss, clock, wh = _setup(tmp_path, ledger_at, receiver)
    first = iss.create_license(product="ispmanager", days=365)
    iss.revoke(first.license_id)
    (created,) = [d for d in iss.webhooks.deliveries(wh) if d.type == "license.created"]
    receiver.failures[created.event_id] = [500, 503]
    _once(iss, clock)  # fails; the revocation behind it waits
    assert receiver.got == []
    assert _once(iss, clock) == 0  # not due yet (5 s ± 20 %)
    clock.advance(seconds=7)
    _once(iss, clock)  # fails again
    assert receiver.got == []
    clock.advance(seconds=37)
    _once(iss, clock)
    assert [g["type"] for g in receiver.got] == ["license.created", "license.revoked"]
    assert receiver.ids()[0] == created.event_id
    (after,) = [d for d in iss.webhooks.deliveries(wh) if d.event_id == created.event_id]
    assert [a.http_status for a in after.attempts] == [500, 503, 200]
    assert after.to_dict()["status"] == "delivered"


def test_three_days_of_failure_fail_the_delivery_and_pause_the_endpoint(tmp_path: Path, ledger_at: str | None, receiver: Receiver) -> None:
    iss, clock, wh = _setup(tmp_path, ledger_at, receiver, start=utc_now() - dt.timedelta(days=4))
    iss.create_license(product="ispmanager", days=365)
    receiver.fail_all = 500
    delays = []
    for _ in range(40):
        (d,) = iss.webhooks.deliveries(wh)
        if d.status != "pending":
            break
        if d.next_attempt_at is not None:
            delays.append((d.next_attempt_at - clock.now).total_seconds())
            clock.now = max(clock.now, d.next_attempt_at)
        _once(iss, clock)
    (d,) = iss.webhooks.deliveries(wh)
    assert d.status == "failed"
    assert iss.webhooks.get(wh).state == "paused"
    assert 4 <= delays[1] <= 6 and 24 <= delays[2] <= 36  # 5 s, 30 s, ... with ±20 % jitter
    assert (d.attempts[-1].at - d.attempts[0].at) <= dt.timedelta(days=3)
    receiver.fail_all = 0
    clock.now = utc_now()
    iss.webhooks.resume(wh)  # sends from the first undelivered
    _once(iss, clock)
    assert [g["type"] for g in receiver.got] == ["license.created"]


def test_a_paused_endpoint_queues_and_resume_sends_in_order(tmp_path: Path, ledger_at: str | None, receiver: Receiver) -> None:
    iss, clock, wh = _setup(tmp_path, ledger_at, receiver)
    iss.webhooks.pause(wh)
    lic = iss.create_license(product="ispmanager", days=365)
    iss.revoke(lic.license_id)
    assert _once(iss, clock) == 0
    iss.webhooks.resume(wh)
    _once(iss, clock)
    assert [g["type"] for g in receiver.got] == ["license.created", "license.revoked"]
    actions = [e.event.action for e in iss.events(limit=100).items if e.license_id is None]
    assert actions == ["webhook.added", "webhook.paused", "webhook.resumed"]


def test_redeliver_sends_again_with_the_same_id(tmp_path: Path, ledger_at: str | None, receiver: Receiver) -> None:
    iss, clock, wh = _setup(tmp_path, ledger_at, receiver)
    iss.create_license(product="ispmanager", days=365)
    _once(iss, clock)
    (d,) = iss.webhooks.deliveries(wh)
    iss.webhooks.redeliver(d.delivery_id)
    _once(iss, clock)
    assert receiver.ids() == [d.event_id, d.event_id]
    assert receiver.got[0] == receiver.got[1]  # the same body
    with pytest.raises(WebhookNotFoundError):
        iss.webhooks.redeliver("DL-NOSUCHTHING")


def test_deliveries_queued_after_the_queue_drained_come_after_the_delivered_ones(tmp_path: Path, ledger_at: str | None, receiver: Receiver) -> None:
    iss, clock, wh = _setup(tmp_path, ledger_at, receiver)
    first = iss.create_license(product="ispmanager", days=365)
    _once(iss, clock)  # the queue is empty now
    second = iss.create_license(product="ispmanager", days=365)
    iss.webhooks.test(wh)
    listed = iss.webhooks.deliveries(wh)  # newest first
    assert [d.type for d in listed] == ["webhook.test", "license.created", "license.created"]
    assert [d.body["data"]["license"]["license_id"] for d in listed[1:]] == [second.license_id, first.license_id]
    assert [d.seq for d in listed] == sorted({d.seq for d in listed}, reverse=True)  # distinct, in order


def test_a_rotated_secret_signs_beside_the_new_one_for_24_hours(tmp_path: Path, ledger_at: str | None, receiver: Receiver) -> None:
    iss, clock, wh = _setup(tmp_path, ledger_at, receiver)
    old = receiver.secrets[:]
    _, new = iss.webhooks.rotate_secret(wh)
    iss.create_license(product="ispmanager", days=365)
    _once(iss, clock)
    assert len(receiver.headers[0]["webhook-signature"].split(" ")) == 2
    receiver.secrets = [new]
    iss.webhooks.test(wh)
    _once(iss, clock)
    assert len(receiver.got) == 2
    receiver.secrets = old
    clock.advance(hours=25)
    endpoint = iss.webhooks.get(wh)
    assert endpoint.live_secrets(clock.now) == [new]


def test_private_targets_are_refused_at_add_and_after_resolution(tmp_path: Path, ledger_at: str | None, receiver: Receiver) -> None:
    iss, clock, _ = _setup(tmp_path, ledger_at, receiver)
    for url in ("https://127.0.0.1/x", "https://10.1.2.3/x", "https://[::ffff:192.168.1.1]/x", "https://100.64.0.1/", "https://169.254.169.254/", "https://[fd00::1]/"):
        with pytest.raises(BadInputError, match="private"):
            iss.webhooks.add(url)
    for bad, words in (("ftp://x.example/", "https://"), ("http://x.example/", "--allow-private"), ("https://x.example/", "event type")):
        with pytest.raises(BadInputError, match=words):
            iss.webhooks.add(bad, events=["nope"] if "event" in words else ())
    with pytest.raises(BadInputError, match="at most"):
        iss.webhooks.add("https://x.example/", description="x" * 501)
    port = receiver.url.split(":")[2].split("/")[0]
    named, _ = iss.webhooks.add(f"https://localhost:{port}/hooks")  # a name: judged when it resolves
    assert len(iss.webhooks.endpoints()) == 2
    _once(iss, clock)
    iss.webhooks.test(named.endpoint_id)
    _once(iss, clock)
    (d,) = iss.webhooks.deliveries(named.endpoint_id)
    assert d.status == "pending" and "refused" in (d.attempts[-1].error or "")
    assert receiver.unverified == 0


def test_ledger_copy_carries_endpoints_and_the_undelivered_queue(tmp_path: Path, ledger_at: str | None, receiver: Receiver) -> None:
    from issuer.ledger.copy import copy_ledger

    iss, clock, _ = _setup(tmp_path, ledger_at, receiver)
    iss.create_license(product="ispmanager", days=365)
    source = ledger_at or str(tmp_path / "ledger")
    summary = copy_ledger(source, tmp_path / "copy")
    assert (summary.webhooks, summary.undelivered) == (1, 1)
    from issuer import Issuer

    copy = Issuer(tmp_path / "copy", tmp_path / "keys", clock=clock)
    _once(copy, clock)
    assert [g["type"] for g in receiver.got] == ["license.created"]  # signed with the copied secret


def test_two_deliverers_share_a_postgres_queue_without_a_double(tmp_path: Path, pg_url: str, receiver: Receiver) -> None:
    from issuer.ledger import open_ledger

    iss, clock, _ = _setup(tmp_path, pg_url, receiver)
    iss.create_licenses(1, "ispmanager")
    for _ in range(1000):
        iss.webhooks.test(iss.webhooks.endpoints()[0].endpoint_id)
    ledgers = [open_ledger(pg_url), open_ledger(pg_url)]
    threads = [threading.Thread(target=lambda led=led: [Deliverer(led, clock=clock).run_once() for _ in range(30)]) for led in ledgers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for led in ledgers:
        led.close()
    ids = receiver.ids()
    assert len(ids) == 1000 and len(set(ids)) == 1000


# -- the commands ---------------------------------------------------------------------------------


def _json(proc: Any) -> Any:
    return json.loads(proc.stdout)


def test_the_webhook_commands_end_to_end(tmp_path: Path, receiver: Receiver) -> None:
    from clirun import assert_one_line_refusal, cli, provider_home

    home = provider_home(tmp_path)
    added = _json(cli("issuer", "webhook", "add", receiver.url, "--allow-private", "--event", "license.*", "--description", "billing", "--json", cwd=home))
    assert set(added) == {"id", "url", "events", "description", "secret"} and added["secret"].startswith("whsec_")
    receiver.secrets.append(added["secret"])
    wh = added["id"]
    text = cli("issuer", "webhook", "add", receiver.url, "--allow-private", cwd=home).stdout.splitlines()
    assert text[0].startswith("WH-") and text[-1].startswith("whsec_")
    cli("issuer", "webhook", "remove", text[0], cwd=home)
    listed = _json(cli("issuer", "webhook", "list", "--json", cwd=home))
    assert listed == {"items": [{"id": wh, "url": receiver.url, "events": ["license.*"], "description": "billing", "state": "active"}]}
    before = list((home / "ledger").rglob("*.json"))
    snapshot = {p: p.read_bytes() for p in before}
    for args, needle, code in (
        (("add", "ftp://billing.example/"), "https://", 2),  # bad input: licet's exit code 2
        (("add", "https://billing.example/", "--event", "license.exploded"), "unknown event type", 2),
        (("add", "https://billing.example/", "--description", "x" * 5000), "at most", 2),
        (("add", "https://127.0.0.1/"), "private", 2),
        (("pause", "WH-NOSUCHTHING"), "no webhook endpoint", 1),
        (("deliveries", "WH-NOSUCHTHING"), "no webhook endpoint", 1),
        (("redeliver", "DL-NOSUCHTHING"), "no webhook delivery", 1),
        (("deliver", "--nice", "20"), "--nice", 2),
    ):
        assert_one_line_refusal(cli("issuer", "webhook", *args, cwd=home, check=None), needle, code)
    assert {p: p.read_bytes() for p in (home / "ledger").rglob("*.json")} == snapshot  # nothing changed
    cli("issuer", "license", "create", "--product", "ispmanager", "--days", "30", cwd=home)
    cli("issuer", "webhook", "test", wh, cwd=home)
    cli("issuer", "webhook", "deliver", "--once", cwd=home)
    assert [g["type"] for g in receiver.got] == ["license.created", "webhook.test"]
    items = _json(cli("issuer", "webhook", "deliveries", wh, "--json", cwd=home))["items"]
    assert [i["status"] for i in items] == ["delivered", "delivered"]
    assert set(items[0]) == {"delivery_id", "event_id", "type", "status", "attempts", "next_attempt_at"}
    assert items[0]["attempts"][0]["http_status"] == 200
    cli("issuer", "webhook", "redeliver", items[1]["delivery_id"], cwd=home)
    cli("issuer", "webhook", "pause", wh, cwd=home)
    cli("issuer", "webhook", "resume", wh, cwd=home)
    rotated = _json(cli("issuer", "webhook", "rotate-secret", wh, "--json", cwd=home))
    assert set(rotated) == {"id", "secret"} and rotated["id"] == wh
    cli("issuer", "webhook", "deliver", "--once", cwd=home)
    assert receiver.ids()[-1] == items[1]["event_id"]  # the redelivery, same webhook-id
    assert len(receiver.headers[-1]["webhook-signature"].split()) == 2  # both secrets sign
    from issuer.ledger import open_ledger

    logged = [(e.event.action, e.event.actor) for e in open_ledger(home / "ledger").events(limit=100) if e.license_id is None]
    assert [a for a, _ in logged] == ["webhook.added", "webhook.added", "webhook.removed", "webhook.paused", "webhook.resumed", "webhook.secret-rotated"]
    assert all(actor.startswith("cli:") for _, actor in logged)


def test_a_deliverer_killed_mid_send_loses_nothing(tmp_path: Path, receiver: Receiver) -> None:
    import os
    import signal
    import subprocess

    from clirun import cli, provider_home, script

    home = provider_home(tmp_path)
    added = _json(cli("issuer", "webhook", "add", receiver.url, "--allow-private", "--json", cwd=home))
    receiver.secrets.append(added["secret"])
    cli("issuer", "license", "create", "--product", "ispmanager", "--days", "30", cwd=home)
    receiver.stall_next = True
    env = {k: v for k, v in os.environ.items() if not k.startswith("LICET_")}
    proc = subprocess.Popen([script("issuer"), "webhook", "deliver"], cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert receiver.stalled.wait(30), "the deliverer never sent"
        nice = int(Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
        assert nice == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)  # license serving comes first
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        receiver.release.set()
        if proc.poll() is None:
            proc.kill()
    assert receiver.got == []
    cli("issuer", "webhook", "deliver", "--once", cwd=home)
    assert [g["type"] for g in receiver.got] == ["license.created"]
    items = _json(cli("issuer", "webhook", "deliveries", added["id"], "--json", cwd=home))["items"]
    assert items[0]["status"] == "delivered" and receiver.ids() == [items[0]["event_id"]]


def test_an_upgrade_to_schema_7_adds_the_webhook_tables(tmp_path: Path, pg_url: str) -> None:
    import psycopg
    from clirun import cli

    from issuer.errors import LedgerVersionError
    from issuer.ledger import open_ledger
    from issuer.ledger.postgres import SCHEMA_VERSION

    clock = FakeClock(utc_now())
    iss = make_issuer(tmp_path, clock, pg_url)
    lic = iss.create_license(product="ispmanager", days=30)
    iss.ledger.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:  # as the ledger was at version 6
        conn.execute("DROP TABLE licet.webhook_deliveries, licet.webhook_senders, licet.webhook_endpoints")
        conn.execute("UPDATE licet.meta SET schema_version = 6")
    with pytest.raises(LedgerVersionError, match="schema version 6"):
        open_ledger(pg_url)
    out = cli("issuer", "ledger", "upgrade", "--ledger", pg_url, cwd=tmp_path).stdout
    assert "7" in out and SCHEMA_VERSION == 7
    from issuer import Issuer

    again = Issuer(pg_url, tmp_path / "keys", clock=clock)
    assert again.show(lic.license_id).license_id == lic.license_id
    assert again.webhooks.endpoints() == []


def test_a_running_license_server_delivers_an_online_activation(tmp_path: Path, receiver: Receiver) -> None:
    from clirun import cli, provider_home
    from servers import LicenseServer

    from verifier.client import activate_online

    home = provider_home(tmp_path)
    added = _json(cli("issuer", "webhook", "add", receiver.url, "--allow-private", "--event", "license.activated", "--json", cwd=home))
    receiver.secrets.append(added["secret"])
    lic = _json(cli("issuer", "license", "create", "--product", "ispmanager", "--days", "30", "--json", cwd=home))
    server = LicenseServer(home)
    try:
        activate_online(server.url, "ispmanager", lic["activation_key"], machine_id="m1")
        receiver.wait_for(1)  # the server's own deliverer sends it (a deadline, not a sleep)
    finally:
        server.stop()
    assert [g["type"] for g in receiver.got] == ["license.activated"]
    assert receiver.got[0]["data"]["license"]["license_id"] == lic["license_id"]


def test_the_admin_api_webhook_routes(tmp_path: Path, receiver: Receiver) -> None:
    from clirun import provider_home
    from consoles import ConsoleServer, api, make_token

    home = provider_home(tmp_path)
    write, read = make_token(home, "billing", "write"), make_token(home, "viewer", "read")
    console = ConsoleServer(home)
    try:
        status, _, created = api(console.url, "POST", "/v1/admin/webhooks", write, {"url": receiver.url, "allow_private": True, "events": ["license.*"]})
        assert status == 201 and created["secret"].startswith("whsec_") and created["events"] == ["license.*"]
        receiver.secrets.append(created["secret"])
        status, _, refused = api(console.url, "POST", "/v1/admin/webhooks", write, {"url": "https://10.0.0.1/hooks"})
        assert (status, refused["code"]) == (422, "webhook-target-refused")
        assert api(console.url, "POST", "/v1/admin/webhooks", read, {"url": "https://billing.example/"})[0] == 403
        status, _, listed = api(console.url, "GET", "/v1/admin/webhooks", read)
        assert status == 200 and [i["id"] for i in listed["items"]] == [created["id"]] and "secret" not in listed["items"][0]
        api(console.url, "POST", "/v1/admin/licenses", write, {"product": "ispmanager", "days": 30, "new_product": True})
        receiver.wait_for(1)  # the console's own deliverer sends it
        status, _, deliveries = api(console.url, "GET", f"/v1/admin/webhooks/{created['id']}/deliveries", read)
        assert status == 200 and deliveries["items"][0]["type"] == "license.created"
        dl = deliveries["items"][0]["delivery_id"]
        status, _, again = api(console.url, "POST", f"/v1/admin/webhooks/deliveries/{dl}/redeliver", write)
        assert status == 200 and again["status"] == "pending"
        receiver.wait_for(2)
        assert receiver.ids()[0] == receiver.ids()[1]
        assert api(console.url, "GET", "/v1/admin/webhooks/WH-NOSUCH/deliveries", read)[2]["code"] == "webhook-not-found"
        assert api(console.url, "DELETE", f"/v1/admin/webhooks/{created['id']}", write)[0] == 204
        assert api(console.url, "DELETE", f"/v1/admin/webhooks/{created['id']}", write)[0] == 404
        _, _, feed = api(console.url, "GET", "/v1/admin/events", read)
        assert [(i["action"], i["actor"]) for i in feed["items"] if i["action"].startswith("webhook.")] == [("webhook.added", "api:billing"), ("webhook.removed", "api:billing")]
    finally:
        console.stop()


def test_the_console_webhooks_page(tmp_path: Path, receiver: Receiver) -> None:
    import http.cookiejar
    import re
    import urllib.parse
    import urllib.request

    from clirun import cli, provider_home
    from consoles import PASSWORD, ConsoleServer, add_user

    home = provider_home(tmp_path)
    add_user(home, "alice")
    added = _json(cli("issuer", "webhook", "add", receiver.url, "--allow-private", "--description", "billing", "--json", cwd=home))
    receiver.secrets.append(added["secret"])
    wh = added["id"]
    console = ConsoleServer(home)
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def page(path: str, form: dict[str, str] | None = None) -> str:
        data = None if form is None else urllib.parse.urlencode(form).encode()
        with browser.open(console.url + path, data=data, timeout=30) as answer:
            return str(answer.read().decode())

    def csrf(html: str) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', html)
        assert found
        return found.group(1)

    try:
        page("/login", {"csrf": csrf(page("/login")), "user": "alice", "password": PASSWORD})
        html = page("/webhooks")
        assert wh in html and receiver.url in html and "billing" in html and "No deliveries yet." in html
        html = page(f"/webhooks/{wh}/test", {"csrf": csrf(html)})  # Send test
        assert "webhook.test event is queued" in html
        receiver.wait_for(1)  # the console's deliverer sends it, then records the answer
        deadline = time.monotonic() + 20
        while "delivered" not in (html := page("/webhooks")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "webhook.test" in html and "delivered" in html and ">200<" in html
        (dl,) = re.findall(r"/webhooks/deliveries/(DL-[0-9A-Z]+)/redeliver", html)
        page(f"/webhooks/deliveries/{dl}/redeliver", {"csrf": csrf(html)})
        receiver.wait_for(2)
        html = page(f"/webhooks/{wh}/pause", {"csrf": csrf(html)})
        assert "paused" in html and f"/webhooks/{wh}/resume" in html
        html = page(f"/webhooks/{wh}/resume", {"csrf": csrf(html)})
        assert f"/webhooks/{wh}/pause" in html
        with pytest.raises(urllib.error.HTTPError):
            page(f"/webhooks/{wh}/pause", {"csrf": "forged"})
        assert receiver.ids()[0] == receiver.ids()[1]
    finally:
        console.stop()
