"""The ``voiceprint`` command group and what every command shares.

Commands work in-process on the configured stores (same environment
variables as the service) and act for one tenant (``--tenant``, default
``default``) with every scope, as the host's operator; what they change is
audited with actor ``cli``. With the embedded Milvus Lite file only one
process may open it: stop ``voiceprint serve`` first, or use the HTTP API,
or a Milvus server.

Exit status: 0 success, 1 an error (message on stderr), 2 a usage error,
3 ``verify`` rejected the claim.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import click

from voiceprint.config import Config
from voiceprint.errors import VoiceprintError

EXIT_REJECTED = 3


class _Group(click.Group):
    """Turns :class:`VoiceprintError` from any command into a clean one-line error (exit 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VoiceprintError as exc:
            raise click.ClickException(f"{exc.message} [{exc.reason}]") from exc


def cli_runtime() -> Any:
    """The stores and models for one command, closed when the command ends."""
    from voiceprint.runtime import Runtime
    rt = Runtime.from_config(Config())
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(rt.close)
    return rt


def tenant_of(rt: Any, name: str) -> int:
    from voiceprint.services.access import AccessService
    return AccessService(rt).tenant_id(name)


def audit_cli(rt: Any, tenant_id: int | None, action: str, outcome: str, **fields: Any) -> None:
    from voiceprint.services import audit
    audit.record(rt.engine, audit.AuditEvent(action=action, outcome=outcome, tenant_id=tenant_id,
                                             actor="cli", **fields))


tenant_option: Callable[[Any], Any] = click.option(
    "--tenant", default="default", show_default=True, help="the tenant to act for")


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


@click.group(cls=_Group)
@click.version_option(package_name="voiceprint")
def main() -> None:
    """voiceprint: speaker enrollment, identification, verification and sound search."""
