"""``vmpooler ssh HOST|POOL``: log in to a VM, checking one out first when given a pool (vmfloaty's habit).

The login runs ``ssh`` (or ``$VMPOOLER_SSH``, as git's ``GIT_SSH``) in place of this process, as
``--ssh-user`` (default ``root``, as vmfloaty) with ``--ssh-key`` when given; both may also come from
``ssh_user:``/``ssh_key:`` in ``~/.vmpooler.yaml``. Anything after ``--`` goes to ssh.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from vmpooler.cli.client.session import ClientOptions, client_verb
from vmpooler.errors import NotFound

SSH_ENV = "VMPOOLER_SSH"
DEFAULT_SSH_USER = "root"


@client_verb(json=False)
def ssh(
    opts: ClientOptions,
    target: Annotated[str, typer.Argument(help="a VM's hostname, or a pool to check one out of", metavar="HOST|POOL")],
    ssh_args: Annotated[
        list[str] | None, typer.Argument(help="more ssh arguments, after --", show_default=False, metavar="SSH_ARGS")
    ] = None,
    ssh_user: Annotated[
        str | None, typer.Option("--ssh-user", help="log in as (default: ssh_user: in the config, else root)")
    ] = None,
    ssh_key: Annotated[
        Path | None, typer.Option("--ssh-key", help="private key (default: ssh_key: in the config)", metavar="FILE")
    ] = None,
) -> None:
    """Log in to a VM with ssh; given a pool, check a VM out of it first (and print its name)."""
    with opts.session() as ctx, ctx.client() as client:
        try:
            host = str(client.query(target).get("fqdn") or target)
        except NotFound:  # not a VM: a pool (or alias) to check one out of
            try:
                (vm,) = client.checkout(target)
            except NotFound:
                raise NotFound(f"no VM or pool named {target!r}; `vmpooler list` lists the pools") from None
            host = vm.fqdn
            typer.echo(f"checked out {host}; `vmpooler delete {vm.hostname}` returns it", err=True)
        conn = ctx.connection
        login = ssh_user or (conn.ssh_user if conn else None) or DEFAULT_SSH_USER
        key = str(ssh_key) if ssh_key else (conn.ssh_key if conn else None)
    program = os.environ.get(SSH_ENV) or "ssh"
    argv = [program, *(["-i", os.path.expanduser(key)] if key else []), f"{login}@{host}", *(ssh_args or [])]
    try:
        # the user's own ssh, with an argument list (no shell) of their own values (bandit B606)
        os.execvp(program, argv)  # nosec B606
    except OSError as exc:
        typer.echo(f"error: cannot run {program!r}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None


__all__ = ["ssh"]
