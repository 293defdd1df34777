"""Nothing lost when providers fail: one resilience layer shared by every entry point.

``Provider`` and ``MultiProvider`` (sync and streaming; async and the proxy reuse the same core)
run each request through the same steps, decided by one pure state machine
(:class:`~orkestra.resilience.executor.Flow`) and carried out by thin drivers:

- **retries** with exponential backoff and full jitter on 408/409/429/5xx/529, connection errors
  and timeouts, honouring ``retry-after-ms``/``retry-after``/``RetryInfo`` up to a cap, within a
  deadline per call (:class:`RetryPolicy`); the SDKs' own retries are off;
- a **circuit breaker** per (provider, model) (:class:`CircuitBreaker`);
- **fallback** to the next candidate model (:mod:`orkestra.resilience.fallback`);
- **budgets**: each attempt's worst case reserved before it is sent, settled with what it
  billed (:class:`Budget`; :class:`SharedBudget` across processes);
- per-attempt connect/read **timeouts** (:class:`Timeouts`).

Every attempt is recorded on the ``Response`` (``response.attempts``) or on the error raised.
"""

from orkestra.resilience.breaker import CircuitBreaker, default_breaker
from orkestra.resilience.budget import Budget, SharedBudget, process_budget, set_process_budget
from orkestra.resilience.fallback import DEFAULT_FALLBACK, FALLBACK_ORDERS
from orkestra.resilience.retry import RetryPolicy, Timeouts

__all__ = [
    "DEFAULT_FALLBACK",
    "FALLBACK_ORDERS",
    "Budget",
    "CircuitBreaker",
    "RetryPolicy",
    "SharedBudget",
    "Timeouts",
    "default_breaker",
    "process_budget",
    "set_process_budget",
]
