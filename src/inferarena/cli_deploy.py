"""`inferarena deploy`: a measured variant (by default the run's recommendation) written out as a
self-contained bundle for Triton, TorchServe, MLServer, KServe or Docker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from inferarena import registry
from inferarena.cli_common import DEFAULT_DB, DbOption, DebugOption, app, console, open_db, require_db, user_errors


@app.command("deploy")
def deploy(
    run_id: Annotated[int, typer.Argument(help="Run number, as listed by `inferarena results`.")],
    target: Annotated[str, typer.Option(
        help=f"Where it will be served: {', '.join(registry.DEPLOY_TARGETS)}. triton: a model repository on the "
        "runtime's native backend; torchserve: handler, config.properties and the .mar; mlserver: "
        "model-settings.json and a runtime; kserve: an InferenceService (v2, Triton runtime) with its model "
        "repository; docker: a Dockerfile pinning the measured versions around a plain KServe v2 server.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder to write the bundle in (new or empty).")],
    variant: Annotated[Optional[str], typer.Option(
        help="The variant to deploy, as `inferarena show` names it. Default: the run's recommendation (its "
        "--profile and constraints; latency when it had none).")] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Then serve the bundle with the real server on 127.0.0.1 (in the environment serve-bench "
        "uses; minutes on first use), send the README's request, and compare the answer with the variant's "
        "(cosine ≥ 0.999). triton/kserve: pytriton's tritonserver, python backend only; docker: app/serve.py "
        "outside Docker.")] = False,
    db: DbOption = DEFAULT_DB,
    debug: DebugOption = False,
) -> None:
    """Write a measured variant as a bundle a server can load: the artifact (sha256-checked), the server's
    config from the measured knobs, a README with the figures and a request, and a reproduce config.

    Example: inferarena deploy 1 --target triton -o serve/
    """
    from inferarena.deploy import deploy as write_bundle

    with user_errors(debug):
        require_db(db)
        bundle = write_bundle(open_db(db), run_id, target, output, variant)
    d, written = bundle.deployable, bundle.written
    console.print(f"Deploying {escape(d.variant.name)} from run {run_id} "
                  + ("(the recommendation)" if d.why else "(--variant)") + f" to {escape(target)}.")
    for line in written.checks:
        console.print(f"  [green]✓[/] {escape(line)}")
    for note in bundle.manifest["notes"]:
        console.print(f"  [yellow]![/] {escape(note)}")
    console.print(f"Bundle written to {escape(str(bundle.path))} ({len(bundle.manifest['files']) + 1} files; "
                  "see its README.md)")
    if check:
        from inferarena.deploy import check as serving_check

        console.print(f"Checking it on {escape(target)} (127.0.0.1; each server in its own environment)...")
        with user_errors(debug):
            lines = serving_check.check(target, bundle.path, d)
        for line in lines:
            console.print(f"  [green]✓[/] {escape(line)}")
