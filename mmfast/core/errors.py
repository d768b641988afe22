"""mmfast's exception hierarchy: every exception mmfast raises is a :class:`MmfastError`.

Callers catch a category (``except OrderError``) or the whole of mmfast (``except MmfastError``);
the concrete classes stay where they are raised and keep their import paths. Classes that were a
``ValueError`` / ``RuntimeError`` before the tree existed keep that builtin as a second base, so
``except ValueError`` around a config load or a decimal parse still catches them. See docs/core.md.

::

    MmfastError(Exception)
    ├── ConfigError(MmfastError, ValueError)            mmfast.conf.schema
    ├── SecretError(MmfastError, ValueError)            mmfast.connector.lighter.secret
    ├── BookError(MmfastError, ValueError)              here (_core.book, reference.book)
    ├── UnitsError(MmfastError, ValueError)             here (_core.units, reference.units)
    ├── SigningError                                    signing txs and auth tokens
    │   ├── SignerError(SigningError, RuntimeError)     mmfast.connector.lighter.signer
    │   ├── TokenError(SigningError, RuntimeError)      mmfast.connector.lighter.auth
    │   └── TxCheckError(SigningError, ValueError)      mmfast.connector.lighter.txcheck
    ├── ExchangeError                                   the venue refused or failed
    │   ├── LighterApiError                             mmfast.connector.lighter.rest
    │   │   └── RateLimited
    │   ├── VenueUnavailable                            mmfast.connector.lighter.rest
    │   ├── OutcomeUnknown                              mmfast.connector.lighter.rest
    │   ├── BudgetExhausted                             mmfast.connector.lighter.budget
    │   ├── StreamHalted(ExchangeError, RuntimeError)   mmfast.connector.lighter.ws
    │   └── MetadataError(ExchangeError, ValueError)    mmfast.connector.lighter.markets
    ├── OrderError                                      order entry and order state
    │   ├── OrderEntryError(OrderError, RuntimeError)   mmfast.connector.lighter.orders
    │   ├── NonceError(OrderError, RuntimeError)        mmfast.connector.lighter.nonces
    │   ├── CoiError(OrderError, RuntimeError)          mmfast.connector.lighter.coi
    │   │   └── CoiLockedError, CoiStateError, CoiExhaustedError
    │   ├── TrackerError(OrderError, RuntimeError)      mmfast.connector.lighter.tracker
    │   │   └── DuplicateClientOrderIndex
    │   └── ReconcileFailed(OrderError, RuntimeError)   mmfast.connector.lighter.reconcile
    ├── DiagError(MmfastError, RuntimeError)            mmfast.diagnostics.venue
    └── ReportError(MmfastError, ValueError)            mmfast.report.reader

Not in the tree: ``mmfast.sim.errors.VenueError`` (the simulated venue's answer, see its comment).
This module imports nothing from mmfast, so any module (the compiled ones included) can import it.
"""

from __future__ import annotations

__all__ = ["BookError", "ExchangeError", "MmfastError", "OrderError", "SigningError", "UnitsError"]


class MmfastError(Exception):
    """Base of every exception mmfast raises."""


class BookError(MmfastError, ValueError):
    """A malformed order-book message, level or value; the book was not changed.

    One class for the compiled book (``mmfast._core.book``) and its pure-Python twin
    (``mmfast.reference.book``): both import it from here.
    """


class UnitsError(MmfastError, ValueError):
    """A decimal string that is not a valid amount under the rules asked for (names the value).

    One class for the compiled units module (``mmfast._core.units``) and its pure-Python twin
    (``mmfast.reference.units``): both import it from here.
    """


class SigningError(MmfastError):
    """A tx or an auth token could not be signed, or what the signer produced failed its check."""


class ExchangeError(MmfastError):
    """Talking to the venue failed: an API refusal, the venue unreachable, the request budget spent,
    a stream given up, or venue data that cannot be used."""


class OrderError(MmfastError):
    """Order entry or order state: a request refused before signing, the nonce protocol, the
    client-order-id allocator, the order tracker, reconciliation with the venue."""
