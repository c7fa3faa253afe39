"""Several `issuer serve` nodes on one PostgreSQL ledger: the guarantees hold across them."""

from __future__ import annotations

import http.client
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clirun import assert_one_line_refusal, cli
from consoles import PASSWORD, ConsoleServer, api
from racing import CTX, run_all
from servers import LicenseServer, post_json, wait_until
from support import PRODUCT, code_for

from issuer import Issuer
from verifier import LicenseError


@pytest.fixture(scope="module")
def pg_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A provider folder (keys, trust file) whose ledger is a database of its own.

    Not the module's ``pg_database``: the tests that take ``pg_url`` drop the
    ledger in that one before and after they run, in whatever order.
    """
    from pgsupport import fresh_database

    home = tmp_path_factory.mktemp("pg-provider")
    with fresh_database() as url:
        cli("keytool", "new", cwd=home)
        cli("keytool", "export", cwd=home)
        cli("issuer", "init", "--name", "acme-hosting", cwd=home, env={"LICET_LEDGER": url})
        create(home, url)  # the module's product comes first, whatever order the tests run in
        yield home, url


def create(home: Path, url: str, *extra: str) -> dict[str, Any]:
    out = cli("issuer", "license", "create", "--product", PRODUCT, "--json", *extra, cwd=home, env={"LICET_LEDGER": url})
    return dict(json.loads(out.stdout))


def show(home: Path, url: str, license_id: str) -> dict[str, Any]:
    return dict(json.loads(cli("issuer", "license", "show", license_id, "--json", "--ledger", url, cwd=home).stdout))


def post(url: str, body: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
    return post_json(url, json.dumps(body).encode())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def nodes(pg_home: tuple[Path, str]) -> Iterator[list[LicenseServer]]:
    home, url = pg_home
    both = [LicenseServer(home, "--ledger", url, "--failure-limit", "4") for _ in range(2)]
    yield both
    for node in both:
        node.stop()


def test_sixteen_clients_on_two_nodes_yield_one_activation_every_time(pg_home: tuple[Path, str], nodes: list[LicenseServer]) -> None:
    home, url = pg_home
    assert nodes[0].port != nodes[1].port
    for round_ in range(3):
        lic = create(home, url)
        codes = [code_for(lic["activation_key"], f"racer-{round_}-{i}") for i in range(16)]
        barrier, outcomes = threading.Barrier(16), []

        def racer(i: int, code: str, barrier: threading.Barrier = barrier, outcomes: list[Any] = outcomes) -> None:
            barrier.wait(timeout=60)
            status, _, body = post(nodes[i % 2].url + "/v1/activations", {"request_code": code})
            outcomes.append((status, i % 2, body.get("code")))

        threads = [threading.Thread(target=racer, args=(i, c)) for i, c in enumerate(codes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert sorted(s for s, _, _ in outcomes) == [200] + [409] * 15, outcomes
        assert {n for s, n, _ in outcomes if s == 409} == {0, 1}  # both nodes took part and refused
        record = show(home, url, lic["license_id"])
        assert [e["action"] for e in record["history"]].count("activated") == 1


def _regenerate(url: str, keys: str, license_id: str, barrier: Any, results: Any) -> None:
    iss = Issuer(url, keys)  # a node of its own: its own process and connections
    barrier.wait(timeout=60)
    try:
        results.put(("ok", iss.regenerate(license_id).record.generation))
    except LicenseError as err:
        results.put(("refused", err.code))


def test_regenerations_racing_on_two_nodes_yield_one(pg_home: tuple[Path, str]) -> None:
    home, url = pg_home
    for _ in range(3):
        lic = create(home, url)
        out = sorted(run_all(_regenerate, [(url, str(home / "keys"), lic["license_id"])] * 2))
        assert out == [("ok", 2), ("refused", "regeneration-too-soon")]
        assert show(home, url, lic["license_id"])["key_generation"] == 2


def test_an_activation_racing_a_regeneration_on_another_node_is_never_lost(pg_home: tuple[Path, str], nodes: list[LicenseServer]) -> None:
    from verifier import TrustedKeys, Verifier

    home, url = pg_home
    trusted = TrustedKeys.from_file(home / "keys" / "trusted_keys.json")
    for round_ in range(4):
        lic = create(home, url)
        barrier, results = CTX.Barrier(2), CTX.Queue()
        regen = CTX.Process(target=_regenerate, args=(url, str(home / "keys"), lic["license_id"], barrier, results))
        regen.start()
        barrier.wait(timeout=60)
        status, _, body = post(nodes[round_ % 2].url + "/v1/activations", {"request_code": code_for(lic["activation_key"], f"racing-{round_}")})
        assert results.get(timeout=60) == ("ok", 2)  # the first regeneration is always allowed
        regen.join(timeout=30)
        record = show(home, url, lic["license_id"])
        assert record["key_generation"] == 2 and record["activation"] is None and record["status"] == "issued"
        if status == 200:  # activated first: the regeneration superseded it, and the history says so
            jti = Verifier(PRODUCT, trusted, machine_id=f"machine-racing-{round_}").verify(body["token"]).activation_id
            assert [a["activation_id"] for a in record["past_activations"]] == [jti]
            assert [e["action"] for e in record["history"]].count("activated") == 1
        else:  # regenerated first: the old key opens nothing, and nothing was recorded
            assert (status, body["code"]) == (403, "invalid-activation-key"), body
            assert record["past_activations"] == []


def test_renewals_racing_a_regeneration_across_nodes_never_outlive_the_revocation(pg_home: tuple[Path, str], nodes: list[LicenseServer]) -> None:
    from support import renewal_for

    from verifier import TrustedKeys, Verifier

    home, url = pg_home
    trusted = TrustedKeys.from_file(home / "keys" / "trusted_keys.json")
    outcomes: set[int] = set()
    for round_ in range(3):
        lic = create(home, url)
        server = f"renewing-{round_}"
        status, _, body = post(nodes[0].url + "/v1/activations", {"request_code": code_for(lic["activation_key"], server)})
        assert status == 200, body
        first = Verifier(PRODUCT, trusted, machine_id=f"machine-{server}").verify(body["token"])
        code = renewal_for(body["token"], server)
        barrier, results = CTX.Barrier(9), CTX.Queue()
        regen = CTX.Process(target=_regenerate, args=(url, str(home / "keys"), lic["license_id"], barrier, results))
        regen.start()
        renewed: list[tuple[int, dict[str, Any]]] = []

        def renew(i: int, barrier: Any = barrier, renewed: list[Any] = renewed, code: str = code) -> None:
            barrier.wait(timeout=60)
            status, _, body = post(nodes[i % 2].url + "/v1/renewals", {"renewal_code": code})
            renewed.append((status, body))

        threads = [threading.Thread(target=renew, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert results.get(timeout=60) == ("ok", 2)
        regen.join(timeout=30)
        _, entries = Issuer(url, home / "keys").ledger.revocations()
        (entry,) = [e for e in entries if e.ident == first.activation_id]  # the superseded activation is listed
        for status, body in renewed:
            outcomes.add(status)
            if status == 200:  # renewed before the regeneration: the entry covers the renewed token too
                lic_token = Verifier(PRODUCT, trusted, machine_id=f"machine-{server}").verify(body["token"])
                assert lic_token.activation_id == first.activation_id
                assert lic_token.expires_at <= entry.until
            else:  # after it: refused, nothing renewed
                assert status in (403, 409), body
        record = show(home, url, lic["license_id"])
        assert record["activation"] is None and [a["activation_id"] for a in record["past_activations"]] == [first.activation_id]
    assert outcomes  # every renewal got an answer; both orders are allowed


def test_the_rate_limit_is_shared_by_every_node(pg_home: tuple[Path, str], nodes: list[LicenseServer]) -> None:
    import psycopg

    from verifier.activation_key import key_from_bytes

    home, url = pg_home
    with psycopg.connect(url, autocommit=True) as conn:  # earlier tests on these nodes may have failed from this address
        conn.execute("DELETE FROM licet.attempts")
    good = create(home, url)
    wrong = [code_for(key_from_bytes(bytes([i]) * 15), f"guess-{i}") for i in range(60)]
    barrier, codes = threading.Barrier(60), []

    def guess(i: int, code: str) -> None:  # 60 guesses at once, half on each node
        barrier.wait(timeout=60)
        codes.append(post(nodes[i % 2].url + "/v1/activations", {"request_code": code})[2]["code"])

    threads = [threading.Thread(target=guess, args=(i, c)) for i, c in enumerate(wrong)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert codes.count("invalid-activation-key") == 4, codes  # the limit is 4, for both nodes together
    assert codes.count("rate-limited") == 56, codes
    for node in nodes:  # even a right key now waits out the window, on either node
        _, _, body = post(node.url + "/v1/activations", {"request_code": code_for(good["activation_key"], "guesser")})
        assert body["code"] == "rate-limited", body
    assert show(home, url, good["license_id"])["status"] == "issued"

    # The provider sees the one count both nodes kept, and frees the client for both.
    env = {"LICET_LEDGER": url}
    (entry,) = json.loads(cli("issuer", "ratelimit", "list", "--failure-limit", "4", "--json", cwd=home, env=env).stdout)
    assert entry["bucket"] == "127.0.0.1" and entry["failures"] == 4 and entry["blocked_until"] is not None
    cleared = json.loads(cli("issuer", "ratelimit", "clear", "127.0.0.1", "--json", cwd=home, env=env).stdout)
    assert cleared == {"cleared": ["127.0.0.1"]}
    assert json.loads(cli("issuer", "ratelimit", "list", "--json", cwd=home, env=env).stdout) == []
    status, _, body = post(nodes[1].url + "/v1/activations", {"request_code": code_for(good["activation_key"], "guesser")})
    assert status == 200, body


def _create_product(url: str, keys: str, product: str, barrier: Any, results: Any) -> None:
    iss = Issuer(url, keys)  # a node of its own: its own process and connections
    barrier.wait(timeout=60)
    try:
        results.put(("ok", iss.create_license(product, new_product=True).record.product))
    except LicenseError as err:
        results.put(("refused", err.code))


def test_case_twins_of_a_new_product_created_on_two_nodes_at_once_yield_one(pg_home: tuple[Path, str]) -> None:
    from issuer.ledger import open_ledger

    home, url = pg_home
    create(home, url)  # the ledger knows a product, so a new one must say --new-product
    for round_ in range(3):
        twins = [f"Panel{round_}", f"panel{round_}"]
        out = sorted(run_all(_create_product, [(url, str(home / "keys"), name) for name in twins]))
        assert [kind for kind, _ in out] == ["ok", "refused"], out
        assert out[1][1] == "unknown-product"
        known = open_ledger(url).products()
        assert len(known & set(twins)) == 1 and out[0][1] in known


def _console(node: Any, method: str, path: str, cookie: str = "", fields: dict[str, str] | None = None) -> tuple[int, str, str, list[str]]:
    """One console page or form: (status, redirect location, HTML, the cookies it sets)."""
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    headers = {"Cookie": cookie} if cookie else {}
    if fields is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request(method, path, body=None if fields is None else urllib.parse.urlencode(fields), headers=headers)
        page = conn.getresponse()
        cookies = [v.split(";")[0] for k, v in page.getheaders() if k.lower() == "set-cookie"]
        return page.status, page.getheader("location") or "", page.read().decode(), cookies
    finally:
        conn.close()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, html
    return found.group(1)


def _feed(node: Any, token: str) -> list[dict[str, Any]]:
    """The whole audit feed of one node, a page at a time."""
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        status, _, page = api(node.url, "GET", f"/v1/admin/events?limit=3{cursor}", token)
        assert status == 200, page
        if not page["items"]:
            return items
        items += page["items"]
        cursor = f"&after={page['next_cursor']}"


def test_two_consoles_on_one_database_share_licenses_events_accounts_and_sessions(pg_home: tuple[Path, str]) -> None:
    home, url = pg_home
    env = {"LICET_LEDGER": url}
    cli("issuer", "admin", "user", "add", "alice", cwd=home, input=PASSWORD + "\n", env=env)
    writer = json.loads(cli("issuer", "admin", "token", "create", "billing", "--scope", "write", "--json", cwd=home, env=env).stdout)["token"]
    reader = json.loads(cli("issuer", "admin", "token", "create", "reports", "--scope", "read", "--json", cwd=home, env=env).stdout)["token"]
    listed = json.loads(cli("issuer", "admin", "token", "list", "--json", "--ledger", url, cwd=home).stdout)
    assert {t["name"] for t in listed} >= {"billing", "reports"}
    a, b = ConsoleServer(home, "--ledger", url), ConsoleServer(home, "--ledger", url)
    try:
        status, _, made = api(a.url, "POST", "/v1/admin/licenses", writer, {"product": PRODUCT, "customer": "Acme"})
        assert status == 201, made
        status, _, seen = api(b.url, "GET", f"/v1/admin/licenses/{made['license_id']}", reader)
        assert status == 200 and seen["customer"] == "Acme" and "activation_key" not in seen  # a read token sees no key
        assert api(b.url, "GET", f"/v1/admin/licenses/{made['license_id']}", writer)[2]["activation_key"] == made["activation_key"]
        status, _, edited = api(b.url, "PATCH", f"/v1/admin/licenses/{made['license_id']}", writer, {"customer": "Acme GmbH"})
        assert status == 200, edited
        feed = _feed(a, reader)
        assert feed == _feed(b, writer)
        mine = [(e["action"], e["actor"]) for e in feed if e["license_id"] == made["license_id"]]
        assert mine == [("created", "api:billing"), ("updated", "api:billing")]
        assert [e["action"] for e in feed if e["license_id"] is None][-3:] == ["user-added", "token-created", "token-created"]

        # Logged in on one node, logged in on both; logged out on one, out on both.
        _, _, html, cookies = _console(a, "GET", "/login")
        login_cookie = next(c for c in cookies if c.startswith("licet_login="))
        fields = {"csrf": _csrf(html), "user": "alice", "password": PASSWORD}
        status, _, _, cookies = _console(a, "POST", "/login", login_cookie, fields)
        assert status == 303, cookies
        session = next(c for c in cookies if c.startswith("licet_session="))
        status, _, html, _ = _console(b, "GET", "/", session)
        assert status == 200
        assert _console(b, "POST", "/logout", session, {"csrf": _csrf(html)})[0] == 303
        assert _console(a, "GET", "/", session)[:2] == (303, "/login")

        cli("issuer", "admin", "token", "revoke", "billing", "--ledger", url, cwd=home)
        for node in (a, b):
            status, _, problem = api(node.url, "GET", "/v1/admin/events", writer)
            assert status == 401 and problem["code"] == "unauthorized", problem
        assert api(b.url, "GET", "/v1/admin/events", reader)[0] == 200
    finally:
        a.stop()
        b.stop()


def test_ledger_copy_round_trip_keeps_everything(tmp_path: Path, pg_url: str) -> None:
    from clirun import provider_home

    home = provider_home(tmp_path)
    hook = json.loads(cli("issuer", "webhook", "add", "https://billing.example/hooks", "--json", cwd=home).stdout)
    for args in (("--product", PRODUCT), ("--product", PRODUCT, "--ip", "203.0.113.5"), ("--product", PRODUCT)):
        cli("issuer", "license", "create", *args, cwd=home)
    ids = [v["license_id"] for v in json.loads(cli("issuer", "license", "list", "--json", cwd=home).stdout)]
    keys = [show(home, "ledger", i)["activation_key"] for i in ids]
    cli("issuer", "activate", code_for(keys[0], "alpha"), cwd=home)
    cli("issuer", "activate", code_for(keys[1], "beta"), cwd=home)
    cli("issuer", "license", "regenerate", ids[1], cwd=home)  # a superseded activation in the history
    cli("issuer", "license", "revoke", ids[2], cwd=home)
    cli("issuer", "admin", "user", "add", "alice", cwd=home, input=PASSWORD + "\n")
    token = json.loads(cli("issuer", "admin", "token", "create", "billing", "--scope", "read", "--json", cwd=home).stdout)["token"]

    def listed(ledger: str) -> list[dict[str, Any]]:
        """The license list; a license never regenerated may be regenerated now, whenever now is."""
        rows = json.loads(cli("issuer", "license", "list", "--json", "--ledger", ledger, cwd=home).stdout)
        return [{k: v for k, v in row.items() if k != "next_regeneration" or row["key_generation"] > 1} for row in rows]

    original = listed("ledger")

    there = cli("issuer", "ledger", "copy", "--from", "ledger", "--to", pg_url, "--json", cwd=home)
    back = cli("issuer", "ledger", "copy", "--from", pg_url, "--to", "copied", "--json", cwd=home)
    summary = json.loads(there.stdout)
    assert summary == json.loads(back.stdout)
    assert (summary["licenses"], summary["activations"], summary["users"], summary["tokens"]) == (3, 2, 1, 1)
    assert summary["events"] == sum(len(show(home, "ledger", i)["history"]) for i in ids) + 3  # the accounts, the webhook
    # The webhook endpoint with its secret, and every undelivered event, came along.
    assert (summary["webhooks"], summary["undelivered"]) == (1, 3 + 2 + 1 + 1)
    for ledger in (pg_url, "copied"):
        queued = json.loads(cli("issuer", "webhook", "deliveries", hook["id"], "--json", "--ledger", ledger, cwd=home).stdout)["items"]
        assert len(queued) == 7 and {q["status"] for q in queued} == {"pending"}
    assert listed(pg_url) == original
    assert listed("copied") == original
    for ledger in (pg_url, "copied"):  # the accounts came along: the same token, the same user
        where = ledger if ledger == pg_url else str(home / ledger)
        assert Issuer(where, home / "keys").authenticate_token(token, write=False).actor == "api:billing"
        users = json.loads(cli("issuer", "admin", "user", "list", "--json", "--ledger", ledger, cwd=home).stdout)
        assert [u["name"] for u in users] == ["alice"]
    assert [r["next_regeneration"] for r in original if r["key_generation"] > 1]  # a fixed time is compared
    # The copy works with the same keys: single use and the rate-limit-free air-gapped door included.
    assert_one_line_refusal(cli("issuer", "activate", code_for(keys[0], "gamma"), "--ledger", pg_url, cwd=home, check=None), "already activated")
    again = show(home, pg_url, ids[1])["activation_key"]
    cli("issuer", "activate", code_for(again, "delta"), "--ledger", pg_url, cwd=home)
    assert show(home, "copied", ids[1])["status"] == "issued"  # the copies are independent ledgers

    # A destination that holds a ledger is refused and left as it was.
    before = listed(pg_url)
    assert_one_line_refusal(cli("issuer", "ledger", "copy", "--from", "ledger", "--to", pg_url, cwd=home, check=None), "exists")
    assert_one_line_refusal(cli("issuer", "ledger", "copy", "--from", pg_url, "--to", "copied", cwd=home, check=None), "exists")
    assert listed(pg_url) == before


def test_bad_database_urls_are_one_line_and_never_show_the_password(tmp_path: Path, pg_url: str) -> None:
    from pgsupport import require_postgres

    require_postgres()
    cli("keytool", "new", cwd=tmp_path)
    for url, needle in [
        ("postgresql://postgres:s3cr3t-pw@127.0.0.1:1/licet", "cannot reach the ledger database"),
        (pg_url.replace("/licet_test_", "/nope_", 1).replace("postgres@", "postgres:s3cr3t-pw@", 1), "does not exist"),
    ]:
        for args in (["init", "--name", "acme"], ["license", "list"], ["ledger", "upgrade"]):
            proc = cli("issuer", *args, "--ledger", url, cwd=tmp_path, check=None)
            assert_one_line_refusal(proc, needle)
            assert "s3cr3t-pw" not in proc.stdout + proc.stderr
    proc = cli("issuer", "init", "--name", "acme", "--ledger", pg_url.replace("postgres@", "postgres:s3cr3t-pw@", 1), cwd=tmp_path)
    assert "s3cr3t-pw" not in proc.stdout
    import psycopg

    with psycopg.connect(pg_url) as conn:  # nor is it stored anywhere in the ledger
        stored = repr(conn.execute("SELECT * FROM licet.meta").fetchall())
    assert "s3cr3t-pw" not in stored and "acme" in stored


def _admin(sql: str) -> None:
    import psycopg
    from pgsupport import SERVER_URL

    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        conn.execute(sql.encode())


def test_the_server_survives_a_database_outage_and_loses_no_acknowledged_activation(tmp_path: Path, pg_url: str) -> None:
    """The database goes away under a running server (connections killed, new ones refused) and comes back."""
    from psycopg.conninfo import conninfo_to_dict

    cli("keytool", "new", cwd=tmp_path)
    cli("issuer", "init", "--name", "acme-hosting", "--ledger", pg_url, cwd=tmp_path)
    licenses = [create(tmp_path, pg_url) for _ in range(6)]
    dbname = conninfo_to_dict(pg_url)["dbname"]
    node = LicenseServer(tmp_path, "--ledger", pg_url)
    acknowledged: dict[str, str] = {}
    statuses: list[tuple[int, str]] = []
    refusals: list[str] = []
    try:
        def activate(lic: dict[str, Any]) -> None:
            status, ctype, body = post(node.url + "/v1/activations", {"request_code": code_for(lic["activation_key"], "box-" + lic["license_id"])})
            statuses.append((status, ctype))
            if status == 200:
                acknowledged[lic["license_id"]] = body["token"]
            else:
                refusals.append(body["code"])

        activate(licenses[0])
        assert statuses[-1][0] == 200
        _admin(f"ALTER DATABASE {dbname} WITH ALLOW_CONNECTIONS false")
        _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{dbname}'")
        for lic in licenses[1:4]:
            activate(lic)
        outage = statuses[1:]
        assert outage and all(s == (503, "application/problem+json") for s in outage), outage
        _admin(f"ALTER DATABASE {dbname} WITH ALLOW_CONNECTIONS true")
        for lic in licenses[1:]:  # until the server has its connections back, it keeps failing cleanly

            def activated(lic: dict[str, Any] = lic) -> bool:
                activate(lic)
                return lic["license_id"] in acknowledged

            wait_until(activated, 90, "the server to reach the database again")
        assert all(s in ((200, "application/json"), (503, "application/problem+json")) for s in statuses), statuses
        assert set(refusals) == {"ledger-unavailable"}, refusals  # the database refused: never another fault
    finally:
        _admin(f"ALTER DATABASE {dbname} WITH ALLOW_CONNECTIONS true")
        node.stop()
    from verifier import TrustedKeys, Verifier

    cli("keytool", "export", cwd=tmp_path)
    trusted = TrustedKeys.from_file(tmp_path / "keys" / "trusted_keys.json")
    for license_id, token in acknowledged.items():  # every acknowledged activation is in the ledger
        claims = Verifier(PRODUCT, trusted, machine_id=f"machine-box-{license_id}").verify(token)
        record = show(tmp_path, pg_url, license_id)
        assert record["status"] == "activated" and claims.license_id == license_id
        assert record["activation"]["activation_id"] == claims.activation_id
    assert len(acknowledged) == 6
