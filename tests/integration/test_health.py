"""`GET /v1/health` says whether this node can write its ledger; a URL naming two database hosts."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from clirun import cli
from servers import LicenseServer, free_port, wait_until
from support import PRODUCT, code_for


def get(url: str) -> tuple[int, Any, dict[str, Any]]:
    """Status, headers (looked up without regard to case) and JSON body of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, err.headers, json.loads(err.read())


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_health_is_ok_while_the_folder_ledger_can_be_locked_and_503_while_its_lock_is_held(home: Path) -> None:
    from verifier.fileio import file_lock

    srv = LicenseServer(home)
    try:
        status, _, body = get(srv.url + "/v1/health")
        assert status == 200 and body == {"status": "ok", "provider": "acme-hosting", "ledger": "ok"}
        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            with file_lock(home / "ledger" / "ledger.lock", 10):
                held.set()
                release.wait(30)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert held.wait(10)
            status, headers, body = get(srv.url + "/v1/health")
        finally:
            release.set()
            holder.join()
        assert status == 503 and body["code"] == "ledger-unavailable"
        assert headers["Content-Type"] == "application/problem+json" and int(headers["Retry-After"]) >= 1
        assert get(srv.url + "/v1/health")[0] == 200  # the lock is free again
    finally:
        srv.stop()


def _admin(sql: str) -> None:
    import psycopg
    from pgsupport import SERVER_URL

    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        conn.execute(sql.encode())


def test_health_of_a_node_follows_its_database(tmp_path: Path, pg_url: str) -> None:
    from psycopg.conninfo import conninfo_to_dict

    cli("keytool", "new", cwd=tmp_path)
    cli("issuer", "init", "--name", "acme-hosting", "--ledger", pg_url, cwd=tmp_path)
    dbname = conninfo_to_dict(pg_url)["dbname"]
    node = LicenseServer(tmp_path, "--ledger", pg_url)
    try:
        assert get(node.url + "/v1/health")[2]["ledger"] == "ok"
        _admin(f"ALTER DATABASE {dbname} WITH ALLOW_CONNECTIONS false")
        _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{dbname}'")
        status, headers, body = get(node.url + "/v1/health")
        assert (status, body["code"], headers["Content-Type"]) == (503, "ledger-unavailable", "application/problem+json")
        assert 1 <= int(headers["Retry-After"]) <= 10
        _admin(f"ALTER DATABASE {dbname} WITH ALLOW_CONNECTIONS true")
        wait_until(lambda: get(node.url + "/v1/health")[0] == 200, 30, "the node to reach its database again")
    finally:
        _admin(f"ALTER DATABASE {dbname} WITH ALLOW_CONNECTIONS true")
        node.stop()


def test_a_ledger_url_naming_two_hosts_uses_the_one_that_answers_and_takes_writes(tmp_path: Path, pg_url: str) -> None:
    """The first host is down (nothing listens on its port): the node uses the second, read-write one."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(pg_url)
    dead = free_port()
    both = (f"postgresql://{params['user']}@127.0.0.1:{dead},{params['host']}:{params['port']}/{params['dbname']}"
            "?target_session_attrs=read-write")
    cli("keytool", "new", cwd=tmp_path)
    cli("issuer", "init", "--name", "acme-hosting", "--ledger", both, cwd=tmp_path)
    out = cli("issuer", "license", "create", "--product", PRODUCT, "--json", "--ledger", both, cwd=tmp_path)
    lic = json.loads(out.stdout)
    node = LicenseServer(tmp_path, "--ledger", both)
    try:
        assert get(node.url + "/v1/health")[0] == 200
        status, body = post(node.url + "/v1/activations", {"request_code": code_for(lic["activation_key"], "box-1")})
        assert status == 200 and body["token"].count(".") == 2
    finally:
        node.stop()
    shown = json.loads(cli("issuer", "license", "show", lic["license_id"], "--json", "--ledger", pg_url, cwd=tmp_path).stdout)
    assert shown["status"] == "activated"  # written in the database the second host serves


def test_a_url_naming_two_hosts_is_shown_with_both_and_without_its_password() -> None:
    from issuer.ledger.connections import redact_url

    url = "postgresql://licet:s3cret@db1.example:5432,db2.example:5433/licet?target_session_attrs=read-write"
    assert redact_url(url) == "postgresql://licet@db1.example:5432,db2.example:5433/licet"
    assert redact_url("postgresql://licet:s3cret@db1,db2/licet") == "postgresql://licet@db1:5432,db2:5432/licet"
