"""What makes the suite's set-up cheap without changing what a test sees (the fixtures are in tests/conftest.py).

Password hashing: the service hashes staff passwords with argon2-cffi's
defaults (RFC 9106, about half a second a hash here), and the tests make
staff accounts by the hundred. In tests the hashers use minimal parameters;
tests/unit/test_passwords.py checks the production ones (the
``real_password_hashing`` fixture). Subprocesses (the CLI, gunicorn) are
not patched: they hash with the production parameters.

Compiled code: every test builds its own app, and every app would compile
its templates and its URL builders again. Both are the same for the same
source, so they are compiled once a session. So is SQL: SQLAlchemy caches
a statement's compiled form per engine, and every test makes an engine;
engines made alike share one dialect and one statement cache (a quarter
of an in-process test's time was compiling the same statements again).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
from collections.abc import Callable
from typing import Any

import jinja2
import jinja2.bccache
import sqlalchemy as sa
from argon2 import PasswordHasher
from werkzeug.routing import Rule

CHEAP_ARGON2 = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
# Imported before the hashers are looked for; a module that moved is found by the scan wherever it went.
HASHING_MODULES = ("verify_service.staff.passwords",)
SERVICE_PACKAGES = ("verify_service", "integrations", "jobs")


class CheapPasswordHasher(PasswordHasher):
    """A PasswordHasher with the test parameters unless told otherwise (it stands in for the class too)."""

    def __init__(self, time_cost: int = CHEAP_ARGON2["time_cost"], memory_cost: int = CHEAP_ARGON2["memory_cost"],
                 parallelism: int = CHEAP_ARGON2["parallelism"], *args: Any, **kwargs: Any) -> None:
        super().__init__(time_cost, memory_cost, parallelism, *args, **kwargs)


@dataclasses.dataclass(frozen=True)
class HasherSite:
    """A module attribute that holds a PasswordHasher, or the class itself (a module that makes one per call)."""

    module: Any
    attribute: str
    value: Any


def argon2_sites() -> list[HasherSite]:
    """Every argon2 hasher in the service's loaded modules, with its production value."""
    for name in HASHING_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    sites = []
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(SERVICE_PACKAGES):
            continue
        for attribute, value in list(vars(module).items()):
            if isinstance(value, PasswordHasher) or value is PasswordHasher:
                sites.append(HasherSite(module, attribute, value))
    return sites


def cheap_stand_in(value: Any) -> Any:
    """The cheap counterpart of a site's production value (the same hash and salt lengths, encoding and type)."""
    if value is PasswordHasher:
        return CheapPasswordHasher
    return CheapPasswordHasher(hash_len=value.hash_len, salt_len=value.salt_len, encoding=value.encoding,
                               type=value.type)


def clear_hash_caches(sites: list[HasherSite]) -> None:
    """Forget hashes cached by those modules (a dummy hash made once a process) under the other parameters."""
    for module in {id(site.module): site.module for site in sites}.values():
        for attribute, value in list(vars(module).items()):
            if "hash" in attribute and callable(getattr(value, "cache_clear", None)):
                value.cache_clear()


class SharedTemplateCode(jinja2.BytecodeCache):
    """Compiled templates kept in memory, shared by every app of the session.

    All apps come from create_app, with one Jinja configuration, so a template's code is the same in
    each; jinja2 checks the source's checksum before it uses cached code, so an edited template is
    compiled again.
    """

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


def shared_url_builders() -> Callable[..., Any] | None:
    """A stand-in for werkzeug's ``Rule._compile_builder`` that remembers what it compiled.

    Each app compiles a URL builder (generated Python code) for each of its 450-odd rules: most of
    the 30-40 ms create_app takes. A builder is a function of the rule's text, its parsed parts
    (``_trace``), its defaults as they appear in URLs, and ``append_unknown``; everything else it
    reads from the rule it is bound to. None when werkzeug's method is not the one this was made for.
    """
    compile_builder = getattr(Rule, "_compile_builder", None)
    if compile_builder is None or list(inspect.signature(compile_builder).parameters) != ["self", "append_unknown"]:
        return None
    builders: dict[tuple[Any, ...], Callable[..., Any]] = {}

    def shared(self: Rule, append_unknown: bool = True) -> Callable[..., Any]:
        defaults = self.defaults or {}
        key = (append_unknown, self.rule, tuple(self._trace),
               tuple((str(name), self._converters[name].to_url(value) if name in self._converters else None)
                     for name, value in defaults.items()))
        builder = builders.get(key)
        if builder is None:
            builder = builders[key] = compile_builder(self, append_unknown)
        return builder

    return shared


# create_engine's arguments that shape the pool or the connections, not the dialect: engines that differ only in
# these still compile every statement the same way.
POOL_ARGUMENTS = frozenset({"poolclass", "pool_size", "max_overflow", "pool_timeout", "pool_recycle",
                            "pool_pre_ping", "connect_args"})


def sharing_compiled_sql(create_engine: Callable[..., sa.Engine]) -> Callable[..., sa.Engine]:
    """A stand-in for ``sqlalchemy.create_engine`` whose engines share a dialect and a compiled-statement cache.

    SQLAlchemy keys its cache of compiled statements by the dialect object, and each engine has a
    dialect and a cache of its own. Engines of one driver made with the same dialect arguments
    (isolation level, serialisers… — not the pool's) get the first such engine's dialect and cache,
    once that dialect has been initialised by its first connection (server version and the features
    it implies). Until then an engine keeps its own.
    """
    shared: dict[tuple[Any, ...], tuple[Any, Any]] = {}

    def create(url: Any, **kwargs: Any) -> sa.Engine:
        engine = create_engine(url, **kwargs)
        key = (type(engine.dialect), tuple(sorted((name, repr(value)) for name, value in kwargs.items()
                                                  if name not in POOL_ARGUMENTS)))
        if key in shared:
            engine.dialect, engine._compiled_cache = shared[key]
            return engine

        def initialised(_dbapi_connection: Any, _record: Any) -> None:  # after the dialect's own first-connect
            shared.setdefault(key, (engine.dialect, engine._compiled_cache))

        sa.event.listen(engine.pool, "connect", initialised, once=True)
        return engine

    return create
