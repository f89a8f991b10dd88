"""Auditing game: find a compiled model's hidden rule under a query budget (:func:`audit`)."""

from interplab.methods.auditing.audit import (
    AuditReport,
    audit,
    content_keyed_heads,
    diverse_input,
    fixed_position_heads,
)
from interplab.methods.auditing.queries import QueryBudgetExceeded, QueryProxy
from interplab.methods.auditing.version_space import VersionSpace

__all__ = [
    "AuditReport",
    "QueryBudgetExceeded",
    "QueryProxy",
    "VersionSpace",
    "audit",
    "content_keyed_heads",
    "diverse_input",
    "fixed_position_heads",
]
