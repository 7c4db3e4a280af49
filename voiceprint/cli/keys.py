"""``voiceprint keys``, ``voiceprint tenants`` and ``voiceprint audit``: access control on the host."""
from __future__ import annotations

import json


import click

from voiceprint.cli.base import audit_cli, cli_runtime, echo_json, main, tenant_option, tenant_of
from voiceprint.services.access import SCOPES


@main.group()
def keys() -> None:
    """API keys: create (the secret is printed once), list, revoke."""


@keys.command("create")
@click.option("--name", required=True, help="what the key is for, e.g. 'call-centre-desk'")
@click.option("--scope", "scopes", multiple=True, required=True,
              type=click.Choice([*SCOPES, "all"]), help="repeatable")
@tenant_option
@click.option("--create-tenant", is_flag=True, help="create the tenant if it does not exist")
def keys_create(name: str, scopes: tuple[str, ...], tenant: str, create_tenant: bool) -> None:
    """Create an API key and print its secret (shown only this once; only a hash is stored)."""
    from voiceprint.services.access import AccessService
    rt = cli_runtime()
    record, secret = AccessService(rt).create_key(tenant, name, scopes,
                                                  create_tenant=create_tenant)
    audit_cli(rt, record["tenant_id"], "key_create", "ok", target_type="key",
              target_id=record["id"], details={"name": name, "scopes": record["scopes"]})
    click.echo(f"key {record['id']} ({record['key_prefix']}) for tenant {record['tenant']!r}, "
               f"scopes {' '.join(record['scopes'])}", err=True)
    click.echo("the secret below is shown only now; send it as 'Authorization: Bearer <key>'",
               err=True)
    click.echo(secret)


@keys.command("list")
@click.option("--tenant", default=None, help="only this tenant's keys")
@click.option("--json", "as_json", is_flag=True)
def keys_list(tenant: str | None, as_json: bool) -> None:
    """List keys (never their secrets)."""
    from voiceprint.services.access import AccessService
    rows = AccessService(cli_runtime()).keys(tenant)
    if as_json:
        echo_json(rows)
        return
    click.echo(f"{'id':>4}  {'prefix':<12} {'tenant':<12} {'state':<8} {'last used':<26} "
               f"name / scopes")
    for k in rows:
        click.echo(f"{k['id']:>4}  {k['key_prefix']:<12} {k['tenant']:<12} "
                   f"{'active' if k['active'] else 'revoked':<8} {str(k['last_used_at'] or '-'):<26} "
                   f"{k['name']} / {' '.join(k['scopes'])}")


@keys.command("revoke")
@click.argument("key")
def keys_revoke(key: str) -> None:
    """Revoke KEY (its id or prefix); it stops working at once."""
    from voiceprint.services.access import AccessService
    rt = cli_runtime()
    row = AccessService(rt).revoke(key)
    audit_cli(rt, row["tenant_id"], "key_revoke", "ok", target_type="key", target_id=row["id"])
    click.echo(f"revoked key {row['id']} ({row['key_prefix']})")


@main.group()
def tenants() -> None:
    """Tenants: separate sets of speakers, sounds, calibrations and keys."""


@tenants.command("create")
@click.argument("name")
def tenants_create(name: str) -> None:
    from voiceprint.services.access import AccessService
    click.echo(f"tenant {name!r} has id {AccessService(cli_runtime()).tenant_id(name, create=True)}")


@tenants.command("list")
def tenants_list() -> None:
    from voiceprint.services.access import AccessService
    for t in AccessService(cli_runtime()).tenants():
        click.echo(f"{t['id']:>4}  {t['name']}")


@main.group()
def audit() -> None:
    """The audit log."""


@audit.command("export")
@click.option("--tenant", default=None, help="only this tenant (default: all)")
@click.option("--output", "-o", type=click.File("w"), default="-", show_default=True)
def audit_export(tenant: str | None, output: click.utils.LazyFile) -> None:
    """Write every audit record as JSON lines, oldest first."""
    from voiceprint.services import audit as audit_log
    rt = cli_runtime()
    tenant_id = tenant_of(rt, tenant) if tenant else None
    n = 0
    for row in audit_log.export(rt.engine, tenant_id=tenant_id):
        output.write(json.dumps(row, default=str) + "\n")
        n += 1
    audit_cli(rt, tenant_id, "audit_export", "ok", details={"records": n})
    click.echo(f"{n} audit records", err=True)



