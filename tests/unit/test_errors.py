"""mmfast's exception hierarchy (mmfast.core.errors; docs/core.md "Errors").

Every exception class defined anywhere in mmfast, the compiled modules included, is found by
importing every module of the package; each must sit in the MmfastError tree, in its category,
with the builtin base its callers catch. A new exception class outside the tree fails here.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import inspect
import pkgutil
from pathlib import Path

import pytest

import mmfast
import mmfast._core as compiled
from mmfast.core import errors
from mmfast.core.errors import BookError, ExchangeError, MmfastError, OrderError, SigningError

# Deliberately outside the tree (see the comment on the class): the simulated venue's answers.
OUTSIDE = {"mmfast.sim.errors.VenueError", "mmfast.sim.errors.QuotaExceeded"}

# class -> (category it belongs to, builtin base callers rely on or None)
EXPECTED: dict[str, tuple[type[BaseException], type[BaseException] | None]] = {
    "mmfast.core.errors.MmfastError": (Exception, None),
    "mmfast.core.errors.BookError": (MmfastError, ValueError),
    "mmfast.core.errors.UnitsError": (MmfastError, ValueError),
    "mmfast.core.errors.SigningError": (MmfastError, None),
    "mmfast.core.errors.ExchangeError": (MmfastError, None),
    "mmfast.core.errors.OrderError": (MmfastError, None),
    "mmfast.conf.schema.ConfigError": (MmfastError, ValueError),
    "mmfast.connector.lighter.secret.SecretError": (MmfastError, ValueError),
    "mmfast.connector.lighter.signer.SignerError": (SigningError, RuntimeError),
    "mmfast.connector.lighter.auth.TokenError": (SigningError, RuntimeError),
    "mmfast.connector.lighter.txcheck.TxCheckError": (SigningError, ValueError),
    "mmfast._core.signer.NativeSignerError": (SigningError, ValueError),
    "mmfast.connector.lighter.rest.LighterApiError": (ExchangeError, None),
    "mmfast.connector.lighter.rest.RateLimited": (ExchangeError, None),
    "mmfast.connector.lighter.rest.VenueUnavailable": (ExchangeError, None),
    "mmfast.connector.lighter.rest.OutcomeUnknown": (ExchangeError, None),
    "mmfast.connector.lighter.budget.BudgetExhausted": (ExchangeError, None),
    "mmfast.connector.lighter.ws.StreamHalted": (ExchangeError, RuntimeError),
    "mmfast.connector.lighter.markets.MetadataError": (ExchangeError, ValueError),
    "mmfast.connector.lighter.orders.OrderEntryError": (OrderError, RuntimeError),
    "mmfast.connector.lighter.nonces.NonceError": (OrderError, RuntimeError),
    "mmfast.connector.lighter.coi.CoiError": (OrderError, RuntimeError),
    "mmfast.connector.lighter.coi.CoiLockedError": (OrderError, RuntimeError),
    "mmfast.connector.lighter.coi.CoiStateError": (OrderError, RuntimeError),
    "mmfast.connector.lighter.coi.CoiExhaustedError": (OrderError, RuntimeError),
    "mmfast.connector.lighter.tracker.TrackerError": (OrderError, RuntimeError),
    "mmfast.connector.lighter.tracker.DuplicateClientOrderIndex": (OrderError, RuntimeError),
    "mmfast.connector.lighter.reconcile.ReconcileFailed": (OrderError, RuntimeError),
    "mmfast.diagnostics.venue.DiagError": (MmfastError, RuntimeError),
    "mmfast.report.reader.ReportError": (MmfastError, ValueError),
    "mmfast.run.heartbeat.HeartbeatError": (MmfastError, OSError),
    "mmfast.run.runner._StoppedEarly": (MmfastError, None),
    "mmfast.sim.process.SimProcessError": (MmfastError, RuntimeError),
    "mmfast.sim.errors.VenueError": (Exception, None),
}


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _walk() -> tuple[set[str], dict[str, type[BaseException]]]:
    """Import every module of mmfast; return the module names and the exception classes defined
    in mmfast (by qualified name; a class re-exported by several modules is found once)."""
    modules: set[str] = set()
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(mmfast.__path__, "mmfast."):
        module = importlib.import_module(info.name)  # an import error fails the test
        modules.add(info.name)
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__.split(".")[0] == "mmfast"
            ):
                found[_name(obj)] = obj
    return modules, found


MODULES, FOUND = _walk()


def test_the_walk_covers_the_compiled_modules() -> None:
    built = {
        f"mmfast._core.{p.name.split('.')[0]}"
        for p in Path(compiled.__file__).parent.iterdir()
        if any(p.name.endswith(s) for s in importlib.machinery.EXTENSION_SUFFIXES)
    }
    assert {"mmfast._core.book", "mmfast._core.signer", "mmfast._core.plan"} <= built
    assert built <= MODULES


def test_the_walk_finds_the_known_classes() -> None:
    assert set(EXPECTED) <= set(FOUND)


@pytest.mark.parametrize("name", sorted(FOUND))
def test_every_mmfast_exception_is_in_the_tree(name: str) -> None:
    cls = FOUND[name]
    if name in OUTSIDE:
        assert not issubclass(cls, MmfastError), f"{name} is kept outside the tree on purpose"
        return
    assert issubclass(cls, MmfastError), (
        f"{name} is not an mmfast.core.errors.MmfastError: derive it from MmfastError or one of "
        "its categories (docs/core.md, Errors)"
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_category_and_builtin_base(name: str) -> None:
    cls = FOUND[name]
    category, builtin = EXPECTED[name]
    assert issubclass(cls, category)
    if builtin is not None:  # `except ValueError` / `except RuntimeError` callers still catch it
        assert issubclass(cls, builtin)
    # categories do not overlap
    others = {SigningError, ExchangeError, OrderError} - {category, cls}
    assert not any(issubclass(cls, o) for o in others)


def test_categories_are_plain() -> None:
    # A category carries no builtin base of its own: `except OrderError` must not start catching
    # unrelated ValueErrors, nor `except ValueError` a whole category.
    for cat in (MmfastError, SigningError, ExchangeError, OrderError):
        assert cat.__mro__[1:] in (
            (Exception, BaseException, object),
            (MmfastError, Exception, BaseException, object),
        )


def test_errors_module_names_each_category_once() -> None:
    assert set(errors.__all__) == {
        "BookError",
        "ExchangeError",
        "MmfastError",
        "OrderError",
        "SigningError",
        "UnitsError",
    }
    import mmfast.core as core

    for n in errors.__all__:
        assert getattr(core, n) is getattr(errors, n)


def test_one_book_error() -> None:
    import mmfast._core.book as cbook
    import mmfast.reference.book as rbook

    assert cbook.BookError is rbook.BookError is BookError
    assert [c for n, c in FOUND.items() if c.__name__ == "BookError"] == [BookError]


def test_no_twin_classes() -> None:
    # A compiled module and its pure-Python twin share one class (as BookError does), so an
    # `except` written against either catches both.
    by_name: dict[str, list[str]] = {}
    for name, cls in FOUND.items():
        by_name.setdefault(cls.__name__, []).append(name)
    assert {n: v for n, v in by_name.items() if len(v) > 1} == {}


@pytest.mark.parametrize("which", ["compiled", "reference"])
def test_both_books_raise_the_one_book_error(which: str) -> None:
    if which == "compiled":
        from mmfast._core.book import OrderBook, parse_decimal
    else:
        from mmfast.reference.book import ReferenceBook as OrderBook  # type: ignore[assignment]
        from mmfast.reference.book import parse_decimal  # type: ignore[assignment]

    with pytest.raises(BookError) as info:
        parse_decimal("1.0x", 2)
    assert type(info.value) is BookError
    assert isinstance(info.value, ValueError)

    book = OrderBook(0, 2, 4)
    with pytest.raises(BookError) as info:
        book.apply_snapshot([{"price": "0", "size": "1"}], [], 1)
    assert type(info.value) is BookError
    with pytest.raises(MmfastError):
        book.parse_price("-1")


def test_one_units_error() -> None:
    import mmfast._core.units as cunits
    import mmfast.reference.units as runits
    from mmfast.core.errors import UnitsError

    assert cunits.UnitsError is runits.UnitsError is UnitsError
    for parse in (cunits.parse_units, runits.parse_units):
        with pytest.raises(UnitsError):
            parse("1e3", 2)


def test_sim_venue_error_stays_outside() -> None:
    from mmfast.sim.errors import VenueError

    exc = VenueError(21104)
    assert not isinstance(exc, MmfastError)
    assert exc.to_json()["code"] == 21104
