"""The ``:config:`` section: the service-wide settings every pool inherits from, in the original's units."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

__all__ = ["UPSTREAM_ONLY_KEYS", "VSPHERE_KEYS", "GlobalSettings"]


class GlobalSettings(BaseModel):
    """The ``:config:`` section; durations are in the original's units (noted per key)."""

    model_config = ConfigDict(extra="ignore")

    site_name: str = Field("vmpooler", description="The name the dashboard shows in its header.")
    logfile: str | None = Field(None, description="Also write the log to this file (it always goes to stderr).")
    task_limit: int = Field(
        10, ge=1, description="Clones in flight at once, over every pool and every manager on the Redis."
    )
    ondemand_clone_limit: int = Field(10, ge=1, description="On-demand clones in flight at once.")
    max_ondemand_instances_per_request: int = Field(
        10, ge=1, description="The most VMs of one pool an on-demand request may ask for."
    )
    ondemand_request_ttl: int = Field(
        5, ge=1, description="Minutes an on-demand request may wait for its VMs; then it fails and returns them."
    )
    timeout: int = Field(
        15, ge=1, description="Minutes a new VM may take to clone and boot; then it is marked failed and destroyed."
    )
    timeout_notification: int = Field(
        5, ge=0, description="Minutes; accepted for compatibility (the original warns this long before `timeout`)."
    )
    max_vm_retries: int = Field(
        3, ge=0, description="An on-demand request fails after more than this many failed clones in one of its pools."
    )
    vm_checktime: int = Field(1, ge=0, description="Minutes between checks that a ready VM still answers.")
    vm_lifetime: int = Field(
        24, ge=0, description="Hours a checked-out VM lives unless it has a lifetime of its own (0: no limit)."
    )
    vm_lifetime_auth: int | None = Field(
        None, ge=0, description="Hours of lifetime a VM checked out with a token gets (else `vm_lifetime` applies)."
    )
    max_lifetime_upper_limit: int | None = Field(
        None, ge=0, description="The most hours `PUT /vm/<host>` may set as a lifetime (none: no limit)."
    )
    ready_ttl: int = Field(
        60, ge=1, description="Minutes a VM may stay ready and unused; then it is replaced by a fresh one."
    )
    prefix: str = Field("", description="Put in front of every new VM's name.")
    allowed_tags: list[str] | None = Field(None, description="When set, the only tag names `PUT /vm/<host>` accepts.")
    max_tags_per_vm: int = Field(32, ge=1, le=10_000, description="The most tags one VM may carry.")
    max_tag_name_length: int = Field(50, ge=1, le=1_000, description="The longest tag name `PUT /vm/<host>` accepts.")
    max_tag_value_length: int = Field(
        255, ge=1, le=100_000, description="The longest tag value `PUT /vm/<host>` accepts."
    )
    clone_target: str | None = Field(
        None,
        description="Where new VMs are made (a vSphere cluster, ...) for pools naming none; the provider reads it.",
    )
    migration_limit: int | None = Field(
        None, ge=0, description="Accepted for compatibility (vSphere migration at checkout); not used."
    )
    max_tries: int = Field(
        3, ge=1, description="Accepted for compatibility (the original's provider retries); not used."
    )
    retry_factor: int = Field(
        10, ge=0, description="Accepted for compatibility (the original's provider retries); not used."
    )
    check_loop_delay_min: float = Field(
        5.0, gt=0, description="Seconds between a pool's passes while they change something."
    )
    check_loop_delay_max: float = Field(
        60.0, gt=0, description="The longest pause, in seconds, between a quiet pool's passes."
    )
    check_loop_delay_decay: float = Field(
        2.0, ge=1, description="The pause between passes grows by this factor after each pass that changed nothing."
    )
    experimental_features: bool = Field(
        False, description="Turns on the API's routes that change pools at run time (`/config/*`, `/poolreset`)."
    )
    usage_stats: bool = Field(False, description="Count checkouts and returns per user (`vmpooler_usage_total`).")
    request_logger: bool = Field(False, description="Log every API request.")
    log_format: Literal["plain", "json"] = Field(
        "plain", description="Ours: log lines as plain text, or as JSON lines for log shippers."
    )
    api_tls_cert_file: str | None = None  # ours: the API serves HTTPS with this certificate (PEM)
    api_tls_key_file: str | None = None  # its private key, unless the certificate file holds it
    rate_limiting_enabled: bool = Field(False, description="Turns rate limiting on; the limits are in `:rate_limits:`.")
    # ours: bounds that keep one client from holding or breaking the service (docs/security.md)
    max_pool_size: int = Field(
        10_000,
        ge=0,
        le=1_000_000,
        description="Ours: the largest size a pool may have, configured or set through the API.",
    )
    allowed_hosts: list[str] | None = Field(
        None,
        description="Ours: the only Host names the API answers to (`.example.com` takes every name under it); "
        "others get 400, which defeats DNS rebinding. Unset: any.",
    )
    api_header_timeout: float = Field(
        10.0,
        gt=0,
        description="Ours: seconds a client may take to send a request's line and headers, and again its body; "
        "then 408.",
    )
    api_keepalive_timeout: float = Field(
        5.0, gt=0, description="Ours: seconds an idle kept-alive connection stays open between requests."
    )
    api_max_concurrency: int = Field(
        1000, ge=1, description="Ours: connections and requests in progress at once; beyond it new requests get 503."
    )
    extra_config: str | None = Field(
        None, description="More YAML files, comma-separated, merged over this one in order (paths relative to it)."
    )
    backend_weight: dict[str, int] = Field(
        default_factory=dict,
        description="For an alias of several pools: weight of each pool (by clone target or name; default 1) "
        "when choosing which to check out from; 0 puts a pool last.",
    )
    purge_unconfigured_resources: bool = Field(
        False,
        validation_alias=AliasChoices("purge_unconfigured_resources", "purge_unconfigured_folders"),
        description="Lets providers delete what they hold that no pool is configured for (each provider decides).",
    )
    domain: str | None = Field(
        None, description="Deprecated (removed in the original's v3): every pool's DNS domain; use `:dns_configs:`."
    )
    check_ready_vm_hostname_for_mismatch: bool = Field(
        True, description="Accepted for compatibility (the original retires a VM whose hostname differs); not used."
    )
    # vSphere-only, read by that provider
    create_folders: bool = Field(False, description="vSphere: create a pool's folder when it is missing.")
    create_template_delta_disks: bool = Field(
        False, description="vSphere: give each template delta disks, for linked clones."
    )
    create_linked_clones: bool = Field(True, description="vSphere: make linked clones rather than full ones.")
    manage_host_selection: bool = Field(False, description="vSphere: place each new VM on the least-used host.")
    host_selection_max_age: int = Field(
        60, ge=0, description="vSphere: seconds a reading of the hosts' use is reused for host selection."
    )
    utilization_limit: int = Field(
        90, ge=0, le=100, description="vSphere: percent of CPU or memory use above which a host is not chosen."
    )
    # a pool whose clones keep failing stops cloning and backs off (upstream 3.8's keys)
    circuit_breaker_enabled: bool = True
    circuit_breaker_failure_threshold: int = Field(5, ge=1)  # consecutive failed clones
    circuit_breaker_timeout: float = Field(30.0, gt=0)  # seconds of the first backoff; doubles per failed probe
    circuit_breaker_max_timeout: float = Field(600.0, gt=0)  # ours: the longest backoff, seconds
    # ours: several managers split the pools through leases in Redis of this many seconds
    manager_lease_seconds: float = Field(15.0, ge=3)
    # ours: the event stream and the audit trail (docs/events.md, docs/audit.md)
    events_max_length: int = Field(
        100_000, ge=100, le=100_000_000, description="Entries the event stream keeps (about: trimmed with MAXLEN ~)."
    )
    events_max_age_hours: float = Field(
        168, gt=0, description="Hours an event is kept; the manager trims older ones (MINID ~) every few minutes."
    )
    events_expiring_minutes: float = Field(
        15,
        ge=0,
        description="Minutes before a checked-out VM's lifetime ends that `vm.expiring` is written (0: never).",
    )
    events_max_streams: int = Field(
        32, ge=0, description="`GET /api/v3/events` streams one API process serves at once; more get a 503."
    )
    events_keepalive_seconds: float = Field(
        15, ge=0.2, le=300, description="Seconds of quiet after which an event stream sends a keep-alive comment."
    )
    audit_retention_days: float = Field(365, gt=0, description="Days an audit entry is kept.")
    audit_max_length: int = Field(
        1_000_000, ge=100, le=100_000_000, description="Entries the audit trail keeps at most (about)."
    )


#: :config: keys of upstream 3.8+/3.9 features (dead-letter queues, the stale-queue purger, health
# checks, adaptive timeouts) that this implementation does not have: accepted without a warning
UPSTREAM_ONLY_KEYS: Final = frozenset(
    # one word list reads better here than 21 one-per-line strings
    """dlq_enabled dlq_ttl dlq_max_entries purge_enabled purge_dry_run purge_interval max_pending_age
    max_ready_age max_completed_age max_orphaned_age health_check_enabled health_check_interval
    health_thresholds circuit_breaker_half_open_attempts adaptive_timeout_enabled connection_pool_timeout_min
    connection_pool_timeout_max connection_pool_timeout_initial connection_pool_monitor_enabled
    connection_pool_monitor_interval""".split()
)

#: the :config: keys only the vSphere provider reads (it takes them as its own options' defaults)
VSPHERE_KEYS: Final = (
    "create_linked_clones",
    "create_folders",
    "create_template_delta_disks",
    "manage_host_selection",
    "host_selection_max_age",
    "utilization_limit",
    "purge_unconfigured_resources",
)
