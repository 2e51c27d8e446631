"""What ``mypy`` sees of the public names (the test reads the revealed types)."""

from otel_resilience import SpanHook
from otel_resilience.pybreaker import BreakerCallInfo
from otel_resilience.tenacity import RetryCallInfo

reveal_type(BreakerCallInfo)  # noqa: F821 - mypy-only: this file is never run
reveal_type(RetryCallInfo)  # noqa: F821 - mypy-only: this file is never run
reveal_type(SpanHook)  # noqa: F821 - mypy-only: this file is never run
