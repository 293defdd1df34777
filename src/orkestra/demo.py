"""``orkestra demo``: the whole pipeline on a fresh machine, offline, with no API key.

It starts the built-in fake providers (:mod:`orkestra.testing`) on 127.0.0.1, points the real
SDKs at them, routes and calls a handful of varied prompts through every provider and through a
``MultiProvider``, streams one answer, holds a short conversation with a tool call on one model
(its prompt cache warm), and prints the routing table and the cost/savings summary.
The answers are the fake server's (deterministic echoes); routing, token accounting, prices and
savings are the real code paths.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from orkestra._multi import MultiProvider
from orkestra._provider import Provider
from orkestra._session import Conversation
from orkestra._types import Response

__all__ = ["DEMO_PROMPTS", "run_demo"]

DEMO_PROMPTS: tuple[str, ...] = (
    "What is the capital of Japan?",
    "Translate 'good morning' into French.",
    "Explain how a hash table works with collision handling",
    "A train leaves at 3pm going 60 mph; another at 4pm going 80 mph. When does the second "
    "catch up? Show your reasoning step by step.",
    "Implement a B-tree with insert and search in Python. Handle node splitting, maintain "
    "sorted keys, and include a method to print the tree level by level.",
    "Prove that there are infinitely many primes.",
)
PROVIDERS = ("google", "anthropic", "openai")
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
AGENT_BRIEF = (
    "You are the assistant of a small travel agency. Answer precisely, name your sources, and "
    "ask before booking anything. "
) * 40  # long enough (~1,200 tokens) for the providers' prompt caches


def _conversation(console: Console, provider: Provider) -> list[Response]:
    """A sticky conversation with a tool call: the same model every turn, the cache warm."""
    console.print(f"\n[bold]Conversation[/] ({provider.name}, a long system prompt, one tool):")
    chat = Conversation(provider, system=AGENT_BRIEF, tools=[WEATHER_TOOL], max_tokens=512)
    turns = [chat.chat("What is the weather in Lisbon today?")]
    for call in turns[-1].tool_calls:
        console.print(f"  tool call: {call.name}({call.arguments})")
        chat.add_tool_result(call.id, {"city": "Lisbon", "celsius": 21, "sky": "clear"})
    turns.append(chat.chat())
    turns.append(chat.chat("Good. Do I need a jacket in the evening?"))
    for number, r in enumerate(turns, 1):
        cache = f"{r.usage.cache_read_tokens} read from the cache"
        if r.usage.cache_write_tokens:
            cache += f", {r.usage.cache_write_tokens} written to it"
        console.print(
            f"  turn {number}: {r.model} ({r.tier}) · {r.input_tokens} in ({cache}) · "
            f"${r.cost:.6f}, caching saved ${r.cache_savings:.6f}"
        )
    console.print(
        f"  [dim]{len(turns)} turns on one model; the prompt cache saved "
        f"${chat.cache_savings:.6f} of ${chat.cost + chat.cache_savings:.6f}[/]"
    )
    return turns


def run_demo(
    console: Console | None = None, *, stream_out: Callable[[str], None] | None = None
) -> list[Response]:
    """Run the demo and return every response it got (the CLI prints as it goes)."""
    from orkestra.testing import FakeProviderServer

    console = console or Console(width=None if Console().is_terminal else 120)
    responses: list[Response] = []
    with FakeProviderServer() as server:
        console.print(f"[bold]Fake providers[/] listening on {server.url} (no network, no key)\n")
        providers = [
            Provider(
                name,
                server.api_key,
                base_url=server.openai_base_url if name == "openai" else server.url,
                usage_sink=None,  # fake calls stay out of the user's usage log
            )
            for name in PROVIDERS
        ]
        table = Table(title="Routing and cost, per provider", show_lines=False)
        for column in ("prompt", "provider", "model", "tier", "tokens in/out", "cost", "saved"):
            table.add_column(column, overflow="fold")
        for prompt in DEMO_PROMPTS:
            for provider in providers:
                r = provider.chat(prompt, max_tokens=1024)
                responses.append(r)
                table.add_row(
                    prompt[:38] + ("…" if len(prompt) > 38 else ""),
                    r.provider,
                    r.model,
                    r.tier,
                    f"{r.input_tokens}/{r.output_tokens}",
                    f"${r.cost:.6f}",
                    f"{r.savings_percent:.0f}%",
                )
        console.print(table)

        multi = MultiProvider(providers)
        strategies = Table(title="MultiProvider strategies")
        for column in ("prompt", "strategy", "chosen", "tier", "cost", "saved vs premium"):
            strategies.add_column(column, overflow="fold")
        for prompt in (DEMO_PROMPTS[0], DEMO_PROMPTS[4]):
            for strategy in ("cheapest", "smartest", "balanced"):
                r = multi.chat(prompt, strategy=strategy, max_tokens=1024)
                responses.append(r)
                strategies.add_row(
                    prompt[:38] + ("…" if len(prompt) > 38 else ""),
                    strategy,
                    f"{r.provider}/{r.model}",
                    r.tier,
                    f"${r.cost:.6f}",
                    f"${r.savings:.6f} ({r.savings_percent:.0f}%)",
                )
        console.print(strategies)

        console.print("\n[bold]Streaming[/] (google, 'Write a poem about the sea'):")
        stream = providers[0].stream("Write a poem about the sea", max_tokens=256)
        for chunk in stream:
            (stream_out or (lambda text: console.print(text, end="", markup=False)))(chunk)
        console.print()
        if stream.response is not None:
            responses.append(stream.response)
            console.print(f"  [dim]{stream.response.summary()}[/]")

        responses += _conversation(console, providers[1])

    total = sum(r.cost for r in responses)
    base = sum(r.base_cost for r in responses)
    tiers = {t: sum(r.tier == t for r in responses) for t in ("budget", "balanced", "premium")}
    console.print(
        f"\n[bold]Summary[/]: {len(responses)} calls, cost ${total:.6f}, "
        f"premium-model cost on the same tokens ${base:.6f}, "
        f"saved ${base - total:.6f} ({100 * (base - total) / base if base else 0:.0f}%). "
        f"Tiers: {tiers}."
    )
    return responses
