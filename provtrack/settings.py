"""Settings, from arguments or PROVTRACK_* environment variables. Built in bootstrap, never at import."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROVTRACK_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./provtrack.db",
        description="sqlite:///PATH (WAL mode) or postgresql://USER@HOST:PORT/DB",
    )
    host: str = "127.0.0.1"
    port: int = 8641
    public_url: str | None = Field(
        default=None,
        description="base URL used in href values (e.g. https://som.example.net); default: the request's",
    )
    max_limit: int = Field(default=1000, description="largest page a list request may ask for")
    default_limit: int = Field(default=100, description="page size when a list request gives no limit")
    max_body_bytes: int = Field(default=1024 * 1024, description="largest request body accepted")
    max_depth: int = Field(default=32, description="deepest nesting of objects and arrays in a body")
    max_string_length: int = Field(default=16_384, description="longest string value in a body or a filter")
    max_items_per_order: int = Field(default=100, description="order items in one order, nested included")
    max_characteristics_per_service: int = Field(
        default=200, description="serviceCharacteristic entries of one service"
    )
    max_sort_terms: int = Field(default=8, description="attributes in one `sort=`")
    max_filter_terms: int = Field(default=20, description="attribute filters in one list query")
    auth_cache_seconds: float = Field(
        default=5.0, description="how long an API key lookup is remembered (a revocation takes this long)"
    )
    jwt_issuer: str | None = Field(
        default=None,
        description="accept JWTs of this issuer (its `iss`) besides API keys; none: API keys only",
    )
    jwt_audience: str = Field(default="provtrack", description="the `aud` a JWT must carry")
    jwt_jwks_url: str | None = Field(default=None, description="the issuer's JWKS (its signing keys)")
    jwt_algorithms: str = Field(default="RS256,ES256", description="signature algorithms accepted")
    jwt_leeway_seconds: float = Field(default=60, description="clock skew allowed on exp and nbf")
    jwt_client_claim: str = Field(
        default="client_id", description="the claim naming the client (then azp, then sub)"
    )
    idempotency_lease_seconds: float = Field(
        default=60,
        description="a request with an Idempotency-Key not finished after this long is taken to have died: "
        "a retry runs it again",
    )
    session_seconds: float = Field(
        default=3600, description="how long a dashboard session cookie lasts (docs/security.md)"
    )
    api_processes: int = Field(
        default=1,
        description="`provtrack serve`: API processes on the one port (uvicorn workers); one Python "
        "process uses one core, so one per core the node gives the API",
    )
    serve_worker: bool = Field(
        default=True, description="`provtrack serve` runs the job worker in its own process too"
    )
    worker_threads: int = Field(
        default=8,
        description="jobs run at once by one worker (most wait on a downstream system, not the CPU)",
    )
    worker_poll_seconds: float = Field(
        default=1.0,
        description="longest wait between two looks at the job table: the fallback when a wake-up "
        "(in-process, NOTIFY, SQLite data_version) is lost, and how soon an expired lease is found",
    )
    worker_claim_batch: int = Field(
        default=32,
        description="most jobs one claim takes (one statement; never more than the worker's free threads)",
    )
    database_pool_size: int = Field(
        default=20,
        description="PostgreSQL connections a process keeps open (half as many again may open under a "
        "burst, closed when they come back: a connection opened per request costs the server a process). "
        "An API process needs one per request in flight (16 clients: 16), a worker one per thread plus "
        "its claims; every process's pool and burst together must fit PostgreSQL's max_connections",
    )
    database_pool_timeout_seconds: float = Field(
        default=30.0,
        description="PostgreSQL: how long a request waits for a free connection before it fails",
    )
    migration_lock_timeout_seconds: float = Field(
        default=300.0,
        description="PostgreSQL: how long a starting process waits for another one's migration to end",
    )
    events_callback_allow: str = Field(
        default="",
        description=(
            "hub callback allow-list, comma separated: host names (*.example.net), addresses, CIDR "
            "networks; empty allows any public host. Loopback/private/link-local need an entry"
        ),
    )
    events_retry_horizon_seconds: float = Field(
        default=24 * 3600, description="how long a failing delivery is retried before it is dead-lettered"
    )
    events_attempt_timeout_seconds: float = Field(default=10.0, description="timeout of one delivery POST")
    events_max_in_flight_per_subscriber: int = Field(
        default=4, description="delivery POSTs one subscriber may have in flight at once (per process)"
    )
    events_secret_overlap_seconds: float = Field(
        default=24 * 3600, description="how long the old secret still signs after a rotation"
    )
    events_outbox_retention_seconds: float = Field(
        default=7 * 24 * 3600,
        description="delivered events older than this leave the outbox (asOf and the timeline keep working)",
    )
    catalog: str | None = Field(
        default=None,
        description="provisioning catalog YAML file (docs/catalog.md), or `demo` for the shipped one",
    )
    accept_orders_without_catalog: bool = Field(
        default=False,
        description="without a catalog, accept orders anyway: they wait `acknowledged` and are planned "
        "when provtrack starts with one (default: refuse them, 503 NO_CATALOG)",
    )
    listener_url: str | None = Field(
        default=None,
        description="base URL downstream systems reach provtrack at for notifications; default public_url or http://host:port",
    )
    simulator_url: str | None = Field(
        default=None,
        description="points every catalog system at this `provtrack simulate` (URL/<system>/tmf-api/...)",
    )
    demo_simulator_port: int = Field(
        default=8652, description="port of the simulated systems of `serve --demo`"
    )
    demo_order_every_seconds: float = Field(default=3.0, description="`serve --demo`: a new order this often")
    demo_system_delay_seconds: float = Field(
        default=4.0, description="`serve --demo`: how long a simulated system takes per resource order"
    )
    live_summary_seconds: float = Field(
        default=10.0, description="`serve --live` off a terminal: a summary line this often"
    )
    partner_simulator_url: str | None = Field(
        default=None,
        description="points every catalog partner at this `provtrack simulate --mode partner` "
        "(URL/<partner>/tmf-api/serviceOrdering/v4)",
    )
    demo_partner_port: int = Field(
        default=8653, description="port of the simulated partners of `serve --demo`"
    )
    downstream_timeout_seconds: float = Field(default=10.0, description="timeout of one TMF652 call")
    product_ordering_url: str | None = Field(
        default=None,
        description="TMF622 product ordering API (…/tmf-api/productOrderingManagement/v4): provtrack subscribes "
        "to its hub, confirms its cancellation events there and polls it as the safety net",
    )
    product_ordering_poll_seconds: float = Field(
        default=300.0, description="safety poll of the product orders open service orders name"
    )
    worker_lease_seconds: float = Field(
        default=60.0,
        description="how long a claimed job is kept from other workers before it is run again: longer "
        "than the slowest job (a downstream timeout is 10 s), short enough that a dead worker's jobs "
        "resume within a minute",
    )
    events_delivery_batch: int = Field(
        default=100, description="events (or replays) one delivery job posts before it yields its thread"
    )
    events_prune_batch: int = Field(default=1000, description="delivered outbox rows one statement deletes")
    archive_batch: int = Field(default=500, description="`provtrack archive`: orders moved per transaction")
    policy: str | None = Field(
        default=None,
        description="escalation policy YAML (docs/policy.md), or `demo`; reloaded when the file changes. "
        "Without one: jeopardy levels with default thresholds, no escalation rules",
    )
    policy_webhook_secret: str | None = Field(
        default=None,
        description="signs escalation webhooks (whsec_..., as the event hub's); unsigned if unset",
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server for escalation emails; none: no email"
    )
    smtp_port: int = 25
    smtp_from: str = Field(default="provtrack@localhost", description="From: of escalation emails")
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    dashboard_poll_seconds: float = Field(
        default=2.0, description="how often an open dashboard page asks whether anything changed"
    )
    log_level: str = "info"
    log_format: str = Field(
        default="console", description="console (readable lines) or json (one object a line)"
    )
    access_log: bool = False

    def base_url(self, request_base: str | None = None) -> str:
        """Where provtrack is reached, for hrefs: `public_url`, else the request's own base URL, else
        http://host:port."""
        return (self.public_url or request_base or f"http://{self.host}:{self.port}").rstrip("/")

    def listener_base_url(self) -> str:
        """Where downstream systems send their notifications: `listener_url`, else `base_url()`."""
        return (self.listener_url or self.base_url()).rstrip("/")
