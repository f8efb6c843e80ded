"""The ``headshots`` command."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from headshots.config import Settings, get_settings
from headshots.engines.base import Failed, default_engine_name, describe_style, get_engine
from headshots.errors import HeadshotsError
from headshots.render import IdentityGate, render_style
from headshots.report import REPORT_NAME, GenerateReport
from headshots.styles import STYLES, get_style

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Professional headshots from one selfie, on your own machine.",
)
console = Console(stderr=True)


def fail(message: str, code: int = 1) -> None:
    """One line on stderr and a non-zero exit: how every refusal ends."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    try:
        return get_settings()
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        fail(f"invalid setting: {error}".splitlines()[0] + " (see README, Configuration)")
        raise  # unreachable; fail() exits


def read_input(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        fail(f"There is no file at {path}.")
    except IsADirectoryError:
        fail(f"{path} is a folder; give the path of one photo.")
    except PermissionError:
        fail(f"{path} cannot be read (permission denied).")
    raise AssertionError("unreachable")


@app.command()
def styles() -> None:
    """List the style presets as the configured engine makes them."""
    settings = load_settings()
    name = default_engine_name(settings)
    table = Table(
        box=None, pad_edge=False, title=f"Styles with the {name} engine", title_justify="left"
    )
    table.add_column("id", style="bold")
    table.add_column("title")
    table.add_column("look")
    for style in STYLES:
        table.add_row(style.id, style.title, describe_style(style, settings, name))
    Console().print(table)


# How each hosted model is asked for size, by the field it uses.
_SIZE_LABELS = {
    "aspect_ratio": "aspect_ratio",
    "megapixels": "output_megapixels",
    "resolution": "resolution",
    "k": "size",
}


@app.command()
def models() -> None:
    """List the hosted models: what each takes, its seed, and what a headshot and an order cost."""
    from headshots.engines.replicate.engine import price_of, typical_pixels
    from headshots.engines.replicate.models import MODELS
    from headshots.tiers import parse_tiers

    settings = load_settings()
    try:
        tiers = parse_tiers(settings.tiers)
    except HeadshotsError as error:
        fail(error.detail)
        return
    # The executive tier, or the one with the most styles if it was renamed.
    largest = next((t for t in tiers if t.id == "executive"), max(tiers, key=lambda t: t.styles))
    headshots = largest.styles * settings.variations
    configured = settings.replicate_model
    table = Table(
        box=None,
        pad_edge=False,
        title=f"Hosted models (an {largest.title.lower()} order: {headshots} headshots)",
        title_justify="left",
    )
    for column in ("model", "selfie field", "size", "seed", "per headshot", "per order", "price"):
        table.add_column(column)
    for spec in MODELS.values():
        price = price_of(spec, settings)
        each = price.of(*typical_pixels())
        field = f"{spec.image_field}{' [list]' if spec.image_list else ''}"
        mark = " (configured)" if spec.name == configured else ""
        table.add_row(
            f"{spec.name}{mark}",
            field,
            _SIZE_LABELS[spec.size_by] + (f" {spec.size_value}" if spec.size_value else ""),
            "yes" if spec.seeded else "none: not reproducible",
            f"${each:.4f}",
            f"${each * headshots:.2f}",
            price.source + ("" if price.confirmed else " (not confirmed)"),
        )
    # markup off: "[pro]" and "[list]" are part of the text, not style tags.
    Console(width=200).print(table, markup=False, highlight=False)


@app.command()
def generate(
    selfie: Annotated[Path, typer.Argument(help="A photo of one person: HEIC, JPEG, PNG or WebP.")],
    style: Annotated[
        list[str], typer.Option("--style", "-s", help="A style id; repeat for several.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the images and report.")],
    engine: Annotated[
        str | None, typer.Option(help="studio, replicate or flux-local (default: from settings).")
    ] = None,
    variations: Annotated[
        int | None,
        typer.Option(min=1, max=8, help="Variations per style (default: HEADSHOTS_VARIATIONS)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(min=0, max=2**31 - 1, help="First seed (default: random).")
    ] = None,
    backdrop: Annotated[
        str | None,
        typer.Option(
            help="One backdrop for every style: white, light-grey, mid-grey, charcoal, navy, "
            "cream or #RRGGBB (default: each style's own)."
        ),
    ] = None,
    formats: Annotated[
        str,
        typer.Option(help="Shapes to write: portrait, square, round, comma-separated."),
    ] = "portrait",
) -> None:
    """Make headshots from SELFIE in one or more styles."""
    from headshots.backdrops import parse_backdrop, with_backdrop
    from headshots.credentials.manifest import made_by
    from headshots.credentials.signing import sign_png, signer_for
    from headshots.imaging.codecs import encode_png
    from headshots.imaging.formats import Format, parse_formats, shaped
    from headshots.imaging.selfie import prepare_selfie

    settings = load_settings()
    try:
        shapes = parse_formats(formats)
        chosen_backdrop = parse_backdrop(backdrop)
    except ValueError as error:
        fail(str(error))
        return
    try:
        picked = get_engine(settings, engine)
        if chosen_backdrop is not None and not picked.takes_backdrop_colour:
            fail(f"The {picked.name} engine cannot paint a backdrop colour you choose.")
        chosen = [
            with_backdrop(get_style(style_id), chosen_backdrop) for style_id in dict.fromkeys(style)
        ]
        # Without the operator's certificate, this machine's development one.
        signer = signer_for(settings, development_fallback=True)
        data = read_input(selfie)
        started = time.perf_counter()
        with console.status("Reading the photo and finding the face…"):
            prepared = prepare_selfie(data, settings, repairs_crop=picked.repairs_crop)
        prepare_seconds = time.perf_counter() - started
    except HeadshotsError as error:
        fail(error.detail)
        return

    if variations is None:
        variations = settings.variations
    first_seed = seed if seed is not None else random.SystemRandom().randrange(2**31 - 64)
    seeds = [(first_seed + i) % 2**31 for i in range(variations)]
    out.mkdir(parents=True, exist_ok=True)
    report = GenerateReport(picked, prepared, prepare_seconds)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        for chosen_style in chosen:
            task = progress.add_task(f"{chosen_style.title}: {variations} variations", total=None)
            try:
                outcomes = render_style(
                    picked,
                    prepared,
                    chosen_style,
                    seeds,
                    settings.output_size,
                    IdentityGate.from_settings(settings),
                )
            except HeadshotsError as error:
                fail(error.detail)
                return
            progress.remove_task(task)
            for index, outcome in enumerate(outcomes, start=1):
                if isinstance(outcome, Failed):
                    report.failed(chosen_style, index, outcome)
                    continue
                made = made_by(
                    picked.name, chosen_style.id, outcome.details, generative=picked.generative
                )
                # The service's encoder, level and file names: a file from here
                # and a download of the same image differ only in their credentials.
                names = []
                for shape in shapes:
                    name = f"{chosen_style.id}-{index}-{shape.value}.png"
                    if shape is Format.PORTRAIT and len(shapes) == 1:
                        name = f"{chosen_style.id}-{index}.png"
                    png = encode_png(shaped(outcome.image, shape))
                    (out / name).write_bytes(sign_png(signer, made, png))
                    names.append(name)
                report.rendered(chosen_style, index, outcome, names[0])
    written = report.write(out, time.perf_counter() - started)

    console.print(
        f"{report.done} headshots in {out}/ ({report.timings['total_seconds']:.1f} s, "
        f"engine {picked.name}); report in {written}",
        highlight=False,
    )
    if report.failures:
        console.print(f"[yellow]{report.failures} variations failed; see {REPORT_NAME}[/]")
        raise typer.Exit(3 if report.done == 0 else 0)


def _require_credentials(settings: Settings) -> None:
    """Refuse to hand out images without Content Credentials unless turned off (decision 0011)."""
    from headshots.credentials.signing import signer_for

    try:
        signer_for(settings)
    except HeadshotsError as error:
        fail(error.detail)


def _fewer_malloc_arenas() -> None:
    """Cap glibc's malloc arenas at two, before the service starts its threads.

    With one arena per busy thread, the images of 24 engine calls in flight
    are freed into many arenas that are never given back: the 20-order
    benchmark's peak memory went from 883 MB to 668 MB with the cap (its
    wall time within the run-to-run spread; bench/README.md). Elsewhere than
    glibc this does nothing.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return
    m_arena_max = -8  # from glibc's malloc.h
    mallopt(m_arena_max, 2)


def _runtime(settings: Settings) -> Any:
    from headshots.runtime import build_runtime

    try:
        return build_runtime(settings)
    except HeadshotsError as error:
        fail(error.detail)


def _print_model_licence(runtime: Any, settings: Settings) -> None:
    """Which model a local engine runs and what its licence allows, before anyone pays."""
    from headshots.engines.base import default_engine_name

    try:
        engine = runtime.engine(default_engine_name(settings))
    except HeadshotsError:
        return  # /readyz says what is wrong
    line = engine.licence_line()
    if line is not None:
        # markup off: "[klein]" is part of the name, not a style tag.
        console.print(line, highlight=False, markup=False, soft_wrap=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port.")] = None,
) -> None:
    """Run the web service (API and pages), with its job consumer when embedded."""
    import uvicorn

    from headshots.web.app import create_app

    settings = load_settings()
    _require_credentials(settings)
    _fewer_malloc_arenas()
    runtime = _runtime(settings)
    host, port = host or settings.host, port or settings.port
    console.print(f"headshots on http://{host}:{port} (engine and queue: see /readyz)")
    _print_model_licence(runtime, settings)  # docs/decisions/0009-flux2-klein.md
    uvicorn.run(create_app(runtime), host=host, port=port, log_level="info", access_log=False)
    runtime.close()


@app.command()
def worker() -> None:
    """Run a job consumer (use with HEADSHOTS_QUEUE_URL=redis://...)."""
    from headshots.jobs import worker as jobs_worker
    from headshots.metrics import serve_worker_metrics

    settings = load_settings()
    _require_credentials(settings)
    _fewer_malloc_arenas()
    runtime = _runtime(settings)
    consumer = jobs_worker.start(runtime, embedded=False)
    serve_worker_metrics(settings)
    if settings.queue_url:
        from headshots.engines.replicate.relay import CompletionRelay

        # Replicate's webhooks reach the web process; it relays them here.
        CompletionRelay(settings.queue_url).listen()
    console.print(f"worker started: {consumer.threads} styles at a time")
    consumer.run()
    runtime.close()


@app.command()
def cleanup() -> None:
    """Run one sweep now: shred expired orders, re-enqueue stuck work."""
    from headshots.jobs.tasks import run_sweep

    settings = load_settings()
    runtime = _runtime(settings)
    expired, requeued = run_sweep(runtime)
    console.print(f"{expired} orders expired and shredded; {requeued} variations re-enqueued")
    runtime.close()


# --- identity and preflight ---


def _read_photo(path: Path, settings: Settings) -> Any:
    from headshots.imaging.intake import read_photo

    return read_photo(
        read_input(path),
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_pixels,
        working_size=settings.working_size,
    )


@app.command()
def check(
    selfie: Annotated[Path, typer.Argument(help="A photo of one person: HEIC, JPEG, PNG or WebP.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
    engine: Annotated[
        str | None,
        typer.Option(
            help="Judge for this engine: studio, replicate or flux-local (default: from settings)."
        ),
    ] = None,
) -> None:
    """Check a selfie before ordering: exit code 1 when it cannot be used."""
    from headshots.engines.base import engine_repairs_crop
    from headshots.imaging.preflight import preflight

    settings = load_settings()
    try:
        repairs_crop = engine_repairs_crop(settings, engine)
        report = preflight(_read_photo(selfie, settings).image, repairs_crop=repairs_crop)
    except HeadshotsError as error:
        fail(error.detail)
        return
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        out = Console(highlight=False, soft_wrap=True)
        for item in report.findings:
            colour = "red" if item.severity == "error" else "yellow"
            out.print(
                f"[{colour}]{item.severity}[/] {item.code}: {item.sentence} "
                f"({item.value:g} {item.unit}, limit {item.limit:g})"
            )
        if report.ok:
            out.print("This photo can be used." if not report.findings else "It can still be used.")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def compare(
    first: Annotated[Path, typer.Argument(help="A photo of one face.")],
    second: Annotated[Path, typer.Argument(help="Another photo of one face.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Tell whether two photos show the same person (face distance and verdict)."""
    from headshots.imaging.identity import Comparison, describe

    settings = load_settings()
    descriptors = []
    for path in (first, second):
        try:
            descriptors.append(describe(_read_photo(path, settings).image))
        except HeadshotsError as error:
            fail(f"{path.name}: {error.detail}")
            return
    result = Comparison(descriptors[0].distance(descriptors[1]), settings.identity_threshold)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
    else:
        typer.echo(f"{result.distance:.3f} {result.verdict} (threshold {result.threshold:g})")


# --- Content Credentials (docs/decisions/0011-content-credentials.md) ---


@app.command()
def verify(
    image: Annotated[Path, typer.Argument(help="A PNG or JPEG headshot.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
    trust: Annotated[
        Path | None,
        typer.Option(help="Also trust the CA certificates in this PEM file (your own chain)."),
    ] = None,
) -> None:
    """Check an image's Content Credentials: exit 1 when it has none or they are invalid."""
    from headshots.credentials.verify import verify as check_credentials

    anchors = read_input(trust) if trust is not None else None
    try:
        verdict = check_credentials(read_input(image), trust_anchors=anchors)
    except HeadshotsError as error:
        fail(error.detail)
        return
    if as_json:
        typer.echo(json.dumps(verdict.as_dict(), indent=2))
    else:
        out = Console(highlight=False, soft_wrap=True)
        if not verdict.has_credentials:
            out.print("[red]no Content Credentials[/] in this image")
        else:
            facts = verdict.as_dict()
            signature = "[green]valid[/]" if verdict.valid else "[red]INVALID[/]"
            trusted = "trusted" if verdict.trusted else "not trusted by this reader"
            out.print(f"signature:   {signature} ({', '.join(verdict.failures) or 'no failures'})")
            out.print(f"signed by:   {verdict.signer or 'unknown'} (certificate {trusted})")
            out.print(f"made with:   {verdict.claim_generator or 'unknown'}")
            out.print(f"engine:      {facts['engine']} (model: {facts['model'] or 'none'})")
            out.print(f"style:       {facts['style']}")
            out.print(f"source type: {verdict.digital_source_type}")
    if not verdict.ok:
        raise typer.Exit(1)
