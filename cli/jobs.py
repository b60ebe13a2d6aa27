"""The commands that run many jobs: `reshoot bench` (and `bench compare`) and `reshoot batch`.

Thin, like the rest of the CLI: they parse, call reshoot.bench / reshoot.batch, and print.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(stderr=True)
bench_app = typer.Typer(
    help="The reshoot benchmark: fixed, versioned tasks, baselines and plug-in methods, one table.",
    invoke_without_command=True,
)
DATA_ENV = "RESHOOT_DATA"


def _default_data() -> Path:
    """$RESHOOT_DATA, else ./shared/data or ../shared/data (a checkout beside its data), whichever exists."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    for candidate in (Path("shared/data"), Path("../shared/data")):
        if candidate.is_dir():
            return candidate.resolve()
    return Path("../shared/data").resolve()


def _told(result) -> None:
    state = "[red]failed[/red]" if result.error else "[green]done[/green]"
    console.print(f"{escape(result.key)}: {state} in {result.seconds:.1f} s", highlight=False)
    if result.error:
        console.print("  " + escape(result.error.strip().splitlines()[-1]), highlight=False)


@bench_app.callback()
def bench(
    ctx: typer.Context,
    suite: str = typer.Option("smoke", "--suite", help="The suite: smoke (minutes, CI) or v1 (the full bench)."),
    out: Path = typer.Option(Path("bench"), "--out", help="Folder for results.json and results.md."),
    method: list[str] = typer.Option(
        [],
        "--method",
        help="A method (repeat): nearest-camera, splat, inpaint, model, an entry point of reshoot.bench.methods, "
        "or module:callable. Default: the four built in.",
    ),
    method_command: list[str] = typer.Option(
        [],
        "--method-command",
        help='An outside program as a method (repeat): "NAME=CMD ... {inputs} {out}" (docs/bench.md).',
    ),
    task: list[str] = typer.Option([], "--task", help="Run only these tasks (repeat): overhead, placement, ..."),
    executor: str = typer.Option("serial", "--executor", help="serial, or ray (pip install 'reshoot\\[ray]')."),
    address: str | None = typer.Option(None, "--address", help="A Ray cluster to join (default: a local Ray)."),
    workers: int | None = typer.Option(None, "--workers", help="CPUs of the local Ray (default: all)."),
    data: Path | None = typer.Option(None, "--data", help=f"Real footage folder (default ${DATA_ENV} or shared/data)."),
    cache: Path | None = typer.Option(
        None, "--cache", help="Prepared takes (default OUT/cache; reused when unchanged)."
    ),
) -> None:
    """Run a bench suite and write OUT/results.json and OUT/results.md.

    Exits 1 when a job failed (its row says why), 0 otherwise."""
    if ctx.invoked_subcommand is not None:
        return
    from reshoot.bench.methods import BUILTIN_METHODS
    from reshoot.bench.runner import BenchSettings, run_suite, summary_rows
    from reshoot.bench.suite import suite_named

    chosen = suite_named(suite)
    methods = [*method, *method_command] or list(BUILTIN_METHODS)
    settings = BenchSettings(out=out, cache=cache or out / "cache", data=data or _default_data())
    document = run_suite(chosen, methods, settings, task, executor, address, workers, _told)
    table = Table(title=f"{document['bench']} · suite {suite} · {document['wall_seconds']} s")
    columns = ("psnr", "psnr_filmed", "psnr_generated", "ssim", "flip", "placement_px", "entity_iou", "cross_view")
    for name in ("method", "task", "takes", *columns):
        table.add_column(name)
    for row in summary_rows(document):
        cells = ["–" if row[c] is None else f"{row[c]:.3f}" for c in columns]
        table.add_row(row["method"], row["task"], str(row["takes"]), *cells)
    console.print(table)
    print(out / "results.json")
    if any(r["error"] for r in document["results"]):
        raise typer.Exit(1)


@bench_app.command("compare")
def bench_compare(
    a: Path = typer.Argument(..., help="The first results.json (the baseline)."),
    b: Path = typer.Argument(..., help="The second results.json."),
    metric: list[str] = typer.Option([], "--metric", help="Only these metrics (repeat); default every table metric."),
) -> None:
    """Print B − A per method × task × metric, paired by take, with a 95 % bootstrap interval and p."""
    from reshoot.bench.compare import compare_results
    from reshoot.bench.runner import TABLE_METRICS, read_results

    first, second = read_results(a), read_results(b)
    if first["bench"] != second["bench"]:
        console.print(f"[yellow]warning:[/yellow] different bench versions: {first['bench']} and {second['bench']}")
    differences = compare_results(first, second, tuple(metric) or TABLE_METRICS)
    table = Table(title=f"B − A ({b} − {a})")
    for name in ("method", "task", "metric", "takes", "A", "B", "B − A", "95 % interval", "p"):
        table.add_column(name)
    for d in differences:
        interval = "–" if d.interval is None else f"[{d.interval[0]:+.4g}, {d.interval[1]:+.4g}]"
        p = "–" if d.p is None else f"{d.p:.3f}"
        table.add_row(
            d.method,
            d.task,
            d.metric,
            str(d.takes),
            f"{d.mean_a:.4g}",
            f"{d.mean_b:.4g}",
            f"{d.difference:+.4g}",
            interval,
            p,
        )
    Console().print(table)


def batch(
    takes_file: Path = typer.Argument(..., help="TAKES.toml: the takes and their workspaces (docs/cli.md#batch)."),
    take: list[str] = typer.Option([], "--take", help="Run only this take (repeat); default every take."),
    until: str | None = typer.Option(None, "--until", help="Stop after this stage (default: \\[batch] until, or all)."),
    executor: str = typer.Option("serial", "--executor", help="serial, or ray (pip install 'reshoot\\[ray]')."),
    address: str | None = typer.Option(None, "--address", help="A Ray cluster to join (default: a local Ray)."),
    workers: int | None = typer.Option(None, "--workers", help="CPUs of the local Ray (default: all)."),
    gpu: bool = typer.Option(False, "--gpu", help="reconstruct and synthesize jobs each ask for one GPU."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Schedule the jobs but run nothing (a plan)."),
    emit_openjd: Path | None = typer.Option(
        None,
        "--emit-openjd",
        help="Write an Open Job Description template for a render farm into this folder; run nothing.",
    ),
) -> None:
    """Run `reshoot run` on many takes: a job per take × stage, serially or on Ray.

    Exits 1 when a job failed (the jobs after it in that take are not run), 0 otherwise."""
    from reshoot.batch import plan_batch, read_batch
    from reshoot.scaleout import run_jobs

    plan = read_batch(takes_file)
    jobs = plan_batch(plan, take, until, gpu, dry_run)  # checks --take and --until before anything runs
    if emit_openjd is not None:
        from reshoot.openjd import write_openjd

        print(write_openjd(plan, emit_openjd, until, gpu))
        return
    takes = len({job.args[0].name for job in jobs})
    console.print(
        f"{len(jobs)} job(s): {takes} take(s) × {len(jobs) // takes} stage(s)"
        + (" [dim](dry run)[/dim]" if dry_run else "")
    )
    results = run_jobs(jobs, executor, address, workers, _told)
    failed = [r for r in results.values() if r.error]
    console.print(f"{len(results) - len(failed)} job(s) done, {len(failed)} failed")
    if failed:
        raise typer.Exit(1)
