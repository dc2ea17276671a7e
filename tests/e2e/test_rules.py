"""Business rules through the real app (embedded store, real Redis, Redis Cluster): the catalogue's
availability on every endpoint and replica, category/attribute filters, diversity, explanations."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recsys.serving.rules import Rules
from recsys.store import Store
from tests.e2e.conftest import Trained

ADMIN = {"Authorization": "Bearer s3cret-token"}


def _category(item_id: str) -> str:
    return f"cat{int(item_id[1:]) % 4}"  # the generated data's categories (tests/helpers.py)


def _ids(body: dict) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def _history(trained: Trained, user: str) -> set[str]:
    inter = trained.dataset.interactions
    return set(inter.filter(inter["user_id"] == user)["item_id"])


@pytest.fixture
def replica(trained: Trained, any_store: Store) -> Iterator[TestClient]:
    """A second API process on the same store (no background reload: only the per-request check)."""
    with TestClient(create_app(trained.settings, any_store, background_reload=False)) as c:
        yield c


def _everything_served(client: TestClient, user: str, seed_item: str) -> dict[str, list[str]]:
    return {
        "ranked": _ids(client.get(f"/v1/users/{user}/recommendations", params={"k": 100}).json()),
        "inline": _ids(client.post("/v1/recommendations", json={"user_id": user, "k": 100}).json()),
        "candidates": _ids(client.get(f"/v1/users/{user}/candidates", params={"k": 100}).json()),
        "unknown_user": _ids(client.get("/v1/users/nobody-x/recommendations", params={"k": 100}).json()),
        "similar": _ids(client.get(f"/v1/items/{seed_item}/similar", params={"k": 100}).json()),
    }


def test_an_unavailable_item_disappears_from_every_endpoint_of_every_replica(
        client: TestClient, replica: TestClient) -> None:
    top = _ids(client.get("/v1/users/u7/recommendations", params={"k": 10}).json())
    popular = _ids(client.get("/v1/users/nobody-x/recommendations", params={"k": 10}).json())
    hidden, deleted, expired = top[0], popular[0], top[1]
    seed = next(i for i in popular[1:] if _category(i) == _category(hidden))  # similar items of seed hold `hidden`
    before = _everything_served(replica, "u7", seed)
    assert hidden in before["ranked"] and hidden in before["candidates"] and deleted in before["unknown_user"]

    # Hidden and past-its-end items through the admin API of one replica ...
    r = client.put(f"/v1/items/{hidden}", json={"availability": "hidden", "categories": [_category(hidden)]},
                   headers=ADMIN)
    assert r.status_code == 200, r.text
    assert client.put(f"/v1/items/{expired}", json={"available_until": time.time() - 1},
                      headers=ADMIN).status_code == 200
    r = client.delete(f"/v1/items/{deleted}", headers=ADMIN)
    assert r.status_code == 200 and r.json()["written"] == 1
    # ... are gone from the very next request of the other replica, on every path.
    after = _everything_served(replica, "u7", seed)
    for path, ids in after.items():
        assert not {hidden, deleted, expired} & set(ids), path
    assert len(after["ranked"]) > 0 and len(after["unknown_user"]) > 0
    # An item available until a later time is still served.
    assert client.patch(f"/v1/items/{hidden}", json={"availability": "available",
                                                      "available_until": time.time() + 3600},
                        headers=ADMIN).status_code == 200
    assert hidden in _ids(replica.get("/v1/users/u7/recommendations", params={"k": 100}).json())
    # Put again, a deleted item comes back.
    assert client.put(f"/v1/items/{deleted}", json={}, headers=ADMIN).status_code == 200
    assert deleted in _ids(replica.get("/v1/users/nobody-x/recommendations", params={"k": 100}).json())


def test_catalogue_admin_api_needs_the_token_and_validates(client: TestClient) -> None:
    assert client.put("/v1/items/i1", json={}).status_code == 401
    assert client.delete("/v1/items/i1", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = client.put("/v1/items/i1", json={"availability": "gone"}, headers=ADMIN)
    assert r.status_code == 422 and "availability" in r.json()["detail"]
    r = client.put("/v1/items/i1", json={"attributes": {"bad name": 1}}, headers=ADMIN)
    assert r.status_code == 422 and "bad name" in str(r.json()["detail"])
    assert client.put("/v1/items/i1", json={"attributes": {"price": 3}}, headers=ADMIN).status_code == 200
    r = client.put("/v1/items/i2", json={"attributes": {"price": "cheap"}}, headers=ADMIN)
    assert r.status_code == 409 and "one type" in r.json()["detail"]
    r = client.put("/v1/items/i2", json={"available_until": 1.7e12}, headers=ADMIN)  # milliseconds
    assert r.status_code == 422
    assert client.patch("/v1/items/never-put", json={"title": "x"}, headers=ADMIN).status_code == 404
    too_many = {"items": [{"item_id": f"i{j}"} for j in range(1001)]}
    assert client.post("/v1/items", json=too_many, headers=ADMIN).status_code == 422
    r = client.patch("/v1/items/i1", json={"title": "One", "attributes": {"color": "red"}}, headers=ADMIN)
    assert r.status_code == 200
    got = client.get("/v1/items/i1", headers=ADMIN).json()
    assert got["title"] == "One" and got["attributes"] == {"price": 3.0, "color": "red"}


def _item(j: int, **extra: object) -> dict:
    return {"item_id": f"i{j}", "categories": [_category(f"i{j}")],
            "attributes": {"price": float(j), "color": "red" if j % 2 else "blue", "in_stock": j % 3 != 0, **extra}}


def _put_attributes(client: TestClient, n_items: int = 200) -> None:
    items = [_item(j) for j in range(n_items)]
    r = client.post("/v1/items", json={"items": items}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["written"] == n_items


def test_category_and_attribute_filters_return_only_matching_items(client: TestClient, trained: Trained) -> None:
    _put_attributes(client)
    cases = [({"category": "cat3"}, lambda j: j % 4 == 3),
             ({"category": ["cat1", "cat2"]}, lambda j: j % 4 in (1, 2)),
             ({"exclude_category": "cat3"}, lambda j: j % 4 != 3),
             ({"filter": "price<50"}, lambda j: j < 50),
             ({"filter": "price>150"}, lambda j: j > 150),
             ({"filter": "color=red"}, lambda j: j % 2 == 1),
             ({"filter": "color=red|blue"}, lambda j: True),
             ({"filter": ["in_stock=true", "price<100"]}, lambda j: j % 3 != 0 and j < 100),
             ({"category": "cat3", "filter": "in_stock=true"}, lambda j: j % 4 == 3 and j % 3 != 0)]
    for params, matches in cases:
        for path, call in (("get", lambda p: client.get("/v1/users/u7/recommendations", params={"k": 10, **p})),
                           ("post", lambda p: client.post("/v1/recommendations", json={
                               "user_id": "u7", "k": 10,
                               **{k: (v if isinstance(v, list) else [v]) for k, v in p.items()}}))):
            r = call(params)
            assert r.status_code == 200, (params, r.text)
            ids = _ids(r.json())
            assert len(ids) == 10, (params, path)
            assert all(matches(int(i[1:])) for i in ids), (params, path, ids)


def _tag_rare(client: TestClient, trained: Trained, user: str = "u7") -> tuple[list[str], list[str]]:
    """Tag 3 items of the user's ranked pool and 12 items outside it `rare`: (in the pool, outside)."""
    pool = _ids(client.get(f"/v1/users/{user}/candidates", params={"k": 100}).json())
    outside = [f"i{j}" for j in range(200) if f"i{j}" not in pool and f"i{j}" not in _history(trained, user)][:12]
    tagged = pool[:3] + outside
    r = client.post("/v1/items", json={"items": [_item(int(i[1:]), tag="rare") for i in tagged]}, headers=ADMIN)
    assert r.status_code == 200 and len(outside) == 12
    return pool[:3], outside


def test_an_over_narrow_filter_answers_with_matching_popular_items_and_says_so(client: TestClient,
                                                                                trained: Trained) -> None:
    _put_attributes(client)
    in_pool, outside = _tag_rare(client, trained)
    # Only 3 of u7's ranked candidates match: the list is filled with the most popular matching items.
    r = client.get("/v1/users/u7/recommendations", params={"k": 10, "filter": "tag=rare"})
    body = r.json()
    assert r.status_code == 200 and body["fallback"] == "filter_too_narrow"
    ids = _ids(body)
    assert len(ids) == 10 and set(ids[:3]) == set(in_pool) and set(ids[3:]) <= set(outside)
    popular = _ids(client.get("/v1/users/nobody-z/recommendations", params={"k": 100}).json())
    rank = {item: p for p, item in enumerate(popular)}
    filled = [rank.get(i, 10**6) for i in ids[3:]]
    assert filled == sorted(filled)  # most popular first
    # Enough ranked candidates match: no fallback.
    r = client.get("/v1/users/u7/recommendations", params={"k": 10, "category": "cat3"})
    assert r.json()["fallback"] is None and len(r.json()["items"]) == 10
    # Only a few items match at all: all of them that may be served, and nothing else.
    r = client.get("/v1/users/u7/recommendations", params={"k": 10, "category": "cat1", "filter": "price<30"})
    expected = {f"i{j}" for j in range(30) if j % 4 == 1} - _history(trained, "u7")
    assert r.status_code == 200 and r.json()["fallback"] == "filter_too_narrow"
    assert set(_ids(r.json())) == expected
    # Nothing matches: an empty list that says why, not an error.
    r = client.get("/v1/users/u7/recommendations", params={"category": "no-such-category"})
    assert r.status_code == 200 and r.json()["items"] == [] and r.json()["fallback"] == "filter_too_narrow"
    # A filter no item can satisfy (unknown attribute, another type) is over-narrow too, not an error.
    for f in ("weight<3", "color<3", "price=cheap", "in_stock=yes"):
        r = client.get("/v1/users/u7/recommendations", params={"filter": f})
        assert r.status_code == 200 and r.json()["items"] == [] and r.json()["fallback"] == "filter_too_narrow", f
    # Only an expression outside the grammar is refused, saying how to write one.
    for f in ("price~3", "price<abc", "=3"):
        r = client.get("/v1/users/u7/recommendations", params={"filter": f})
        assert r.status_code == 422 and "NAME=VALUE" in str(r.json()["detail"]), f
        r = client.post("/v1/recommendations", json={"user_id": "u7", "filter": [f]})
        assert r.status_code == 422, f


def test_max_per_category_holds(client: TestClient) -> None:
    plain = _ids(client.get("/v1/users/u7/recommendations", params={"k": 10}).json())
    assert max(Counter(map(_category, plain)).values()) > 3  # the ranked list is one cluster's
    for cap in (3, 2, 1):
        for user in ("u7", "nobody-y"):
            ids = _ids(client.get(f"/v1/users/{user}/recommendations",
                                  params={"k": 10, "max_per_category": cap}).json())
            counts = Counter(map(_category, ids))
            assert max(counts.values()) <= cap, (cap, user, ids)
            assert len(ids) == min(10, 4 * cap)  # 4 categories: the cap bounds the list
    # 0 switches the cap off; the first item is the ranker's best either way.
    ids = _ids(client.get("/v1/users/u7/recommendations", params={"k": 10, "max_per_category": 0}).json())
    assert ids == plain
    capped = _ids(client.get("/v1/users/u7/recommendations", params={"k": 10, "max_per_category": 2}).json())
    assert capped[0] == plain[0]


def test_max_per_category_default_from_settings(trained: Trained, any_store: Store) -> None:
    settings = trained.settings.model_copy(deep=True)
    settings.rules.max_per_category = 2
    with TestClient(create_app(settings, any_store, background_reload=False)) as c:
        ids = _ids(c.get("/v1/users/u7/recommendations", params={"k": 10}).json())
        assert max(Counter(map(_category, ids)).values()) == 2
        ids = _ids(c.get("/v1/users/u7/recommendations", params={"k": 10, "max_per_category": 0}).json())
        assert max(Counter(map(_category, ids)).values()) > 2


def test_explanations_sum_to_the_score(client: TestClient, trained: Trained) -> None:
    now = time.time()
    client.post("/v1/events", json=[{"user_id": "u11", "item_id": f"i{j}", "timestamp": now - 5 + j}
                                    for j in (3, 7, 11)])
    r = client.get("/v1/users/u11/recommendations", params={"k": 10, "explain": "true"})
    body = r.json()
    assert r.status_code == 200 and body["fallback"] is None
    plain = client.get("/v1/users/u11/recommendations", params={"k": 10}).json()
    assert _ids(body) == _ids(plain) and all("explanation" not in i for i in plain["items"])
    sources = set()
    for item in body["items"]:
        ex = item["explanation"]
        sources.add(ex["source"])
        values = [c["value"] for c in ex["contributions"]]
        assert len(values) == 3 and values == sorted(values, reverse=True)
        assert all(c["sentence"] and c["feature"] for c in ex["contributions"])
    assert sources <= {"als", "popular", "session"} and sources
    # All contributions plus the bias make the raw score, for the very rows returned.
    service = client.app.state.service  # type: ignore[attr-defined]
    rec = service.recommend("u11", 10, explain=True)
    for item in rec.items:
        ex = item.explanation
        assert ex is not None and len(ex.contributions) == len(service.state.model.feature_names)
        assert sum(c.value for c in ex.contributions) + ex.bias == pytest.approx(item.score, abs=1e-6)
    # Items a narrow filter filled in say so.
    _tag_rare(client, trained)
    r = client.get("/v1/users/u7/recommendations", params={"k": 10, "explain": "true", "filter": "tag=rare"})
    sources = [i["explanation"]["source"] for i in r.json()["items"]]
    assert sources[3:] == ["popular_fill"] * 7 and "popular_fill" not in sources[:3]


def test_rules_parse_rejects_what_cannot_work() -> None:
    from recsys.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError):
        Rules.parse(filters=["=3"])
    with pytest.raises(InvalidRequestError):
        Rules.parse(filters=["a=1"] * 21)
    assert Rules.parse(filters=["a=x|y"]).conditions[0].op == "in"


def test_a_new_item_reaches_users_of_its_category_before_any_refresh(trained: Trained, any_store: Store) -> None:
    settings = trained.settings.model_copy(deep=True)
    settings.rules.exploration_share = 0.1  # one position of ten
    with TestClient(create_app(settings, any_store, background_reload=False)) as c, \
            TestClient(create_app(trained.settings, any_store, background_reload=False)) as off:
        version = c.get("/v1/users/u7/recommendations").json()["candidates_version"]
        assert not any(i.startswith("fresh") for i in _ids(c.get("/v1/users/u7/recommendations").json()))
        items = [{"item_id": "fresh-3", "categories": ["cat3"]}, {"item_id": "fresh-1", "categories": ["cat1"]},
                 {"item_id": "fresh-hidden", "categories": ["cat3"], "availability": "hidden"}]
        assert c.post("/v1/items", json={"items": items}, headers=ADMIN).status_code == 200
        # u7 favours cat3, u5 cat1 (tests/helpers.py clusters): each gets the new item of its category.
        r7 = c.get("/v1/users/u7/recommendations", params={"k": 10, "explain": "true"}).json()
        r5 = c.get("/v1/users/u5/recommendations", params={"k": 10}).json()
        assert r7["candidates_version"] == version  # no refresh happened
        assert [i for i in _ids(r7) if i.startswith("fresh")] == ["fresh-3"] and len(r7["items"]) == 10
        assert [i for i in _ids(r5) if i.startswith("fresh")] == ["fresh-1"]
        new = next(i for i in r7["items"] if i["item_id"] == "fresh-3")
        assert new["explanation"]["source"] == "new_items" and new["rank"] == 6
        # Filters apply to new items too; with the slot off (the default) they are not served.
        r = c.get("/v1/users/u7/recommendations", params={"k": 10, "exclude_category": "cat3"}).json()
        assert "fresh-3" not in _ids(r)
        assert not any(i.startswith("fresh") for i in _ids(off.get("/v1/users/u7/recommendations").json()))
        # Marked unavailable, it is gone from the next request.
        assert c.patch("/v1/items/fresh-3", json={"availability": "hidden"}, headers=ADMIN).status_code == 200
        assert "fresh-3" not in _ids(c.get("/v1/users/u7/recommendations").json())
