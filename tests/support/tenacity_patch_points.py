"""The tenacity methods the instrumentation patches (the ``with attempt:`` ones only with spans)."""

from __future__ import annotations

import tenacity

WITH_ATTEMPT = [
    (owner, name)
    for owner, name in [
        (tenacity.AttemptManager, "__enter__"),
        (tenacity.AttemptManager, "__exit__"),
        (tenacity.AttemptManager, "__aenter__"),  # tenacity >= 9.2
    ]
    if name in vars(owner)
]
WRAPPED = [
    (tenacity.BaseRetrying, "iter"),
    (tenacity.RetryCallState, "set_result"),
    (tenacity.RetryCallState, "set_exception"),
    *([(tenacity.AsyncRetrying, "iter")] if "iter" in vars(tenacity.AsyncRetrying) else []),  # >= 8.3
    *WITH_ATTEMPT,
]
