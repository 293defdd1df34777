"""OpenAI-compatible presets, catalog prices, and the user's own models (models={...},
register_model, ORKESTRA_CATALOG)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import orkestra as o
from orkestra.catalog import (
    Catalog,
    ModelInfo,
    Price,
    ProviderInfo,
    _default,
    bundled_catalog,
    cost_of,
    default_catalog,
    price_of,
    register_model,
)
from orkestra.providers import make_adapter
from orkestra.providers.base import ChatRequest, ClientSettings, Message

COMPATIBLE = ("deepseek", "groq", "mistral", "together", "ollama", "vllm", "openai-compatible")
PEAK = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)  # DeepSeek's standard hours
OFF_PEAK = dt.datetime(2026, 11, 26, 20, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(autouse=True)
def _no_user_models(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from the bundled catalog: no file, nothing registered."""
    monkeypatch.delenv("ORKESTRA_CATALOG", raising=False)
    _default._reset_registered()
    yield
    _default._reset_registered()


# -- the presets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "base_url", "keys", "requires_key"),
    [
        ("deepseek", "https://api.deepseek.com/v1", ("DEEPSEEK_API_KEY",), True),
        ("groq", "https://api.groq.com/openai/v1", ("GROQ_API_KEY",), True),
        ("mistral", "https://api.mistral.ai/v1", ("MISTRAL_API_KEY",), True),
        ("together", "https://api.together.xyz/v1", ("TOGETHER_API_KEY",), True),
        ("ollama", "http://localhost:11434/v1", (), False),
        ("vllm", "http://localhost:8000/v1", ("VLLM_API_KEY",), False),
        ("openai-compatible", None, ("OPENAI_COMPATIBLE_API_KEY",), False),
    ],
)
def test_presets_are_openai_compatible_providers(
    name: str, base_url: str | None, keys: tuple[str, ...], requires_key: bool
) -> None:
    info = default_catalog().provider(name)
    assert (info.adapter, info.compatible, info.base_url) == ("openai", True, base_url)
    assert (info.env_keys, info.requires_key) == (keys, requires_key)


def test_the_three_providers_keep_their_own_adapters() -> None:
    for name in ("openai", "anthropic", "google"):
        info = default_catalog().provider(name)
        assert (info.adapter, info.base_url, info.requires_key, info.compatible) == (
            name,
            None,
            True,
            False,
        )


def test_ollama_base_url_variable_and_local_models() -> None:
    catalog = default_catalog()
    assert catalog.provider("ollama").env_base_url == "OLLAMA_BASE_URL"
    assert catalog.provider("vllm").env_base_url == "VLLM_BASE_URL"
    tiers = [catalog.tier_model("ollama", t).id for t in o.TIERS]
    assert tiers == ["llama3.2:3b", "qwen2.5:14b", "llama3.3:70b"]
    for model_id in tiers:
        model = catalog.model("ollama", model_id)
        assert "vision" not in model.capabilities and "tools" in model.capabilities
        assert price_of(model) == Price(0.0, 0.0)
        assert cost_of(model, o.Usage(input_tokens=5000, output_tokens=900)).total == 0.0


def test_deepseek_tiers_share_a_model_and_are_priced_by_genai_prices() -> None:
    catalog = default_catalog()
    assert [catalog.tier_model("deepseek", t).id for t in o.TIERS] == [
        "deepseek-chat",
        "deepseek-chat",
        "deepseek-reasoner",
    ]
    chat = catalog.model("deepseek", "deepseek-chat")
    assert chat.price is None and chat.price_provider == "deepseek"
    usage = o.Usage(input_tokens=1000, cache_read_tokens=400, output_tokens=100)
    cost = cost_of(chat, usage, when=PEAK)  # genai-prices: $0.27 in, $0.07 cached, $1.10 out
    assert cost.input_cost == pytest.approx((600 * 0.27 + 400 * 0.07) / 1e6)
    assert cost.output_cost == pytest.approx(100 * 1.10 / 1e6)


@pytest.mark.parametrize(
    ("provider", "model", "price_in", "price_out"),
    [
        ("groq", "llama-3.1-8b-instant", 0.05, 0.08),
        ("groq", "openai/gpt-oss-120b", 0.15, 0.60),
        ("mistral", "mistral-large-2512", 0.50, 1.50),
        ("together", "openai/gpt-oss-120b", 0.15, 0.60),
    ],
)
def test_preset_prices_come_from_genai_prices(
    provider: str, model: str, price_in: float, price_out: float
) -> None:
    price = price_of(default_catalog().model(provider, model))
    assert (price.input, price.output) == pytest.approx((price_in, price_out))


@pytest.mark.parametrize("when", [PEAK, OFF_PEAK])
def test_every_tiered_provider_is_ordered_by_price(when: dt.datetime) -> None:
    catalog = default_catalog()
    for info in catalog.providers.values():
        if set(info.tiers) != set(o.TIERS):
            continue
        blended = [
            cost_of(catalog.tier_model(info.name, t), o.Usage(500, 1000), when=when).total
            for t in o.TIERS
        ]
        assert blended == sorted(blended), (info.name, blended)


@pytest.mark.parametrize("name", ["vllm", "openai-compatible"])
def test_a_provider_without_tiers_asks_for_models(name: str) -> None:
    catalog = default_catalog()
    assert catalog.provider(name).tiers == {}
    assert list(catalog.provider_models(name)) == []
    with pytest.raises(o.ConfigurationError, match=r"models=\{\.\.\.\}"):
        catalog.tier_model(name, "budget")
    assert catalog.tier_of(name, "anything") is None


def test_catalog_schema_defaults_for_a_minimal_provider() -> None:
    data = {
        "as_of": "2026-11-26",
        "providers": {
            "box": {"display_name": "Box", "env_base_url": "BOX_URL", "adapter": "openai"}
        },
        "models": [
            {
                "provider": "box",
                "id": "m",
                "context_window": 10,
                "max_output_tokens": 5,
                "price": {"input": 1, "output": 2, "source": "a note", "checked": "2026-11-26"},
            }
        ],
    }
    catalog = Catalog.from_dict(data)
    info = catalog.provider("box")
    assert (info.price_provider, info.tiers, info.env_keys) == ("box", {}, ())
    assert (info.requires_key, info.compatible, info.base_url) == (True, False, None)
    assert catalog.models[("box", "m")].price == Price(1.0, 2.0)


def test_adapter_defaults_to_the_provider_name() -> None:
    info = ProviderInfo("google", "Google", ("K",), "URL", "google", {})
    assert info.adapter == "google"


def test_catalog_refuses_an_unknown_adapter() -> None:
    data = {
        "as_of": "2026-11-26",
        "providers": {"x": {"display_name": "X", "env_base_url": "X_URL", "adapter": "cohere"}},
        "models": [],
    }
    with pytest.raises(ValueError, match="unknown adapter cohere"):
        Catalog.from_dict(data)


# -- prices held in the catalog ------------------------------------------------------------


def _priced(price: Price) -> ModelInfo:
    return ModelInfo("vllm", "m", 100_000, 8192, price=price, price_provider="vllm")


def test_catalog_price_bills_cache_reads_and_writes_at_their_rates() -> None:
    model = _priced(Price(2.0, 8.0, cached_input=0.5, cache_write=2.5))
    usage = o.Usage(
        input_tokens=1000, cache_read_tokens=400, cache_write_tokens=100, output_tokens=50
    )
    cost = cost_of(model, usage)
    assert cost.input_cost == pytest.approx((500 * 2.0 + 400 * 0.5 + 100 * 2.5) / 1e6)
    assert cost.output_cost == pytest.approx(50 * 8.0 / 1e6)
    assert price_of(model) == model.price


def test_catalog_price_without_cache_rates_bills_cache_at_the_input_rate() -> None:
    usage = o.Usage(
        input_tokens=1000, cache_read_tokens=400, cache_write_tokens=100, output_tokens=50
    )
    cost = cost_of(_priced(Price(2.0, 8.0)), usage)
    assert cost.input_cost == pytest.approx(1000 * 2.0 / 1e6)


def test_a_model_of_an_unlisted_provider_is_priced_by_its_price_provider() -> None:
    # No catalog has a provider "my-gateway": pricing needs only the model's price_provider.
    model = ModelInfo("my-gateway", "gpt-4o-mini", 128_000, 16_384, price_provider="openai")
    cost = cost_of(model, o.Usage(input_tokens=1000, output_tokens=500))
    assert cost.input_cost == pytest.approx(1000 * 0.15 / 1e6)


def test_a_model_nobody_prices_is_an_error_not_zero() -> None:
    model = ModelInfo("groq", "my-finetune", 8192, 1024, price_provider="groq")
    with pytest.raises(o.PricingError, match="my-finetune"):
        cost_of(model, o.Usage(input_tokens=1, output_tokens=1))


# -- Catalog.with_models ---------------------------------------------------------------------


def test_with_models_sets_tiers_from_ids_and_creates_free_local_entries() -> None:
    base = default_catalog()
    catalog = base.with_models("vllm", {"budget": "my-small", "premium": "my-big"})
    tiers = [catalog.tier_model("vllm", t).id for t in o.TIERS]
    assert tiers == ["my-small", "my-small", "my-big"]  # balanced: the nearest, cheaper side
    big = catalog.model("vllm", "my-big")
    assert (big.price, big.capabilities, big.context_window) == (
        Price(0.0, 0.0),
        frozenset(),
        131_072,
    )
    assert base.provider("vllm").tiers == {}  # the original is unchanged
    assert ("vllm", "my-big") not in base.models


def test_one_given_tier_serves_all_three() -> None:
    catalog = default_catalog().with_models("openai-compatible", {"balanced": "only"})
    assert {catalog.tier_model("openai-compatible", t).id for t in o.TIERS} == {"only"}


def test_missing_tiers_take_the_nearest_given_one() -> None:
    catalog = default_catalog().with_models(
        "ollama", {"premium": "llama3.3:70b", "budget": "qwen2.5:14b"}
    )
    assert catalog.provider("ollama").tiers == {
        "budget": "qwen2.5:14b",
        "balanced": "qwen2.5:14b",
        "premium": "llama3.3:70b",
    }
    catalog = default_catalog().with_models("groq", {"budget": "llama-3.3-70b-versatile"})
    assert catalog.tier_model("groq", "premium").id == "llama-3.3-70b-versatile"


def test_with_models_dict_creates_a_priced_entry() -> None:
    catalog = default_catalog().with_models(
        "openai-compatible",
        {
            "premium": {
                "id": "gateway/big",
                "input_price": 3,
                "output_price": 15,
                "cached_input_price": 0.3,
                "context_window": 200_000,
                "max_output_tokens": 32_000,
                "capabilities": ["tools", "vision"],
                "reasoning": True,
            }
        },
    )
    big = catalog.tier_model("openai-compatible", "budget")
    assert big.id == "gateway/big" and big.reasoning
    assert (big.context_window, big.max_output_tokens) == (200_000, 32_000)
    assert big.capabilities == {"tools", "vision"}
    usage = o.Usage(input_tokens=1000, cache_read_tokens=500, output_tokens=100)
    assert cost_of(big, usage).total == pytest.approx((500 * 3 + 500 * 0.3 + 100 * 15) / 1e6)


def test_with_models_dict_overrides_an_existing_entry() -> None:
    catalog = default_catalog().with_models(
        "openai", {"budget": {"id": "gpt-4o-mini", "input_price": 0.1, "output_price": 0.4}}
    )
    model = catalog.tier_model("openai", "budget", on=dt.date(2026, 11, 26))
    assert model.price == Price(0.1, 0.4)
    assert model.retires == dt.date(2027, 1, 14)  # the rest of the entry is kept
    # A catalog price can then be changed one field at a time.
    again = catalog.with_models("openai", {"budget": {"id": "gpt-4o-mini", "output_price": 0.3}})
    assert again.models[("openai", "gpt-4o-mini")].price == Price(0.1, 0.3)


def test_with_models_accepts_a_known_alias_and_a_genai_priced_new_id() -> None:
    catalog = default_catalog().with_models(
        "groq", {"budget": "llama-3.1-8b-instant", "premium": "qwen/qwen3-32b"}
    )
    qwen = catalog.tier_model("groq", "premium")
    assert qwen.price is None and price_of(qwen).input == pytest.approx(0.29)
    catalog = default_catalog().with_models("anthropic", {"balanced": "claude-haiku-4"})
    assert catalog.provider("anthropic").tiers["premium"] == "claude-haiku-4-5"


def test_a_paid_provider_needs_a_price_for_an_unknown_model() -> None:
    with pytest.raises(o.PricingError, match="input_price and output_price"):
        default_catalog().with_models("groq", {"budget": "my-finetune"})
    catalog = default_catalog().with_models(
        "groq", {"budget": {"id": "my-finetune", "input_price": 0.1, "output_price": 0.2}}
    )
    assert catalog.tier_model("groq", "premium").price == Price(0.1, 0.2)


@pytest.mark.parametrize(
    ("provider", "models", "error", "message"),
    [
        ("vllm", {}, o.ConfigurationError, "non-empty mapping"),
        ("vllm", {"cheap": "m"}, o.ConfigurationError, "'cheap' is not a tier"),
        ("vllm", {"budget": 42}, o.ConfigurationError, "model id or a dict"),
        ("vllm", {"budget": {"name": "m"}}, o.ConfigurationError, r"unknown key\(s\) \['name'\]"),
        ("vllm", {"budget": {"id": ""}}, o.ConfigurationError, "'id' must be"),
        (
            "vllm",
            {"budget": {"id": "m", "input_price": -1, "output_price": 1}},
            o.ConfigurationError,
            "≥ 0",
        ),
        (
            "vllm",
            {"budget": {"id": "m", "input_price": True, "output_price": 1}},
            o.ConfigurationError,
            "number",
        ),
        (
            "vllm",
            {"budget": {"id": "m", "input_price": 1}},
            o.ConfigurationError,
            "both input_price",
        ),
        (
            "vllm",
            {"budget": {"id": "m", "context_window": 0}},
            o.ConfigurationError,
            "context_window",
        ),
        (
            "vllm",
            {"budget": {"id": "m", "context_window": 1000, "max_output_tokens": 2000}},
            o.ConfigurationError,
            "above context_window",
        ),
        (
            "vllm",
            {"budget": {"id": "m", "capabilities": "tools"}},
            o.ConfigurationError,
            "must be a list",
        ),
        (
            "vllm",
            {"budget": {"id": "m", "capabilities": ["audio"]}},
            o.ConfigurationError,
            "unknown capabilities",
        ),
        (
            "vllm",
            {"budget": {"id": "m", "reasoning": "yes"}},
            o.ConfigurationError,
            "true or false",
        ),
        ("openai", {"budget": "gpt-9"}, o.UnknownModelError, "'gpt-9'"),
        ("gemni", {"budget": "m"}, o.UnknownProviderError, "'gemni'"),
    ],
)
def test_with_models_errors_say_what_is_wrong(
    provider: str, models: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        default_catalog().with_models(provider, models)


# -- register_model ----------------------------------------------------------------------------


def test_register_model_adds_a_fine_tune_to_the_process_catalog() -> None:
    before = default_catalog()
    assert default_catalog() is before  # kept while nothing changes
    register_model(
        "openai",
        "ft:gpt-4o-mini:acme::x1",
        input_price=0.3,
        output_price=1.2,
        context_window=128_000,
        max_output_tokens=16_384,
        capabilities=["tools", "json"],
    )
    after = default_catalog()
    assert after is not before and ("openai", "ft:gpt-4o-mini:acme::x1") not in before.models
    model = after.model("openai", "ft:gpt-4o-mini:acme::x1")
    assert model.capabilities == {"tools", "json"}
    assert cost_of(model, o.Usage(1000, 1000)).total == pytest.approx((300 + 1200) / 1e6)


def test_register_model_overrides_a_price_and_sets_a_tier() -> None:
    register_model("openai", "gpt-4o", input_price=2.0, output_price=8.0, tier="balanced")
    catalog = default_catalog()
    assert catalog.provider("openai").tiers["balanced"] == "gpt-4o"
    assert catalog.provider("openai").tiers["budget"] == "gpt-4o-mini"  # others unchanged
    assert price_of(catalog.model("openai", "gpt-4o")) == Price(2.0, 8.0)
    assert bundled_catalog().models[("openai", "gpt-4o")].price is None


def test_register_model_gives_a_local_server_its_tiers() -> None:
    register_model("vllm", "served-small", tier="budget")
    catalog = default_catalog()
    assert {catalog.tier_model("vllm", t).id for t in o.TIERS} == {"served-small"}
    register_model("vllm", "served-big", tier="premium", context_window=32_768)
    catalog = default_catalog()
    assert [catalog.tier_model("vllm", t).id for t in o.TIERS] == [
        "served-small",
        "served-small",
        "served-big",
    ]
    assert catalog.model("vllm", "served-big").max_output_tokens == 8192


def test_a_bad_registration_raises_and_is_not_kept() -> None:
    with pytest.raises(o.PricingError, match="register_model\\('groq', 'mystery'\\)"):
        register_model("groq", "mystery")
    with pytest.raises(o.UnknownProviderError, match="'nope'"):
        register_model("nope", "m", input_price=1, output_price=1)
    with pytest.raises(o.ConfigurationError, match="'gold' is not a tier"):
        register_model("vllm", "m", tier="gold")  # type: ignore[arg-type]
    assert ("groq", "mystery") not in default_catalog().models
    assert ("vllm", "m") not in default_catalog().models


# -- ORKESTRA_CATALOG ----------------------------------------------------------------------------

TOML = """
[[models]]
provider = "vllm"
id = "Qwen/Qwen2.5-7B-Instruct"
tier = "budget"
context_window = 32768
capabilities = ["tools", "json"]

[[models]]
provider = "openai"
id = "gpt-4o-mini"
input_price = 0.12
output_price = 0.48
"""


def test_catalog_file_in_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "models.toml"
    path.write_text(TOML, encoding="utf-8")
    monkeypatch.setenv("ORKESTRA_CATALOG", str(path))
    catalog = default_catalog()
    qwen = catalog.tier_model("vllm", "premium")
    assert (qwen.id, qwen.context_window, qwen.price) == (
        "Qwen/Qwen2.5-7B-Instruct",
        32768,
        Price(0.0, 0.0),
    )
    assert catalog.models[("openai", "gpt-4o-mini")].price == Price(0.12, 0.48)
    # Python registrations come on top of the file.
    register_model("openai", "gpt-4o-mini", output_price=0.5)
    assert default_catalog().models[("openai", "gpt-4o-mini")].price == Price(0.12, 0.5)


def test_catalog_file_in_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "models.json"
    entry = {
        "provider": "groq",
        "id": "my-ft",
        "tier": "premium",
        "input_price": 1,
        "output_price": 2,
    }
    path.write_text(json.dumps({"models": [entry]}), encoding="utf-8")
    monkeypatch.setenv("ORKESTRA_CATALOG", str(path))
    catalog = default_catalog()
    assert catalog.tier_model("groq", "premium").price == Price(1.0, 2.0)
    assert catalog.tier_model("groq", "budget").id == "llama-3.1-8b-instant"
    monkeypatch.delenv("ORKESTRA_CATALOG")
    assert ("groq", "my-ft") not in default_catalog().models


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.toml", "[[models]\nprovider = 'vllm'", "not valid TOML"),
        ("bad.json", '{"models": [', "not valid JSON"),
        ("bad.yaml", "models: []", "must end in .json or .toml"),
        ("bad.json", '{"model": []}', "expected only a list of models"),
        ("bad.json", '{"models": ["vllm"]}', r"models\[0\]: must be a table"),
        ("bad.toml", "[[models]]\nid = 'm'", r"models\[0\] \(m\): 'provider' must be"),
        (
            "bad.toml",
            "[[models]]\nprovider = 'vllm'\nid = 'ok'\n\n[[models]]\nprovider = 'vllm'\n"
            "id = 'm'\ninput_price = 'cheap'\noutput_price = 1",
            r"models\[1\] \(vllm/m\): input_price must be a number",
        ),
        (
            "bad.toml",
            "[[models]]\nprovider = 'vllm'\nid = 'm'\nprice = 1",
            r"unknown key\(s\) \['price'\]",
        ),
        ("bad.toml", "[[models]]\nprovider = 'gemni'\nid = 'm'", "unknown provider 'gemni'"),
        ("bad.toml", "[[models]]\nprovider = 'groq'\nid = 'm'", "no price known"),
        (
            "bad.toml",
            "[[models]]\nprovider = 'vllm'\nid = 'm'\ntier = 'top'",
            "'top' is not a tier",
        ),
    ],
)
def test_a_malformed_catalog_file_is_a_data_format_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("ORKESTRA_CATALOG", str(path))
    with pytest.raises(o.DataFormatError, match=message) as caught:
        default_catalog()
    assert str(path) in str(caught.value)


def test_a_missing_catalog_file_is_a_data_format_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORKESTRA_CATALOG", str(tmp_path / "nowhere.toml"))
    with pytest.raises(o.DataFormatError, match=r"nowhere\.toml: cannot be read"):
        default_catalog()


# -- make_adapter ------------------------------------------------------------------------------


def test_make_adapter_picks_the_adapter_the_catalog_names() -> None:
    for name in COMPATIBLE[:-1]:
        adapter = make_adapter(name, ClientSettings("sk-secret-123"))
        assert type(adapter).__name__ == "OpenAIAdapter"
        shown = repr(adapter)
        assert default_catalog().provider(name).base_url in shown  # type: ignore[operator]
        assert "compatible=True" in shown and "sk-secret-123" not in shown
        adapter.close()
    openai = make_adapter("openai", ClientSettings("k"))
    assert "compatible=False" in repr(openai) and "base_url=None" in repr(openai)
    assert type(make_adapter("anthropic", ClientSettings("k"))).__name__ == "AnthropicAdapter"


def test_make_adapter_takes_a_provider_info_and_keeps_an_explicit_base_url() -> None:
    info = ProviderInfo("lab", "Lab", (), "LAB_URL", "lab", {}, adapter="openai", compatible=True)
    adapter = make_adapter(info, ClientSettings("k", "http://127.0.0.1:9/v1"))
    assert "http://127.0.0.1:9/v1" in repr(adapter)


def test_make_adapter_errors() -> None:
    with pytest.raises(o.ConfigurationError, match="base_url"):
        make_adapter("openai-compatible", ClientSettings("k"))
    with pytest.raises(o.UnknownProviderError, match="'gemni'"):
        make_adapter("gemni", ClientSettings("k"))
    info = ProviderInfo("x", "X", (), "X_URL", "x", {}, adapter="cohere")
    with pytest.raises(o.UnknownProviderError, match="no adapter 'cohere'"):
        make_adapter(info, ClientSettings("k"))


def test_a_preset_adapter_speaks_openai_and_sends_no_openai_only_fields(fake: Any) -> None:
    """Over the fake's OpenAI endpoint: a groq adapter makes a real Chat Completions call, and
    a compatible one leaves out OpenAI's ``prompt_cache_key``."""
    model = default_catalog().tier_model("openai", "budget")
    request = ChatRequest(model, (Message("user", "What is 2+2?"),), 64, 0.5, session="s-1")
    groq = make_adapter("groq", ClientSettings(fake.api_key, fake.openai_base_url))
    try:
        text, finished = groq.complete(request)
    finally:
        groq.close()
    assert text and finished.usage.output_tokens > 0
    body = fake.requests[-1].body
    assert body["model"] == model.id and "prompt_cache_key" not in body
    openai = make_adapter("openai", ClientSettings(fake.api_key, fake.openai_base_url))
    try:
        openai.complete(request)
    finally:
        openai.close()
    assert fake.requests[-1].body["prompt_cache_key"] == "s-1"


# -- the CLI -----------------------------------------------------------------------------------


def test_models_command_lists_presets_capabilities_and_prices() -> None:
    from typer.testing import CliRunner

    from orkestra.cli import app

    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert "https://api.groq.com/openai/v1" in result.output
    assert "no models until you name them (models={...}): vllm, openai-compatible" in result.output
    line = next(x for x in result.output.splitlines() if "mistral-large-2512" in x)
    assert "premium" in line and "json,tools,vision" in line and "$0.50/$1.50" in line
    result = CliRunner().invoke(app, ["models", "--json", "-p", "ollama", "-p", "deepseek"])
    rows = {r["model"]: r for r in json.loads(result.output)}
    assert rows["qwen2.5:14b"]["capabilities"] == ["json", "tools"]
    assert (rows["qwen2.5:14b"]["input_per_mtok"], rows["qwen2.5:14b"]["price_source"]) == (
        0.0,
        "catalog",
    )
    assert rows["deepseek-chat"]["tiers"] == ["budget", "balanced"]
    assert rows["deepseek-chat"]["price_source"] == "genai-prices"


def test_prices_command_names_each_price_source() -> None:
    from typer.testing import CliRunner

    from orkestra.cli import app

    result = CliRunner().invoke(app, ["prices", "--json", "-p", "groq", "-p", "ollama"])
    sources = {r["model"]: r["source"] for r in json.loads(result.output)}
    assert sources["openai/gpt-oss-20b"] == "genai-prices" and sources["llama3.2:3b"] == "catalog"
    result = CliRunner().invoke(app, ["prices", "-p", "nope"])
    assert result.exit_code == 2 and "unknown provider 'nope'" in result.output
