"""``hotline workbench`` (serve) and ``hotline workbench add-user``.

Imports of the web stack wait until a command runs, so other ``hotline`` commands start
without them.
"""

from __future__ import annotations

import typer

from workers.workbench.accounts import ROLES

app = typer.Typer(help="The workbench (工作台): web pages for units, dispatchers, supervisors. "
                       "Without a command: serve it (HOTLINE_WORKBENCH_HOST / _PORT).",
                  invoke_without_command=True)


@app.callback()
def serve(ctx: typer.Context) -> None:
    """Serve the workbench (HOTLINE_WORKBENCH_HOST / _PORT) until SIGINT / SIGTERM."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from workers.runtime.observability import configure_logging, start_metrics_server
    from workers.runtime.settings import get_settings
    from workers.workbench.photos import PhotoConfigError
    from workers.workbench.server import server_config

    settings = get_settings()
    configure_logging(settings)
    try:
        config = server_config(settings)
    except PhotoConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    metrics = start_metrics_server(settings.workbench_metrics_port,
                                   health=config.app.state.health)  # type: ignore[union-attr]
    try:
        uvicorn.Server(config).run()
    finally:
        if metrics:
            metrics.close()


@app.command("add-user")
def add_user(
    username: str = typer.Argument(..., help="The sign-in name."),
    role: str = typer.Option(..., help=f"One of {', '.join(ROLES)}."),
    unit: str | None = typer.Option(None, help="unit staff: the unit id they act for."),
    name: str | None = typer.Option(None, help="Shown on the pages (default: the unit id)."),
    password: str = typer.Option(..., prompt=True, hide_input=True,
                                 confirmation_prompt=True,
                                 help="At least 10 characters (prompted when left out)."),
) -> None:
    """Create a workbench account, or reset its role, unit and password."""
    from activities.dispatch.registry import load_registry
    from workers.runtime.migrate import apply_migrations
    from workers.runtime.settings import get_settings
    from workers.workbench.accounts import AccountError, NewAccount, save_account

    settings = get_settings()
    try:
        if settings.migrate_on_start:  # else `hotline migrate` (the k8s Job) applies them
            apply_migrations(settings.dsn)
        registry = load_registry(settings.config_dir)
        account = save_account(settings.dsn, NewAccount(username, role, password, unit, name),
                               registry)
    except AccountError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # psycopg.OperationalError and friends: one line, no trace
        typer.echo(f"error: cannot write the account to the ledger: {type(exc).__name__}: "
                   f"{exc}; is PostgreSQL up (hotline stack status)?", err=True)
        raise typer.Exit(3) from None
    typer.echo(f"{account.username}: {account.role}"
               + (f" of {account.unit_id}" if account.unit_id else ""))
