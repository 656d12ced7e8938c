"""The service's settings: one typed, frozen object, read once at start and passed in explicitly.

Every setting has a name, a type, a default and a meaning (``help``); it is read from a TOML file
(``--config``), then from the environment as ``SECTIGO_SVC_<NAME>``, the environment winning. The
Sectigo password is not a setting: it comes from ``SECTIGO_PASSWORD`` or a secret file, so this
object can be printed and logged whole.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import psycopg
from psycopg.conninfo import conninfo_to_dict

from sectigo_svc.domain import validation
from sectigo_svc.domain.errors import InvalidArgument
from sectigo_svc.rpc.admission import Limits

ENV_PREFIX = "SECTIGO_SVC_"


class ConfigError(ValueError):
    """A setting that cannot work; the message names it as the operator would set it."""


def setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class ServiceConfig:
    """Everything `sectigo-svc serve` can be told. See docs/settings.md for the generated table."""

    listen: str = setting("127.0.0.1:9443", "host:port the gRPC server listens on")
    health_listen: str = setting(
        "",
        "host:port of a plain-text port serving only gRPC health, for probes (empty: none)",
    )
    metrics_listen: str = setting(
        "", "host:port of the Prometheus metrics HTTP endpoint (empty: none)"
    )
    tls_cert: Path | None = setting(None, "server certificate (PEM) for TLS")
    tls_key: Path | None = setting(None, "server private key (PEM) for TLS")
    tls_client_ca: Path | None = setting(
        None, "CA bundle (PEM) that client certificates must chain to"
    )
    tls_expiry_warning_days: float = setting(
        14.0,
        "days before the server certificate expires from which a warning is logged (at start, "
        "on every reload of the TLS files, and hourly); 0: only once it has expired",
    )
    insecure: bool = setting(
        False, "serve plain text without client authentication (development only; warns)"
    )
    policy_file: Path | None = setting(None, "TOML policy mapping caller identities to roles")
    state_dir: Path = setting(Path(".state/service"), "where the embedded store and data key live")
    database: Path | None = setting(
        None, "SQLite file of the request store (default: state_dir/requests.db)"
    )
    data_key_file: Path | None = setting(
        None,
        "base64 AES-256 key sealing secrets at rest (default: state_dir/data.key, generated 0600; "
        "required with database_url, every replica using the same key)",
    )
    database_url: str = setting(
        "",
        "libpq URL of a shared PostgreSQL store (postgresql://user@host:port/db, no password) for "
        "several replicas; empty: the embedded SQLite store of one replica",
    )
    database_password_file: Path | None = setting(
        None, "file holding the PostgreSQL password (else libpq's PGPASSWORD or ~/.pgpass)"
    )
    database_pool_size: int = setting(8, "PostgreSQL connections each replica may hold")
    lease_seconds: float = setting(
        30.0,
        "seconds a replica's claim on a request's tracking lasts unless renewed; another replica "
        "takes an unrenewed request over after this",
    )
    max_clock_skew: float = setting(
        5.0,
        "seconds this replica's clock may differ from the database's before it logs the skew, "
        "reports it (sectigo_svc_clock_offset_seconds) and takes no other replica's work over",
    )
    watch_reread_seconds: float = setting(
        1.0,
        "seconds between re-reads of a watched request's history, in case a change "
        "notification from another replica was lost",
    )
    replica_name: str = setting(
        "", "this replica's name in lease holders and logs (default: the host name)"
    )
    sectigo_endpoint: str = setting("https://iot.sectigo.com", "Sectigo IoT Manager API base URL")
    sectigo_environment: str = setting(
        "production", "production, staging or testing: which endpoints are allowed"
    )
    sectigo_username: str = setting("", "Sectigo account username (or SECTIGO_USERNAME)")
    sectigo_password_file: Path | None = setting(
        None, "file holding the Sectigo password (else SECTIGO_PASSWORD)"
    )
    sectigo_token_cache_dir: Path | None = setting(
        None, "directory of the token cache file (default: the user cache directory)"
    )
    sectigo_timeout: float = setting(30.0, "read timeout of one Sectigo HTTP call, seconds")
    default_authority_id: int = setting(42, "Sectigo authority used when a request names none")
    batch_prefix: str = setting("sectigo-svc", "prefix of the Sectigo batch names of requests")
    subject_organization: str = setting(
        "", "organizationName used when a profile needs one (at most 64 characters)"
    )
    subject_locality: str = setting(
        "", "localityName used when a profile needs one (at most 128 characters)"
    )
    subject_state: str = setting(
        "", "stateOrProvinceName used when a profile needs one (at most 128 characters)"
    )
    subject_country: str = setting(
        "", "countryName used when a profile needs one (two capital letters, ISO 3166-1)"
    )
    tracker_workers: int = setting(4, "background workers driving Sectigo batches")
    poll_min_interval: float = setting(0.5, "first interval between batch status checks, seconds")
    poll_max_interval: float = setting(
        30.0, "longest interval between batch status checks, seconds"
    )
    give_up_after: float = setting(86400.0, "seconds after which an unfinished request FAILS")
    quarantine: float = setting(
        600.0,
        "seconds an order whose outcome is unknown is only looked up by batch name before it may "
        "be sent again (in doubt); must exceed sectigo_timeout plus Sectigo's processing lag",
    )
    max_failed_orders: int = setting(
        3,
        "orders Sectigo may answer with the same 5xx, while lookups show no batch, before the "
        "request FAILS with Sectigo's message",
    )
    login_backoff_initial: float = setting(
        5.0, "seconds before the first new login after Sectigo rejected the credentials"
    )
    login_backoff_max: float = setting(
        300.0, "longest wait between login attempts while Sectigo rejects the credentials"
    )
    sectigo_check_interval: float = setting(
        2.0, "seconds between checks of Sectigo's health (the `sectigo` health service)"
    )
    sectigo_down_after: int = setting(
        3, "consecutive failed Sectigo calls or checks that make the `sectigo` health NOT_SERVING"
    )
    sectigo_up_after: int = setting(
        2, "consecutive successful checks that make the `sectigo` health SERVING again"
    )
    prestop_seconds: float = setting(
        5.0,
        "seconds readiness reports NOT_SERVING on SIGTERM while RPCs are still served, "
        "before the drain starts",
    )
    grpc_workers: int = setting(16, "threads serving RPCs")
    max_concurrent_rpcs: int = setting(64, "RPCs in flight before new ones get RESOURCE_EXHAUSTED")
    max_streams: int = setting(
        0,
        "Watch streams open at once, each holding an RPC thread; more get RESOURCE_EXHAUSTED "
        "(0: half of grpc_workers)",
    )
    max_streams_per_identity: int = setting(
        0,
        "Watch streams one caller identity may hold open; more get RESOURCE_EXHAUSTED "
        "(0: a quarter of max_streams, at least 2)",
    )
    max_sectigo_rpcs: int = setting(
        0,
        "threads of a pool of their own for RPCs that may wait on Sectigo (all but reads of "
        "stored requests); a call that would wait over 1 s for one gets UNAVAILABLE with a retry "
        "time (0: half of grpc_workers)",
    )
    keepalive_time: float = setting(
        30.0, "seconds between the server's keepalive pings on each connection"
    )
    keepalive_timeout: float = setting(
        20.0, "seconds a keepalive ping may go unanswered before the connection is closed"
    )
    shutdown_grace: float = setting(10.0, "seconds in-flight RPCs get to finish on SIGTERM")
    log_format: str = setting("auto", "json, console, or auto (console on a terminal)")
    log_level: str = setting("info", "debug, info, warning or error")

    def __post_init__(self) -> None:
        for name in ("listen", "health_listen", "metrics_listen"):
            value = getattr(self, name)
            if name != "listen" and not value:
                continue
            host, sep, port = value.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
                raise ConfigError(f"{_env(name)}: {value!r} is not host:port")
        tls = (self.tls_cert, self.tls_key, self.tls_client_ca)
        if not self.insecure and None in tls:
            raise ConfigError(
                f"{_env('tls_cert')}, {_env('tls_key')} and {_env('tls_client_ca')} are required "
                f"(mutual TLS), unless {_env('insecure')}=true for development"
            )
        if not self.insecure and self.policy_file is None:
            raise ConfigError(f"{_env('policy_file')}: required with mutual TLS")
        for name in (
            "tls_cert",
            "tls_key",
            "tls_client_ca",
            "policy_file",
            "sectigo_password_file",
            "database_password_file",
        ):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ConfigError(f"{_env(name)}: {path} is not a readable file")
        positive = (
            "sectigo_down_after",
            "sectigo_up_after",
            "tracker_workers",
            "grpc_workers",
            "max_concurrent_rpcs",
            "default_authority_id",
            "database_pool_size",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{_env(name)}: must be at least 1")
        if not 0 < self.poll_min_interval <= self.poll_max_interval:
            raise ConfigError(
                f"{_env('poll_min_interval')}/{_env('poll_max_interval')}: need 0 < min <= max"
            )
        for name in ("max_streams", "max_streams_per_identity", "max_sectigo_rpcs"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{_env(name)}: must not be negative (0: the default)")
        limits = self.limits
        if limits.streams_per_identity > limits.streams:
            raise ConfigError(
                f"{_env('max_streams_per_identity')}: must not exceed {_env('max_streams')} "
                f"({limits.streams})"
            )
        if limits.streams >= self.grpc_workers:
            raise ConfigError(
                f"{_env('max_streams')}: {limits.streams} streams would leave none of the "
                f"{self.grpc_workers} threads ({_env('grpc_workers')}) to reads of stored "
                "requests; lower it or raise that"
            )
        for name in (
            "give_up_after",
            "sectigo_timeout",
            "shutdown_grace",
            "keepalive_time",
            "keepalive_timeout",
            "login_backoff_initial",
            "sectigo_check_interval",
            "lease_seconds",
            "watch_reread_seconds",
            "max_clock_skew",
            "max_failed_orders",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{_env(name)}: must be positive")
        if self.tls_expiry_warning_days < 0:
            raise ConfigError(f"{_env('tls_expiry_warning_days')}: must not be negative")
        if self.prestop_seconds < 0:
            raise ConfigError(f"{_env('prestop_seconds')}: must not be negative")
        if self.login_backoff_max < self.login_backoff_initial:
            raise ConfigError(
                f"{_env('login_backoff_max')}: must be at least "
                f"{_env('login_backoff_initial')} ({self.login_backoff_initial:g})"
            )
        if self.quarantine <= self.sectigo_timeout:
            raise ConfigError(
                f"{_env('quarantine')}: must exceed {_env('sectigo_timeout')} "
                f"({self.sectigo_timeout:g} s), or an answer could still arrive after it; "
                "allow minutes for Sectigo's processing lag"
            )
        self._check_database()
        if self.log_format not in ("json", "console", "auto"):
            raise ConfigError(f"{_env('log_format')}: must be json, console or auto")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"{_env('log_level')}: must be debug, info, warning or error")
        if not self.batch_prefix or len(self.batch_prefix) > 40:
            raise ConfigError(f"{_env('batch_prefix')}: must be 1 to 40 characters")
        self._check_subject_defaults()

    def _check_subject_defaults(self) -> None:
        """The subject defaults within the bounds a caller's subject is held to (RFC 5280's),
        so that a bad one is refused here, not blamed on every caller's request."""
        for part, bound in validation.SUBJECT_BOUNDS.items():
            name = f"subject_{part}"
            try:
                validation.subject_text(getattr(self, name), bound, _env(name))
            except InvalidArgument as exc:
                raise ConfigError(
                    f"{exc}; shorten or correct it (it fills the subject of every certificate "
                    "whose profile needs it and whose request gives none), or leave it empty"
                ) from None
        country = self.subject_country
        if country and not validation.COUNTRY.fullmatch(country):
            raise ConfigError(
                f"{_env('subject_country')}: {country!r} is not an ISO 3166-1 two-letter code; "
                "give two capital letters like 'US' or 'DE', or leave it empty"
            )

    def _check_database(self) -> None:
        if not self.database_url:
            if self.database_password_file is not None:
                raise ConfigError(
                    f"{_env('database_password_file')}: set only with {_env('database_url')}"
                )
            return
        scheme, sep, _ = self.database_url.partition("://")
        if not sep or scheme not in ("postgresql", "postgres"):
            raise ConfigError(
                f"{_env('database_url')}: must be a postgresql://user@host:port/db URL"
            )
        try:
            info = conninfo_to_dict(self.database_url)
        except psycopg.Error:
            raise ConfigError(
                f"{_env('database_url')}: not a valid PostgreSQL URL "
                "(postgresql://user@host:port/db)"
            ) from None
        if info.get("password"):
            raise ConfigError(
                f"{_env('database_url')}: must not hold the password; put it in the file "
                f"named by {_env('database_password_file')}"
            )
        if self.database is not None:
            raise ConfigError(
                f"{_env('database')} and {_env('database_url')}: set one (SQLite or PostgreSQL)"
            )
        if self.data_key_file is None:
            raise ConfigError(
                f"{_env('data_key_file')}: required with {_env('database_url')}, since every "
                "replica must seal and open secrets with the same key"
            )

    @property
    def limits(self) -> Limits:
        """How many RPCs of each kind may hold a thread, the defaults filled in."""
        return Limits.for_workers(
            self.grpc_workers,
            self.max_streams,
            self.max_streams_per_identity,
            self.max_sectigo_rpcs,
        )

    @property
    def database_path(self) -> Path:
        return self.database or self.state_dir / "requests.db"

    @property
    def data_key_path(self) -> Path:
        return self.data_key_file or self.state_dir / "data.key"

    @classmethod
    def load(
        cls,
        file: Path | None = None,
        environ: Mapping[str, str] = os.environ,
        overrides: Mapping[str, Any] | None = None,
    ) -> ServiceConfig:
        """Defaults, then the TOML file, then the environment, then explicit overrides."""
        values: dict[str, Any] = {}
        if file is not None:
            values.update(_from_file(file))
        for name in _field_names():
            raw = environ.get(_env(name))
            if raw is not None:
                values[name] = raw
        values.update(overrides or {})
        hints = get_type_hints(cls)
        parsed = {name: _parse(name, hints[name], value) for name, value in values.items()}
        return cls(**parsed)


def settings_table() -> list[tuple[str, str, str, str]]:
    """(environment variable, TOML key, default, meaning) of every setting, for the docs."""
    rows = []
    for spec in dataclasses.fields(ServiceConfig):
        default = "" if spec.default is None else str(spec.default)
        rows.append((_env(spec.name), spec.name, default, str(spec.metadata["help"])))
    return rows


def settings_markdown() -> str:
    """docs/settings.md, generated from :class:`ServiceConfig` so the two cannot drift."""
    lines = [
        "# sectigo-svc settings",
        "",
        "Generated by `sectigo-svc settings` from `sectigo_svc/config.py`; do not edit by hand.",
        "Each setting is read from the TOML file given with `--config` (the TOML key) and from",
        "the environment (the variable), the environment winning. Secrets are not settings: the",
        "Sectigo password comes from `SECTIGO_PASSWORD` or the file named by",
        "`SECTIGO_SVC_SECTIGO_PASSWORD_FILE`.",
        "",
        "| environment variable | TOML key | default | meaning |",
        "|---|---|---|---|",
    ]
    for env, key, default, meaning in settings_table():
        shown = f"`{default}`" if default else "(none)"
        lines.append(f"| `{env}` | `{key}` | {shown} | {meaning} |")
    return "\n".join(lines) + "\n"


def _env(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(ServiceConfig)]


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    unknown = sorted(set(data) - set(_field_names()))
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting {unknown[0]!r}")
    return data


def _parse(name: str, hint: Any, value: Any) -> Any:
    """Coerce an environment string (or TOML value) to the setting's type, naming it on failure."""
    kinds = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
    kind = next(k for k in kinds if k is not type(None))
    if value is None or (value == "" and type(None) in kinds):
        return None
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind is Path:
            return Path(str(value)).expanduser()
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{_env(name)}: {value!r} is not a valid {kind.__name__}") from None
