"""The example ledger service itself, over real HTTP on 127.0.0.1: refunds by charge id, the
read-only order lookup and the fault knobs, checked against the service's own state."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

LEDGER_PATH = Path(__file__).parents[2] / "examples" / "ledger" / "ledger_service.py"


def _load_ledger() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ledger_service", LEDGER_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ledger_service"] = module
    spec.loader.exec_module(module)
    return module


ledger_service = _load_ledger()
_keys = count(1)


class Client:
    """Calls one running ledger; every POST gets a fresh key unless the test names one."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=5)

    def post(self, path: str, body: Any = None, *, key: str | None = None) -> httpx.Response:
        headers = {"Idempotency-Key": key or f"k{next(_keys)}"}
        return self.http.post(path, json=body, headers=headers)

    def charge(self, order_id: str, amount: int) -> str:
        answer = self.post("/charges", {"order_id": order_id, "amount": amount})
        assert answer.status_code == 201
        return str(answer.json()["charge_id"])

    def faults(self, **options: Any) -> dict[str, Any]:
        answer = self.http.post("/admin/faults", json=options)
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["faults"])

    def balance(self) -> dict[str, Any]:
        return dict(self.http.get("/balance").json())

    def entries(self) -> list[dict[str, Any]]:
        return list(self.http.get("/entries").json()["entries"])


@pytest.fixture
def client() -> Iterator[Client]:
    running = ledger_service.start()
    client = Client(running.url)
    yield client
    client.http.close()
    running.stop()


# --- refund by charge id -------------------------------------------------------------------


def test_refund_by_id_applies_then_has_nothing_left(client: Client) -> None:
    charge_id = client.charge("A1", 1200)
    client.charge("A2", 300)

    first = client.post(f"/charges/{charge_id}/refund")
    assert first.status_code == 200
    assert first.json() == {
        "refund_id": "re_3",
        "charge_id": charge_id,
        "order_id": "A1",
        "amount": 1200,
        "applied": True,
    }
    again = client.post(f"/charges/{charge_id}/refund")  # a new key: a second, real request
    assert again.status_code == 200
    assert again.json() == {"charge_id": charge_id, "amount": 0, "applied": False}

    balance = client.balance()
    assert balance["refunds_by_charge"] == {charge_id: 1, "ch_2": 0}
    assert (balance["refunded"], balance["balance"], balance["open_orders"]) == (1200, 300, ["A2"])
    assert client.entries()[-1] == {
        "type": "refund",
        "id": "re_3",
        "order_id": "A1",
        "amount": 1200,
        "charge_id": charge_id,
    }


def test_refund_by_id_with_an_amount_refunds_the_rest_next(client: Client) -> None:
    charge_id = client.charge("A1", 1000)
    partial = client.post(f"/charges/{charge_id}/refund", {"amount": 400})
    rest = client.post(f"/charges/{charge_id}/refund", {"amount": 5000})
    assert (partial.json()["amount"], rest.json()["amount"]) == (400, 600)
    assert client.balance()["refunds_by_charge"] == {charge_id: 2}
    assert client.balance()["balance"] == 0


def test_refunds_by_order_and_by_id_never_refund_more_than_the_order_has_open(
    client: Client,
) -> None:
    charge_id = client.charge("A1", 1000)
    assert client.post("/refunds", {"order_id": "A1", "amount": 700}).json()["amount"] == 700
    by_id = client.post(f"/charges/{charge_id}/refund").json()
    assert (by_id["amount"], by_id["applied"]) == (300, True)
    by_order = client.post("/refunds", {"order_id": "A1"}).json()
    assert by_order == {"order_id": "A1", "amount": 0, "applied": False}
    assert client.balance()["balance"] == 0


def test_refund_by_id_replays_with_the_same_key_and_applies_nothing(client: Client) -> None:
    charge_id = client.charge("A1", 1200)
    first = client.post(f"/charges/{charge_id}/refund", key="undo-1")
    replay = client.post(f"/charges/{charge_id}/refund", key="undo-1")
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert replay.json() == first.json()
    assert client.balance()["refunds"] == 1
    assert client.balance()["refunds_by_charge"] == {charge_id: 1}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/charges/ch_1/refund", {"amount": 100}),  # same charge, another body
        ("/charges/ch_2/refund", None),  # another charge
        ("/refunds", {"order_id": "A1"}),  # another path
    ],
)
def test_refund_by_id_key_reused_for_another_request_is_422(
    client: Client, path: str, body: Any
) -> None:
    client.charge("A1", 1200)
    client.charge("A2", 300)
    assert client.post("/charges/ch_1/refund", key="undo-1").status_code == 200
    reused = client.post(path, body, key="undo-1")
    assert reused.status_code == 422
    assert "error" in reused.json()
    assert client.balance()["refunds"] == 1


def test_refund_by_id_of_an_unknown_charge_is_404(client: Client) -> None:
    client.charge("A1", 1200)
    answer = client.post("/charges/ch_404/refund")
    assert answer.status_code == 404
    assert "ch_404" in answer.json()["error"]
    assert client.balance()["refunds"] == 0


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ({"amount": 0}, {"Idempotency-Key": "k"}, 400),
        ({"amount": True}, {"Idempotency-Key": "k"}, 400),
        ([1], {"Idempotency-Key": "k"}, 400),
        (None, {}, 400),  # no key
    ],
)
def test_refund_by_id_rejects_bad_requests(
    client: Client, body: Any, headers: dict[str, str], status: int
) -> None:
    client.charge("A1", 1200)
    answer = client.http.post("/charges/ch_1/refund", json=body, headers=headers)
    assert answer.status_code == status
    assert client.balance()["refunds"] == 0


# --- read-only lookup ----------------------------------------------------------------------


def test_order_lookup_is_read_only(client: Client) -> None:
    first = client.charge("A1", 1000)
    second = client.charge("A1", 500)
    client.charge("B2", 70)
    client.post(f"/charges/{first}/refund", {"amount": 200})
    before = (client.balance(), client.entries())

    for _ in range(2):
        answer = client.http.get("/orders/A1")  # no key needed
        assert answer.status_code == 200
        assert answer.json() == {
            "order_id": "A1",
            "charges": [first, second],
            "charged": 1500,
            "refunded": 200,
            "open": 1300,
        }
    assert (client.balance(), client.entries()) == before


def test_order_lookup_of_an_order_with_no_entries_is_404(client: Client) -> None:
    answer = client.http.get("/orders/nope")
    assert answer.status_code == 404
    assert client.entries() == []


# --- fault knobs ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 500])
def test_only_refund_fails_both_refund_paths_and_no_charge(client: Client, status: int) -> None:
    client.faults(fail_next=2, status=status, only="refund")
    charge_id = client.charge("A1", 1200)  # not a refund: untouched, and not counted
    by_id = client.post(f"/charges/{charge_id}/refund")
    by_order = client.post("/refunds", {"order_id": "A1"})
    assert (by_id.status_code, by_order.status_code) == (status, status)
    assert by_id.json() == {"error": "injected failure"}
    assert client.balance()["refunds"] == 0

    retried = client.post(f"/charges/{charge_id}/refund")  # the faults are used up
    assert retried.status_code == 200
    assert client.balance()["refunds_by_charge"] == {charge_id: 1}
    assert client.balance()["balance"] == 0


def test_a_failed_refund_is_not_remembered_under_its_key(client: Client) -> None:
    charge_id = client.charge("A1", 1200)
    client.faults(fail_next=1, status=500, only="refund")
    assert client.post(f"/charges/{charge_id}/refund", key="undo").status_code == 500
    retried = client.post(f"/charges/{charge_id}/refund", key="undo")
    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried.headers
    assert client.balance()["refunds"] == 1


def test_a_3xx_status_answers_a_redirect_with_location(client: Client) -> None:
    charge_id = client.charge("A1", 1200)
    client.faults(fail_next=1, status=302, only="refund")
    answer = client.post(f"/charges/{charge_id}/refund")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/elsewhere"
    assert client.balance()["refunds"] == 0
    assert client.http.post("/elsewhere").status_code == 404  # following it gets nowhere


def test_a_5xx_status_carries_no_location(client: Client) -> None:
    client.faults(fail_next=1, status=503, retry_after=1)
    answer = client.post("/charges", {"order_id": "A1", "amount": 1})
    assert answer.headers["Retry-After"] == "1"
    assert "Location" not in answer.headers


def test_only_charge_leaves_refunds_alone(client: Client) -> None:
    client.charge("A1", 1200)
    client.faults(fail_next=1, status=500, only="charge")
    assert client.post("/charges/ch_1/refund").status_code == 200
    assert client.post("/charges", {"order_id": "A2", "amount": 5}).status_code == 500
    assert client.balance()["charges"] == 1


def test_only_an_exact_path_still_means_that_path(client: Client) -> None:
    client.charge("A1", 1200)
    client.faults(fail_next=1, status=500, only="/refunds")
    assert client.post("/charges/ch_1/refund", {"amount": 1}).status_code == 200
    assert client.post("/refunds", {"order_id": "A1"}).status_code == 500


def test_only_rejects_what_matches_nothing(client: Client) -> None:
    answer = client.http.post("/admin/faults", json={"only": "refunds", "fail_next": 1})
    assert answer.status_code == 400
    assert "only must be" in answer.json()["error"]


def test_ignore_keys_and_double_refunds_apply_a_duplicate_twice(client: Client) -> None:
    charge_id = client.charge("A1", 1200)
    client.faults(ignore_keys=True, double_refunds=True)
    first = client.post(f"/charges/{charge_id}/refund", key="undo-1")
    duplicate = client.post(f"/charges/{charge_id}/refund", key="undo-1")
    assert first.status_code == duplicate.status_code == 200
    assert "Idempotent-Replayed" not in duplicate.headers
    assert first.json()["applied"] is duplicate.json()["applied"] is True
    assert first.json()["refund_id"] != duplicate.json()["refund_id"]

    balance = client.balance()
    assert balance["refunds_by_charge"] == {charge_id: 2}
    assert (balance["refunded"], balance["balance"]) == (2400, -1200)
    refunds = [e for e in client.entries() if e["type"] == "refund"]
    assert len({e["id"] for e in refunds}) == 2
    assert client.http.get("/orders/A1").json()["open"] == -1200


def test_double_refunds_alone_still_replays_by_key(client: Client) -> None:
    client.charge("A1", 1200)
    client.faults(double_refunds=True)
    client.post("/refunds", {"order_id": "A1"}, key="undo-1")
    replay = client.post("/refunds", {"order_id": "A1"}, key="undo-1")
    assert replay.headers["Idempotent-Replayed"] == "true"
    again = client.post("/refunds", {"order_id": "A1"})  # a new key: refunded again
    assert (again.json()["applied"], again.json()["amount"]) == (True, 1200)
    assert client.balance()["balance"] == -1200
    assert client.post("/refunds", {"order_id": "never-charged"}).json()["applied"] is False


def test_ignore_keys_alone_applies_a_second_charge_but_not_a_second_refund(
    client: Client,
) -> None:
    client.faults(ignore_keys="true")  # a query-string-like value counts too
    body = {"order_id": "A1", "amount": 1200}
    assert client.post("/charges", body, key="c").status_code == 201
    assert client.post("/charges", {"order_id": "A1", "amount": 5}, key="c").status_code == 201
    client.post("/charges/ch_1/refund", key="r")
    second = client.post("/charges/ch_1/refund", key="r")
    assert second.json() == {"charge_id": "ch_1", "amount": 0, "applied": False}
    assert client.balance()["charges"] == 2
    assert client.balance()["refunds_by_charge"] == {"ch_1": 1, "ch_2": 0}


def test_sticky_knobs_are_set_by_query_string_and_cleared_by_reset(client: Client) -> None:
    answer = client.http.post("/admin/faults?ignore_keys=1&double_refunds=1&only=refund")
    assert answer.json()["faults"]["ignore_keys"] is True
    charge_id = client.charge("A1", 100)
    for _ in range(3):  # sticky: no counter runs out
        client.post(f"/charges/{charge_id}/refund", key="same")
    assert client.balance()["refunds_by_charge"] == {charge_id: 3}

    assert client.http.post("/admin/reset").status_code == 200
    charge_id = client.charge("A1", 100)
    client.post(f"/charges/{charge_id}/refund", key="same")
    replay = client.post(f"/charges/{charge_id}/refund", key="same")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert client.post(f"/charges/{charge_id}/refund").json()["applied"] is False
    assert client.balance()["refunds_by_charge"] == {charge_id: 1}


def test_the_next_faults_call_replaces_the_sticky_knobs(client: Client) -> None:
    client.faults(ignore_keys=True, double_refunds=True)
    faults = client.faults(fail_next=1)
    assert (faults["ignore_keys"], faults["double_refunds"], faults["only"]) == (
        False,
        False,
        None,
    )


def test_exit_after_applies_to_refunds_by_id(client: Client) -> None:
    charge_id = client.charge("A1", 1200)
    client.faults(exit_after=1, only="refund")
    assert client.post(f"/charges/{charge_id}/refund").status_code == 200
    with pytest.raises(httpx.TransportError):
        client.balance()
