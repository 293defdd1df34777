"""The calendar: the suite and the catalog work on every day up to the end of 2027.

The rest of the suite runs on one pinned day (tests/conftest.py). These tests move
``ORKESTRA_TODAY`` across every coming retirement date of the catalog (the day before, the day
itself) and on to 2027-12-31, and check what a user would hit on that day: every tier of every
provider resolves to a model that is not retired, has a price, and is served by the fake
provider server, which a real call through the official SDK proves.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import orkestra as o
from orkestra.catalog import Catalog, bundled_catalog, default_catalog, price_of, today
from orkestra.catalog.lifecycle import upcoming_retirements
from orkestra.cli import app
from orkestra.testing import FakeProviderServer

NATIVE = ("google", "anthropic", "openai")
LAST_DAY = dt.date(2027, 12, 31)
SRC = Path(__file__).resolve().parents[1] / "src" / "orkestra"


def _sweep_days() -> list[dt.date]:
    start = dt.date.fromisoformat("2026-12-03")
    days = {start, LAST_DAY}
    for m in bundled_catalog().models.values():
        if m.retires is not None and start <= m.retires <= LAST_DAY:
            days |= {m.retires - dt.timedelta(days=1), m.retires}
    return sorted(d for d in days if d >= start)


DAYS = _sweep_days()


def test_the_sweep_covers_the_announced_retirements() -> None:
    for day in ("2026-12-11", "2027-01-14", "2027-01-22"):
        assert dt.date.fromisoformat(day) in DAYS


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_every_tier_resolves_to_a_live_priced_model(day: dt.date) -> None:
    catalog = default_catalog()
    for name, info in catalog.providers.items():
        for tier in info.tiers:
            model = catalog.tier_model(name, tier, on=day)
            assert not model.retired_on(day), (day, name, tier, model.id)
            price = price_of(model, on=day)
            assert price.input >= 0 and price.output >= 0
            if info.requires_key:  # hosted APIs are never free; local models are $0
                assert price.input > 0 and price.output > 0, (day, name, model.id)


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_the_fake_serves_every_tier_model_on_the_day(
    day: dt.date, fake: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORKESTRA_TODAY", day.isoformat())
    for name in NATIVE:
        with o.Provider(name, fake.api_key, smart_routing=False) as provider:
            for tier, model in provider.tier_models().items():
                response = provider.chat(f"Hello on {day}", model=model.id, max_tokens=16)
                assert response.model == model.id, (day, name, tier)
                assert fake.requests[-1].model == model.id
                assert response.cost > 0


@pytest.mark.parametrize("day", [DAYS[0], dt.date(2026, 12, 11), dt.date(2027, 1, 14), LAST_DAY])
def test_the_quick_start_routes_and_bills_on_the_day(
    day: dt.date, fake: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORKESTRA_TODAY", day.isoformat())
    for name in NATIVE:
        with o.Provider(name, fake.api_key) as provider:
            response = provider.chat("Explain quantum computing")
            assert response.model in {m.id for m in provider.tier_models().values()}
            assert response.cost > 0 and response.base_cost >= response.cost


def test_a_retired_model_is_404_at_the_fake_and_never_sent(
    fake: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openai

    client = openai.OpenAI(api_key=fake.api_key, base_url=fake.openai_base_url, max_retries=0)
    monkeypatch.setenv("ORKESTRA_TODAY", "2026-12-10")
    assert client.chat.completions.create(
        model="o3", messages=[{"role": "user", "content": "hi"}], max_completion_tokens=5
    ).choices
    monkeypatch.setenv("ORKESTRA_TODAY", "2026-12-11")
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="o3", messages=[{"role": "user", "content": "hi"}], max_completion_tokens=5
        )
    client.close()
    with (
        o.Provider("openai", fake.api_key, smart_routing=False) as provider,
        pytest.warns(o.ModelAliasWarning, match="successor gpt-5.6-sol"),
    ):
        assert provider.chat("hi", model="o3").model == "gpt-5.6-sol"
    assert fake.requests[-1].model == "gpt-5.6-sol"


def test_the_fake_serves_a_model_registered_by_the_user(fake: FakeProviderServer) -> None:
    o.catalog.register_model(
        "openai", "ft:gpt-4o-mini:acme::abc123", input_price=0.3, output_price=1.2
    )
    try:
        with o.Provider("openai", fake.api_key) as provider:
            response = provider.chat("hi", model="ft:gpt-4o-mini:acme::abc123")
        assert fake.requests[-1].model == "ft:gpt-4o-mini:acme::abc123"
        assert response.cost > 0
    finally:
        o.catalog._default._reset_registered()


def test_any_key_mode_accepts_placeholder_keys() -> None:
    with FakeProviderServer(any_key=True) as server:
        for name in NATIVE:
            placeholder = f"YOUR_{name.upper()}_API_KEY"
            with o.Provider(name, placeholder, base_url=_base(server, name)) as p:
                assert p.chat("hi").text
    with (
        FakeProviderServer() as strict,
        o.Provider("openai", "YOUR_OPENAI_API_KEY", base_url=strict.openai_base_url) as p,
        pytest.raises(o.AuthenticationError),
    ):
        p.chat("hi")


def _base(server: FakeProviderServer, name: str) -> str:
    return {
        "openai": server.openai_base_url,
        "anthropic": server.anthropic_base_url,
        "google": server.google_base_url,
    }[name]


# -- warnings and `orkestra models --check` -----------------------------------------------


def test_a_provider_warns_once_about_a_tier_model_retiring_soon(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORKESTRA_TODAY", "2026-12-03")
    with pytest.warns(o.ModelRetirementWarning, match=r"o3 retires on 2026-12-11 \(in 8 days\)"):
        o.Provider("openai", "k").close()
    with pytest.warns(o.ModelRetirementWarning) as seen:  # once per process and model
        o.Provider("openai", "k").close()
        o.catalog.lifecycle.warnings.warn("other", o.ModelRetirementWarning)
    assert [str(w.message) for w in seen] == ["other"]


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2026-11-11", {"o3"}),
        ("2026-11-10", set()),  # 31 days ahead: outside the notice period
        ("2026-12-11", set()),  # the tier has moved to gpt-5.6-sol, which has no date
        ("2027-01-01", {"gpt-4o-mini", "gpt-4.1-mini"}),
        ("2027-02-01", set()),
    ],
)
def test_notices_cover_tier_models_within_thirty_days(
    day: str, expected: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORKESTRA_TODAY", day)
    assert {n.model for n in upcoming_retirements()} == expected


def _catalog_with_unpriced_successor() -> Catalog:
    data = json.loads((SRC / "catalog" / "models.json").read_text("utf-8"))
    data["models"].append(
        {
            "provider": "openai",
            "id": "gpt-9-unpriced",
            "context_window": 400_000,
            "max_output_tokens": 128_000,
        }
    )
    for m in data["models"]:
        if m["id"] == "o3":
            m["successor"] = "gpt-9-unpriced"
    return Catalog.from_dict(data)


def test_an_unpriced_successor_is_reported() -> None:
    catalog = _catalog_with_unpriced_successor()
    (notice,) = upcoming_retirements(catalog, on=dt.date(2026, 12, 3), providers=["openai"])
    assert notice.successor == "gpt-9-unpriced" and notice.successor_unpriced
    assert "has no price" in notice.message and "PricingError" in notice.message
    # Unpriced successors are reported whatever the notice period: they will break calls.
    (early,) = upcoming_retirements(catalog, on=dt.date(2026, 6, 1), providers=["openai"])
    assert early.model == "o3" and early.days_left == 193


def test_models_check_lists_coming_retirements_and_exits_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = CliRunner()
    monkeypatch.setenv("ORKESTRA_TODAY", "2027-01-01")
    result = runner.invoke(app, ["models", "--check"])
    assert result.exit_code == 1, result.output
    assert "gpt-4o-mini retires on 2027-01-14 (in 13 days)" in result.output
    assert "sends gpt-5.6-luna" in result.output
    rows = json.loads(runner.invoke(app, ["models", "--check", "--json"]).output)
    assert {r["model"] for r in rows} == {"gpt-4o-mini", "gpt-4.1-mini"}
    assert all(r["successor_priced"] for r in rows)
    monkeypatch.setenv("ORKESTRA_TODAY", "2027-02-01")
    result = runner.invoke(app, ["models", "--check"])
    assert result.exit_code == 0
    assert "no tier model retires within 30 days of 2027-02-01" in result.output
    assert runner.invoke(app, ["models", "--check", "--days", "400"]).exit_code == 0


def test_a_malformed_orkestra_today_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORKESTRA_TODAY", "next tuesday")
    with pytest.raises(o.ConfigurationError, match="ORKESTRA_TODAY"):
        today()


def test_nothing_but_the_catalog_reads_the_calendar() -> None:
    """Catalog decisions go through orkestra.catalog.today()/now(), which ORKESTRA_TODAY moves;
    other uses of the clock (usage timestamps) don't choose models or prices."""
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if re.search(r"\bdate\.today\(\)", path.read_text("utf-8"))
        and path.relative_to(SRC).as_posix() != "catalog/_types.py"
    ]
    assert offenders == []
