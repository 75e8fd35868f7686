"""Self-review: a clinician's own caseload, with service figures only as suppressed aggregates.

:func:`apply_scope` keeps one clinician's own clients; it lives with the
:class:`~supervision.caseload.Caseload` (the loader applies it when ``privacy.self_review_clinician``
is set) and is re-exported here. :func:`load_self_review` loads the whole export through
:func:`supervision.io.load_caseload` and scopes it; service figures then reach the clinician only
through :meth:`SelfReview.benchmark`, i.e. as suppressed aggregates (docs/methods.md §3.4).
"""

from __future__ import annotations

from typing import Any, Callable

import pandas as pd

from supervision.caseload import apply_scope
from supervision.config import Settings, load_settings
from supervision.privacy.suppression import policy_rules, privacy_rules, service_benchmark

__all__ = ["apply_scope", "load_own_caseload", "SelfReview", "load_self_review"]


def _resolve_clinician(clinician_id, settings: Settings) -> str:
    cid = clinician_id if clinician_id not in (None, "") else privacy_rules(settings).self_review_clinician
    if not cid:
        raise ValueError("No clinician given for self-review: pass clinician_id (or --clinician) or set "
                         "privacy.self_review_clinician in the settings file.")
    return str(cid)


def load_own_caseload(path=None, clinician_id: str | None = None, settings=None):
    """Load an export and keep only one clinician's own clients (:func:`apply_scope`).

    ``clinician_id`` defaults to the ``privacy.self_review_clinician`` setting.
    """
    return load_self_review(path, clinician_id, settings).caseload


class SelfReview:
    """A clinician's own caseload, with service figures available only as suppressed aggregates.

    Attributes
    ----------
    caseload : Caseload
        :func:`apply_scope` of the service's caseload.
    clinician_id : str
    policy : Policy
        The disclosure policy applied to every benchmark (setting ``privacy.suppression_policy``).
    """

    def __init__(self, service, clinician_id: str, policy: str | None = None):
        self.clinician_id = str(clinician_id)
        self.caseload = apply_scope(service, self.clinician_id)
        self.policy = policy_rules(policy, service.settings)
        self._service = service  # not for views: read it only through benchmark()

    def benchmark(self, source: str | Callable[[Any], pd.DataFrame] = "clients", value: str | None = None, *,
                  by=None, id_column: str = "client_id", total: bool = True) -> pd.DataFrame:
        """:func:`service_benchmark` over the whole service under :attr:`policy`.

        ``source`` is ``"clients"``, ``"sessions"`` or a function that takes the service's
        Caseload and returns a tidy table (e.g. a per-client metric table).
        """
        if callable(source):
            table = source(self._service)
        elif source in ("clients", "sessions"):
            table = getattr(self._service, source)
        else:
            raise ValueError(f"source must be 'clients', 'sessions' or a function of the caseload; got {source!r}.")
        return service_benchmark(table, value, by=by, id_column=id_column, total=total, policy=self.policy,
                                 settings=self._service.settings)

    def __repr__(self) -> str:
        return f"SelfReview(clinician_id={self.clinician_id!r}, clients={len(self.caseload.clients)}, policy={self.policy.name!r})"


def load_self_review(path=None, clinician_id: str | None = None, settings=None) -> SelfReview:
    """Load an export for a clinician's self-review: own clients, benchmarks only as aggregates."""
    from supervision.io import load_caseload  # here, so importing supervision.privacy reads no file formats

    settings = load_settings(settings)
    cid = _resolve_clinician(clinician_id, settings)
    values = settings.as_dict()
    values["privacy"]["self_review_clinician"] = ""  # the service is read whole here, then scoped by SelfReview
    service = load_caseload(path, settings=load_settings(values))
    return SelfReview(service, cid)
