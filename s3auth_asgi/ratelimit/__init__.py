"""Rate limiting: GCRA over named limits, keyed by client IP (proxy-aware), user or account,
with state in memory or shared through the object store; failure budgets for limits that
count failed attempts only; what RateLimitMiddleware's rules add, declared in an OpenAPI
document."""

from .budget import FailureBudget, FailureStore, Reading
from .client_ip import ClientAddress, ClientIPResolver
from .gcra import Decision, gcra, peek
from .limiter import RateLimiter, RateLimitInfo, request_scope
from .memory import MemoryRateLimitStore
from .openapi import PartialMatch, declare_rate_limits
from .policy import KeyFunction, RateLimit, parse_rate_limits
from .rules import RateLimitRule
from .stores import EvenRateLimitStore, ObjectStoreRateLimitStore, RateLimitStore

__all__ = [
    "ClientAddress",
    "ClientIPResolver",
    "Decision",
    "EvenRateLimitStore",
    "FailureBudget",
    "FailureStore",
    "KeyFunction",
    "MemoryRateLimitStore",
    "ObjectStoreRateLimitStore",
    "PartialMatch",
    "RateLimit",
    "RateLimitInfo",
    "RateLimitRule",
    "RateLimitStore",
    "RateLimiter",
    "Reading",
    "declare_rate_limits",
    "gcra",
    "parse_rate_limits",
    "peek",
    "request_scope",
]
