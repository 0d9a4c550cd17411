"""Real Redis set-ups beyond one plain server, for tests: master + replica + Sentinel, an ACL-only
server, a TLS-only server. Every process listens on a free loopback port and logs under its workdir."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.certs import TlsFiles
from tests.support.servers import RedisProcess, wait_for_port
from tests.support.waiting import until_sync
from vmpooler.store.embedded import free_port, redis_server_binary

MASTER_NAME = "mymaster"
ACL_USER, ACL_PASSWORD = "vmp", "secret"


def spawn(workdir: Path, conf: str, *, sentinel: bool = False, port: int | None = None) -> RedisProcess:
    """``redis-server`` listening on ``port`` with ``conf`` (redis.conf lines; later lines win) after
    loopback, no-persistence defaults."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / ("sentinel.conf" if sentinel else "redis.conf")
    # a sentinel rewrites its own file: it must be a writable file, not command-line arguments
    defaults = f'port {port}\nbind 127.0.0.1\ndir "{workdir}"\nsave ""\nappendonly no\nlogfile "{workdir}/log"\n'
    path.write_text(defaults + conf + "\n")
    args = [redis_server_binary(), str(path), *(["--sentinel"] if sentinel else [])]
    # a configuration error is printed before the log file opens: keep the console output too
    with (workdir / "console").open("wb") as console:
        process = subprocess.Popen(args, stdout=console, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process)
    except (RuntimeError, TimeoutError) as exc:
        process.kill()
        process.wait(10)
        output = "".join((workdir / name).read_text() for name in ("console", "log") if (workdir / name).exists())
        raise RuntimeError(f"redis-server in {workdir} did not start: {exc}\n{output[-2000:]}") from exc
    return RedisProcess(port, process, workdir)


def wait_until(what: str, check: Callable[[], bool], timeout: float = 15.0) -> None:
    # a Redis that is restarting or failing over refuses the check: that (only) means "not yet"
    until_sync(check, what, timeout=timeout, pause=0.1, retry_on=(redis.RedisError,))


@dataclass
class SentinelGroup:
    """One master, one replica and one sentinel (quorum 1) watching them as ``MASTER_NAME``."""

    master: RedisProcess
    replica: RedisProcess
    sentinel: RedisProcess

    def redis_section(self) -> dict[str, object]:
        return {"sentinels": [f"127.0.0.1:{self.sentinel.port}"], "master_name": MASTER_NAME, "socket_timeout": 2}

    def master_port(self) -> int:
        """The port the sentinel currently names as master."""
        with redis.Redis(port=self.sentinel.port, decode_responses=True) as client:
            _host, port = client.sentinel_get_master_addr_by_name(MASTER_NAME)
        return int(port)

    def stop(self) -> None:
        for process in (self.sentinel, self.replica, self.master):
            process.stop()


def start_sentinel_group(workdir: Path) -> SentinelGroup:
    """Returns once the replica is in sync and the sentinel knows it, so a failover can promote it."""
    # the replica's first sync would otherwise wait 5 s for more replicas to join a diskless transfer
    master = spawn(workdir / "master", "repl-diskless-sync-delay 0")
    replica = spawn(workdir / "replica", f"replicaof 127.0.0.1 {master.port}")
    with redis.Redis(port=replica.port, decode_responses=True) as client:
        wait_until("replica not in sync", lambda: client.info("replication")["master_link_status"] == "up")
    # failover in ~2 s instead of the default 30 s + 3 min, so a test can watch one
    sentinel = spawn(
        workdir / "sentinel",
        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master.port} 1\n"
        f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
        f"sentinel failover-timeout {MASTER_NAME} 3000\n",
        sentinel=True,
    )
    with redis.Redis(port=sentinel.port, decode_responses=True) as client:
        wait_until("sentinel does not see the replica", lambda: len(client.sentinel_slaves(MASTER_NAME)) == 1)
    return SentinelGroup(master, replica, sentinel)


def start_acl_redis(workdir: Path) -> RedisProcess:
    """A server only ``ACL_USER``/``ACL_PASSWORD`` may use: the default user is switched off."""
    return spawn(workdir, f"user {ACL_USER} on >{ACL_PASSWORD} ~* &* +@all\nuser default off")


def start_tls_redis(workdir: Path, tls: TlsFiles) -> RedisProcess:
    """A server that speaks TLS only (no plain port) and does not ask clients for certificates."""
    port = free_port()
    return spawn(
        workdir,
        f"port 0\ntls-port {port}\ntls-cert-file {tls.cert}\ntls-key-file {tls.key}\n"
        f"tls-ca-cert-file {tls.ca}\ntls-auth-clients no",
        port=port,
    )
