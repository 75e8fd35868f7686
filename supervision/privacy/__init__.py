"""Privacy: pseudonymised exports, small-count suppression and the clinician's own-caseload scope.

Three modules (issue 9, part 2; issue 17 split them):

1. :mod:`supervision.privacy.pseudonymise`, file to file: :func:`pseudonymise` (``supervision
   pseudonymise IN OUT --key-file K``) turns a service's export into one that can leave the
   service: client and staff ids replaced by keyed hashes (HMAC-SHA256), direct identifiers
   dropped, dates of birth turned into age bands, every cell written formula-safe.
2. :mod:`supervision.privacy.suppression`, pure functions on frames: :func:`suppress` applies a
   disclosure-control policy to a table of counts (primary suppression of small counts,
   rounding, complementary suppression, derived rates), and :func:`service_benchmark` turns a
   service-wide table into aggregates under that policy. The policies are described there.
3. :mod:`supervision.privacy.scope`, self-review: :func:`apply_scope` / :func:`load_self_review`
   restrict a caseload to one clinician's own clients; service figures then reach the clinician
   only through :meth:`SelfReview.benchmark`, i.e. as suppressed aggregates.

Definitions and sources: docs/methods.md §3.4. The names below are re-exported here, so
``from supervision.privacy import suppress`` works as before.
"""

from __future__ import annotations

from supervision.privacy.pseudonymise import PseudonymiseError, PseudonymiseSummary, pseudonymise, read_key
from supervision.privacy.scope import SelfReview, apply_scope, load_own_caseload, load_self_review
from supervision.privacy.suppression import Policy, policy_rules, privacy_rules, service_benchmark, suppress, suppress_blocks

__all__ = [
    "PseudonymiseError", "PseudonymiseSummary", "read_key", "pseudonymise",
    "Policy", "policy_rules", "privacy_rules", "suppress", "service_benchmark",
    "apply_scope", "load_own_caseload", "SelfReview", "load_self_review",
]
