"""One model request on its way through the proxy (:class:`ProxyCall`): who asked, for what,
where it goes, and how its end is logged, counted, traced and released."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable

from orkestra import Attempt, Response, RoutingDecision
from orkestra.server.answers import invalid_answer
from orkestra.server.auth import Client
from orkestra.server.dispatch import Destination, Dispatcher, spellings
from orkestra.server.limits import NO_LIMITS, Permit
from orkestra.server.metrics import ProxyMetrics, RequestLabels, observe_call
from orkestra.server.request import ChatParams
from orkestra.server.tracing import CallSpan
from orkestra.usage import UsageSink

__all__ = ["ProxyCall", "names_of", "tokens"]

logger = logging.getLogger("orkestra.server")


@dataclasses.dataclass
class ProxyCall:
    """One chat request on its way through: who asked, for what, and how it is logged (the
    library records it in the usage log, through the sink this request labels)."""

    metrics: ProxyMetrics | None
    app_sink: UsageSink | None
    """The app's usage sink (None: no usage log), labelled per request by :meth:`usage_sink`."""
    dispatcher: Dispatcher
    client: Client
    params: ChatParams
    destination: Destination
    request_id: str
    started: float
    labels: RequestLabels = dataclasses.field(default_factory=RequestLabels)
    span: CallSpan | None = None
    permit: Permit = NO_LIMITS
    """The key's rate-limit slot, released with the tokens the call used when it ends."""
    route: str = "/v1/chat/completions"

    def _observe(self, response: Response | None, error: BaseException | None) -> None:
        if self.span is not None:
            try:
                self.span.end(response, error)
            except Exception:  # never fail an answer for its trace
                logger.exception("tracing: ending the span of %s failed", self.request_id)
        routed = self.destination.requested if self.destination.model is None else None
        observe_call(
            self.metrics,
            self.labels,
            response,
            error,
            key_id=self.client.key_id or "",
            routed_to=routed,
            seconds=time.perf_counter() - self.started,
            route=self.route,
        )

    def usage_sink(self) -> UsageSink | None:
        """The app's usage sink, labelled with this request's key, id and question."""
        sink = self.app_sink
        if sink is None:
            return None
        return sink.labelled(
            key_id=self.client.key_id,
            record_id=self.request_id,
            prompt=self.params.last_user_text,
        )

    def _log_line(self, status: str, where: str, cost: float) -> None:
        logger.info(
            "chat %s key=%s user=%s model=%s -> %s %s $%.6f %.1fms",
            self.request_id,
            self.client.name or "-",
            self.params.user or "-",
            self.params.model,
            where,
            status,
            cost,
            (time.perf_counter() - self.started) * 1000.0,
        )

    def ignored_params(self, response: Response) -> tuple[str, ...]:
        return self.dispatcher.ignored_params(self.params, response)

    def succeeded(self, response: Response) -> None:
        self.permit.release(tokens(response.attempts))
        self._log_line("ok", f"{response.provider}/{response.model}", response.total_cost)
        self._observe(response, None)

    def failed(self, error: BaseException, routing: RoutingDecision | None) -> None:
        answer = invalid_answer(error)
        self.permit.release(tokens(answer.attempts if answer else getattr(error, "attempts", ())))
        if answer is not None:  # made and billed, but not what response_format asked for
            where, cost = f"{answer.provider}/{answer.model}", answer.total_cost
            self._observe(answer, None)  # answered and billed: observed as an answer
        else:
            self._observe(None, error)
            attempts = getattr(error, "attempts", ())
            single = self.destination.providers[0] if len(self.destination.providers) == 1 else None
            where = getattr(error, "provider", None) or single or "-"
            cost = sum(a.cost for a in attempts)
        self._log_line(type(error).__name__, where, cost)


def names_of(destination: Destination) -> tuple[str, ...]:
    """The names a pass-through model is known by (bare and with its provider), for a key's
    ``models``; a routed name by both its spellings."""
    if destination.model is None:
        return spellings(destination.requested)
    return (destination.model, f"{destination.providers[0]}/{destination.model}")


def tokens(attempts: Iterable[Attempt]) -> int:
    """Prompt and completion tokens every attempt of a call was billed for (a key's tpm)."""
    return sum(a.usage.input_tokens + a.usage.output_tokens for a in attempts)
