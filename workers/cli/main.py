"""The ``hotline`` command: stack, worker, bridges, open311, demo."""

from __future__ import annotations

import typer

from workers.cli.case import register as register_case_commands
from workers.cli.desk import app as desk_app
from workers.cli.dlq import app as dlq_app
from workers.cli.failures import EXIT_CODES_HELP, HotlineGroup, traceback_option
from workers.cli.governance import app as governance_app
from workers.cli.migrate import migrate
from workers.cli.plan import app as plan_app
from workers.cli.routing import app as routing_app
from workers.cli.routing_categories import learn_categories
from workers.cli.workdays import app as calendar_app
from workers.devstack.stack import app as stack_app
from workers.workbench.main import app as workbench_app

# HotlineGroup: every failure is one line on stderr with a documented exit code (epilog).
app = typer.Typer(help="Citizen hotline orchestration (12345 接诉即办).", no_args_is_help=True,
                  cls=HotlineGroup, epilog=EXIT_CODES_HELP)
app.add_typer(stack_app, name="stack", help="Start, stop and check the local stack.")
app.add_typer(routing_app, name="routing",
              help="Precise dispatch: evaluate and explain classification and routing.")
routing_app.command("learn-categories")(learn_categories)  # issue 29: the category model
app.add_typer(dlq_app, name="dlq", help="Dead letters: list, show, re-drive once.")
app.add_typer(desk_app, name="desk",
              help="The dispatch desk (派单复核): list cases the machine was unsure of, decide.")
register_case_commands(app)  # `hotline case ...` and `hotline overdue`
# Governance: report, rankings, priority-streets, hotspots, schedules, projector.
app.add_typer(governance_app)
app.add_typer(plan_app, name="plan")
app.add_typer(calendar_app, name="calendar")
app.command()(migrate)  # `hotline migrate`: the ledger's migrations (a Kubernetes Job)
app.add_typer(workbench_app, name="workbench")


@app.callback()
def _root(traceback: bool = traceback_option()) -> None:
    """Citizen hotline orchestration (12345 接诉即办)."""


@app.command()
def worker() -> None:
    """Run the Temporal worker (workflows and activities)."""
    from workers.worker.main import main as run_worker

    run_worker()


@app.command()
def bridges() -> None:
    """Run the Kafka bridges: intake, unit replies and callbacks into Temporal."""
    from workers.bridges.main import main as run_bridges

    run_bridges()


@app.command()
def open311(
    write_openapi: bool = typer.Option(
        False, "--write-openapi",
        help="Write the OpenAPI document to deploy/open311/openapi.json and exit."),
) -> None:
    """Run the Open311 GeoReport v2 service (HOTLINE_OPEN311_HOST / _PORT)."""
    from workers.open311.service import main as run_open311
    from workers.open311.service import write_openapi as write_document
    from workers.runtime.observability import configure_logging
    from workers.runtime.settings import get_settings

    if write_openapi:
        typer.echo(f"wrote {write_document()}")
        return
    settings = get_settings()
    configure_logging(settings)
    run_open311(settings)


@app.command()
def demo(
    cases: int = typer.Option(100, help="How many complaints the simulated city files."),
    time_scale: float = typer.Option(
        0.00002, help="Multiplies every rule duration (0.00002: a 7-day deadline is ~12 s)."
    ),
) -> None:
    """Bring the stack up and run a small simulated city through every stage."""
    from workers.devstack.demo import run_demo

    run_demo(cases=cases, time_scale=time_scale)


def main() -> None:
    from workers.cli.output import run_as_process

    # Ends the process with the command's exit code once output is flushed: temporalio
    # may abort at interpreter exit (sdk-python issue 300), which would hide that code.
    run_as_process(app)


if __name__ == "__main__":
    main()
