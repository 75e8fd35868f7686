"""What every page of the app reads from one loaded caseload, computed once: :class:`Shared`.

Its own small module (issue #17) so the Caseload and Client pages can take it without importing
:mod:`supervision.widgets.app`, which opens those pages. ``from supervision.widgets.app import
Shared`` still works.
"""

from __future__ import annotations

from supervision.caseload import Caseload


class Shared:
    """One loaded caseload and the service tables every page reads (computed once)."""

    def __init__(self, caseload: Caseload):
        self.caseload = caseload
        self._tables = None
        self._agenda = None

    def adopt(self, tables: dict, agenda) -> None:
        """Take the tables another page already computed (the supervision dashboard's)."""
        self._tables, self._agenda = tables, agenda

    @property
    def tables(self) -> dict:
        if self._tables is None:
            from supervision.metrics.tables import service_tables

            self._tables = service_tables(self.caseload)  # stored once per export and settings, then read
        return self._tables

    @property
    def alliance(self):
        """The alliance tables with the settings' options (as the supervision page uses them)."""
        if getattr(self, "_alliance", None) is None:
            from supervision.widgets.alliance import AllianceModel

            self._alliance = AllianceModel(self.caseload, self.caseload.rules.alliance, tables=self.tables)
        return self._alliance

    def outcome(self, instrument: str):
        """What the Client page draws of one outcome measure (None when the export has none): a
        :class:`ClientOutcome`, its tables stored with the service tables (:mod:`supervision.table_cache`),
        so a new kernel (Voila starts one per visit) reads them instead of computing them again."""
        cache = self.__dict__.setdefault("_outcome", {})
        if instrument not in cache:
            present = self.caseload.measures_present()
            ok = instrument in set(present.loc[present["kind"] == "outcome", "instrument"])
            cache[instrument] = ClientOutcome.of(self.caseload, instrument) if ok else None
        return cache[instrument]

    @property
    def agenda(self):
        if self._agenda is None:
            from supervision.agenda import build_agenda

            self._agenda = build_agenda(self.caseload, self.tables)
        return self._agenda


class ClientOutcome:
    """One outcome measure as the Client page draws it: ``track``, every client's scores by session
    with the expected band (:func:`supervision.metrics.outcome.track_status` with ``per_session=True``,
    docs/methods.md §2.4), and ``gains``, the sudden gains (:func:`~supervision.metrics.outcome.sudden_gains`),
    the tables of :class:`supervision.widgets.outcome.OutcomeModel` that the page reads."""

    def __init__(self, instrument, track, gains):
        self.instrument, self.track, self.gains = instrument, track, gains

    @classmethod
    def of(cls, caseload: Caseload, instrument: str) -> "ClientOutcome":
        from supervision import table_cache
        from supervision.instruments import instruments

        def compute() -> dict:
            from supervision.widgets.outcome import OutcomeModel

            m = OutcomeModel(caseload, instrument)
            return {"client_outcome_track": m.track, "client_outcome_gains": m.gains}

        tables = table_cache.load_or_compute(caseload, compute, rules={"client_page_outcome": instrument})
        return cls(instruments(caseload.settings)[instrument], tables["client_outcome_track"],
                   tables["client_outcome_gains"])
