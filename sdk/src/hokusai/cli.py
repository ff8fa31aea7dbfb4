"""`hokusai`: the client on the command line. `--json` prints machine-readable JSON; errors go to
stderr with the problem's code and request id, and exit with status 1."""

from __future__ import annotations

import argparse
import configparser
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from hokusai._client import HokusaiClient
from hokusai._config import CONFIG_FILE, service_root
from hokusai._version import __version__
from hokusai.errors import APIStatusError, HokusaiError


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        args.run(args)
        sys.stdout.flush()  # here, so a reader that left is seen below, not at exit
    except BrokenPipeError:
        # The reader went away (`hokusai models list | head`): stop quietly, as `cat` does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except APIStatusError as error:
        print(
            f"error: {error.code or error.status} ({error.status}): {error.detail}"
            f" [request {error.request_id}]",
            file=sys.stderr,
        )
        sys.exit(1)
    except HokusaiError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="hokusai", description=__doc__)
    root.add_argument("--version", action="version", version=f"hokusai {__version__}")
    root.add_argument("--json", action="store_true", help="machine-readable JSON output")
    commands = root.add_subparsers(dest="command", required=True)

    login_cmd = commands.add_parser("login", help=f"save a base URL and key in {CONFIG_FILE}")
    login_cmd.add_argument("--base-url")
    login_cmd.add_argument("--api-key", help="asked for (hidden) when not given")
    login_cmd.add_argument("--profile", default="default")
    login_cmd.set_defaults(run=login)

    models = commands.add_parser("models", help="registered models").add_subparsers(
        dest="action", required=True
    )
    listing = models.add_parser("list", help="every model")
    listing.add_argument("--token-id")
    listing.add_argument("--model-type")
    listing.add_argument("--include-archived", action="store_true", help="archived ones too")
    _json_flag(listing)
    listing.set_defaults(run=list_models)
    for action, call, summary in (
        ("show", "get", "one model: type, benchmark, latest version, aliases"),
        ("archive", "archive", "leave it out of lists, refuse new versions and predictions"),
        ("unarchive", "unarchive", "bring an archived model back"),
    ):
        one = models.add_parser(action, help=summary)
        one.add_argument("name")
        _json_flag(one)
        one.set_defaults(run=_one("models", call, ("name",), _model_line))
    register = models.add_parser("register", help="register a version")
    register.add_argument("name")
    register.add_argument("--kind", required=True, choices=["baseline", "improved"])
    register.add_argument("--artifact", help="MLflow model directory or .tar.gz/.zip")
    register.add_argument("--source-uri")
    register.add_argument(
        "--model-type", help="required for a model's first version (classification, ...)"
    )
    register.add_argument(
        "--parent-version", type=int, help="the version an improved one improves on"
    )
    register.add_argument("--token-id")
    register.add_argument("--metrics", type=_json_argument, required=True, help="JSON object")
    register.add_argument("--dataset", type=_json_argument, required=True, help="JSON object")
    register.add_argument("--benchmark", type=_json_argument, help="JSON object")
    register.add_argument("--contributors", type=_json_argument, help="JSON array")
    register.add_argument(
        "--idempotency-key",
        help="the same key makes a re-run of this step return the first registration",
    )
    _json_flag(register)
    register.set_defaults(run=register_version)

    versions = commands.add_parser("versions", help="a model's versions").add_subparsers(
        dest="action", required=True
    )
    listed_versions = versions.add_parser("list", help="a model's versions, newest first")
    listed_versions.add_argument("name")
    listed_versions.add_argument("--include-archived", action="store_true")
    _json_flag(listed_versions)
    listed_versions.set_defaults(run=list_versions)
    for action, call, summary in (
        ("show", "get", "one version: metrics, parent, decision, contributors"),
        ("archive", "archive", "leave it out of lists; no alias or prediction by number"),
        ("unarchive", "unarchive", "bring an archived version back"),
    ):
        one = versions.add_parser(action, help=summary)
        one.add_argument("name")
        one.add_argument("version", type=int)
        _json_flag(one)
        one.set_defaults(run=_one("versions", call, ("name", "version"), _version_line))
    downloaded = versions.add_parser("download", help="the version's artifact as .tar.gz")
    downloaded.add_argument("name")
    downloaded.add_argument("version", type=int)
    downloaded.add_argument("--output", "-o", default=".", help="a file or a folder (default .)")
    downloaded.set_defaults(run=download_version)

    aliases = commands.add_parser(
        "aliases", help="a model's aliases (production, staging...)"
    ).add_subparsers(dest="action", required=True)
    listed_aliases = aliases.add_parser("list", help="alias -> version")
    listed_aliases.add_argument("name")
    listed_aliases.set_defaults(run=list_aliases)
    moved = aliases.add_parser("set", help="point an alias at a version")
    moved.add_argument("name")
    moved.add_argument("alias")
    moved.add_argument("version", type=int)
    moved.add_argument("--reason")
    moved.set_defaults(run=set_alias)
    removed = aliases.add_parser("delete", help="remove an alias")
    removed.add_argument("name")
    removed.add_argument("alias")
    removed.set_defaults(run=delete_alias)
    history = aliases.add_parser("history", help="every move of an alias, oldest first")
    history.add_argument("name")
    history.add_argument("alias")
    _json_flag(history)
    history.set_defaults(run=alias_history)
    rolled = aliases.add_parser(
        "rollback", help="move production back (to where it was, or to --to-version)"
    )
    rolled.add_argument("name")
    rolled.add_argument("--to-version", type=int)
    rolled.add_argument("--reason")
    rolled.set_defaults(run=rollback)

    predict = commands.add_parser("predict", help="predict one row or a batch")
    predict.add_argument("name")
    predict.add_argument(
        "--inputs",
        type=_json_argument,
        required=True,
        help="JSON object or array; @FILE reads it from a file, - from standard input",
    )
    predict.add_argument("--version", type=int)
    predict.add_argument("--alias")
    predict.add_argument("--unit-id")
    predict.set_defaults(run=predict_rows)

    lineage = commands.add_parser("lineage", help="a model's lineage")
    lineage.add_argument("name")
    lineage.add_argument("--format", choices=["json", "mermaid", "dot"], default="json")
    lineage.add_argument("--version", type=int)
    lineage.add_argument(
        "--direction", choices=["ancestors", "descendants", "both"], default="ancestors"
    )
    lineage.add_argument("--depth", type=int)
    lineage.set_defaults(run=show_lineage)

    benchmarks = commands.add_parser(
        "benchmarks", help="held benchmarks: the datasets improvements are measured on"
    ).add_subparsers(dest="action", required=True)
    held = benchmarks.add_parser(
        "upload", help="hold a Parquet or CSV file (the `benchmark` scope); prints its hash"
    )
    held.add_argument("file")
    held.add_argument("--label-column", required=True)
    _json_flag(held)
    held.set_defaults(run=upload_benchmark)
    listed = benchmarks.add_parser("list", help="held benchmarks, newest first")
    _json_flag(listed)
    listed.set_defaults(run=list_benchmarks)
    shown = benchmarks.add_parser("show", help="one benchmark's summary (never a row)")
    shown.add_argument("hash")
    shown.set_defaults(run=show_benchmark)
    fetched = benchmarks.add_parser(
        "download", help="the benchmark's file (the `benchmark` scope), to recompute with"
    )
    fetched.add_argument("hash")
    fetched.add_argument("--output", "-o", required=True)
    fetched.set_defaults(run=download_benchmark)
    retired = benchmarks.add_parser(
        "retire", help="name it in no new baseline (the `benchmark` scope)"
    )
    retired.add_argument("hash")
    retired.set_defaults(run=retire_benchmark)

    ab_tests = commands.add_parser("ab-tests", help="A/B tests").add_subparsers(
        dest="action", required=True
    )
    created = ab_tests.add_parser("create", help="a draft test; the first variant is the control")
    created.add_argument("--model", required=True)
    created.add_argument("--name", required=True)
    created.add_argument(
        "--variants",
        type=_json_argument,
        required=True,
        help='JSON array: [{"name": "control", "alias": "production", "weight": 0.5}, ...]',
    )
    created.add_argument(
        "--metric", type=_json_argument, required=True, help='JSON: {"name": ..., "kind": ...}'
    )
    created.add_argument("--unit", help="what is randomised (default: user)")
    created.add_argument("--minimum-sample-size", type=int)
    _json_flag(created)
    created.set_defaults(run=create_ab_test)
    tests = ab_tests.add_parser("list", help="tests, newest first")
    tests.add_argument("--model")
    tests.add_argument("--status", choices=["draft", "running", "paused", "stopped"])
    _json_flag(tests)
    tests.set_defaults(run=list_ab_tests)
    for action in ("show", "start", "pause", "resume", "stop"):
        one = ab_tests.add_parser(action, help=f"{action} a test" if action != "show" else "a test")
        one.add_argument("test_id")
        _json_flag(one)
        one.set_defaults(
            run=_one("ab_tests", "get" if action == "show" else action, ("test_id",), _test_line)
        )
    results = ab_tests.add_parser("results", help="a test's results")
    results.add_argument("test_id")
    _json_flag(results)
    results.set_defaults(run=ab_results)
    promoted = ab_tests.add_parser("promote", help="stop the test and move production to a variant")
    promoted.add_argument("test_id")
    promoted.add_argument("variant")
    promoted.add_argument("--force", action="store_true", help="without a significant verdict")
    _json_flag(promoted)
    promoted.set_defaults(run=promote)

    attestations = commands.add_parser(
        "attestations", help="signed DeltaOne decisions"
    ).add_subparsers(dest="action", required=True)
    shown_attestation = attestations.add_parser("show", help="one attestation, envelope included")
    shown_attestation.add_argument("attestation_id")
    shown_attestation.set_defaults(run=show_attestation)
    listed_attestations = attestations.add_parser("list", help="a model's attestations")
    listed_attestations.add_argument("name")
    _json_flag(listed_attestations)
    listed_attestations.set_defaults(run=list_attestations)
    verified = attestations.add_parser(
        "verify",
        help="ask the service to verify an attestation (by id, or an envelope's JSON file), or "
        "a model's whole chain (--chain); exit 0 only when valid",
    )
    verified.add_argument("what", help="an attestation id, @FILE with an envelope, or a model")
    verified.add_argument("--chain", action="store_true", help="WHAT is a model: its chain")
    _json_flag(verified)
    verified.set_defaults(run=verify_attestation)

    contributors = commands.add_parser(
        "contributors", help="who improved what, and by how much"
    ).add_subparsers(dest="action", required=True)
    everyone = contributors.add_parser(
        "list", help="every contributor, largest measured gain first"
    )
    _json_flag(everyone)
    everyone.set_defaults(run=list_contributors)
    impacted = contributors.add_parser("impact", help="an address's impact, measured and claimed")
    impacted.add_argument("address")
    _json_flag(impacted)
    impacted.set_defaults(run=contributor_impact)
    contributed = contributors.add_parser("contributions", help="an address's contributions")
    contributed.add_argument("address")
    _json_flag(contributed)
    contributed.set_defaults(run=contributions)

    check = commands.add_parser(
        "verify",
        help="check an exported attestation bundle offline (signatures, key validity, ids, "
        "links; with --recompute, the measurement); exit 0 only when every check holds",
    )
    check.add_argument(
        "bundle",
        help="the JSON of GET /api/v1/models/{name}/attestations/export (with --fetch: the name)",
    )
    check.add_argument("--keys", help="the service's keys (GET /api/v1/attestations/keys) to trust")
    check.add_argument(
        "--fetch",
        action="store_true",
        help="download the model's bundle and the published keys from the configured service "
        "(the only network use)",
    )
    check.add_argument(
        "--recompute",
        action="store_true",
        help="re-run the measurement signed for --candidate (runs both models here)",
    )
    check.add_argument("--benchmark", help="the benchmark file (Parquet or CSV)")
    check.add_argument("--parent", help="the parent version's MLflow model folder")
    check.add_argument("--candidate", help="the candidate version's MLflow model folder")
    check.add_argument("--label-column", help="when the attestation does not name it")
    _json_flag(check)
    check.set_defaults(run=verify_bundle)
    return root


def verify_bundle(args: argparse.Namespace) -> None:
    from hokusai.verification import Recompute, verify

    keys = json.loads(Path(args.keys).read_text()) if args.keys else None
    bundle: Any = Path(args.bundle)
    if args.fetch:
        with HokusaiClient() as client:
            bundle = client.attestations.export(args.bundle).model_dump(mode="json")
            keys = keys or client.attestations.keys().model_dump(mode="json")
    recompute = None
    if args.recompute:
        missing = [f"--{n}" for n in ("benchmark", "parent", "candidate") if not getattr(args, n)]
        if missing:
            sys.exit(f"error: --recompute needs {', '.join(missing)}")
        recompute = Recompute(args.benchmark, args.parent, args.candidate, args.label_column)
    report = verify(bundle, keys=keys, recompute=recompute)
    if args.json:
        _print_json(report.as_dict())
    else:
        print(f"{report.model}: {report.attestations} attestations, {len(report.checks)} checks")
        for failure in report.failures:
            print(f"FAILED {failure.attestation} {failure.check}: {failure.detail}")
        print("valid" if report.valid else f"INVALID: {len(report.failures)} checks failed")
    if not report.valid:
        sys.exit(1)


def login(args: argparse.Namespace) -> None:
    base_url = service_root(
        args.base_url or input("Base URL [http://127.0.0.1:8000]: ") or "http://127.0.0.1:8000"
    )
    api_key = args.api_key or getpass.getpass("API key: ")
    # Checked before it is saved: a wrong URL or key is said now, not at the first real call.
    with HokusaiClient(base_url, api_key, max_retries=0) as client:
        key = client.api_keys.current()
    path = Path(os.environ.get("HOKUSAI_CONFIG_FILE", str(CONFIG_FILE))).expanduser()
    config = configparser.ConfigParser()
    if path.is_file():
        config.read(path)
    config[args.profile] = {"base_url": base_url, "api_key": api_key}
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        config.write(handle)
    path.chmod(0o600)
    scopes = ", ".join(sorted(key.scopes))
    print(
        f"logged in to {base_url} as key {key.name!r} ({scopes}); saved [{args.profile}] in {path}"
    )


def _json_flag(command: argparse.ArgumentParser) -> None:
    """`--json` after the command too (`hokusai models list --json`); before it, the root's."""
    command.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable JSON"
    )


def _json_argument(text: str) -> Any:
    """JSON given inline, from a file (`@rows.json`) or from standard input (`-`)."""
    where = "the argument"
    if text == "-":
        text, where = sys.stdin.read(), "standard input"
    elif text.startswith("@"):
        path = Path(text[1:])
        try:
            text, where = path.read_text(), str(path)
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"{where} is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from exc


def list_models(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        found = list(
            client.models.list(
                token_id=args.token_id,
                model_type=args.model_type,
                include_archived=args.include_archived,
            )
        )
    _table(args, found, "NAME\tLATEST\tTYPE\tALIASES", _model_row)


def _model_row(model: Any) -> str:
    aliases = ", ".join(f"{a}={v}" for a, v in sorted(model.aliases.items()))
    return f"{model.name}\tv{model.latest_version}\t{model.model_type}\t{aliases}"


def register_version(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        version = client.models.register(
            args.name,
            kind=args.kind,
            artifact=args.artifact,
            source_uri=args.source_uri,
            model_type=args.model_type,
            token_id=args.token_id,
            metrics=args.metrics,
            dataset=args.dataset,
            benchmark=args.benchmark,
            contributors=args.contributors,
            parent_version=args.parent_version,
            idempotency_key=args.idempotency_key,
        )
    _say(
        args,
        version,
        lambda v: f"{v.model} v{v.version}: {v.deltaone.reason if v.deltaone else 'baseline'}",
    )


def predict_rows(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        prediction = client.predict(
            args.name, args.inputs, version=args.version, alias=args.alias, unit_id=args.unit_id
        )
    _print_json(prediction.model_dump(mode="json"))


def show_lineage(args: argparse.Namespace) -> None:
    options: dict[str, Any] = {
        "version": args.version,
        "direction": args.direction,
        "depth": args.depth,
    }
    with HokusaiClient() as client:
        if args.format == "mermaid":
            print(client.lineage.mermaid(args.name, **options))
        elif args.format == "dot":
            print(client.lineage.dot(args.name, **options))
        else:
            _print_json(client.lineage.get(args.name, **options).model_dump(mode="json"))


def upload_benchmark(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        held = client.benchmarks.upload(args.file, args.label_column)
    _say(
        args,
        held,
        lambda h: f"{h.hash}\t{h.rows} rows\t{len(h.columns)} columns\tlabel {h.label_column}",
    )


def list_benchmarks(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        found = list(client.benchmarks.list())
    _table(
        args,
        found,
        "HASH\tROWS\tLABEL\tRETIRED",
        lambda held: (
            f"{held.hash}\t{held.rows}\t{held.label_column}\t{'yes' if held.retired_at else 'no'}"
        ),
    )


def show_benchmark(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        _print_json(client.benchmarks.get(args.hash))


def download_benchmark(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        content = client.benchmarks.file(args.hash)
    Path(args.output).write_bytes(content)
    print(f"{args.output}: {len(content)} bytes")


def retire_benchmark(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        held = client.benchmarks.retire(args.hash)
    print(f"{held.hash} retired at {held.retired_at}")


def ab_results(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        results = client.ab_tests.results(args.test_id)
    if args.json:
        _print_json(results.model_dump(mode="json"))
        return
    print(f"{results.status}, verdict {results.verdict}, SRM flagged: {results.srm.flagged}")
    for variant in results.variants:
        print(
            f"  {variant.name}\tv{variant.version}\texposures {variant.exposures}"
            f"\tn {variant.n}\tmean {variant.mean}"
        )


def _one(
    resource: str, call: str, names: tuple[str, ...], line: Callable[[Any], str]
) -> Callable[[argparse.Namespace], None]:
    """A command that makes one call of a resource with the arguments `names` and prints its
    answer (`client.versions.get(name, version)`, say)."""

    def run(args: argparse.Namespace) -> None:
        with HokusaiClient() as client:
            method = getattr(getattr(client, resource), call)
            _say(args, method(*(getattr(args, name) for name in names)), line)

    return run


def _model_line(model: Any) -> str:
    aliases = ", ".join(f"{a}={v}" for a, v in sorted(model.aliases.items())) or "none"
    archived = f", archived {model.archived_at:%Y-%m-%d}" if model.archived_at else ""
    return (
        f"{model.name}: {model.model_type}, latest v{model.latest_version}, "
        f"aliases {aliases}, benchmark {model.benchmark.metric}{archived}"
    )


def _version_line(version: Any) -> str:
    decision = "baseline" if version.deltaone is None else version.deltaone.reason
    gain = (
        f" {version.deltaone.gain_pp:+.2f} pp"
        if version.deltaone is not None and version.deltaone.gain_pp is not None
        else ""
    )
    aliases = f" [{', '.join(version.aliases)}]" if version.aliases else ""
    archived = " (archived)" if version.archived_at else ""
    parent = f"v{version.parent_version}" if version.parent_version else "-"
    metric = version.benchmark.metric
    value = version.metrics.get(metric)
    return (
        f"v{version.version}\t{version.kind}\t{parent}\t{metric}={value}\t"
        f"{decision}{gain}{aliases}{archived}"
    )


def list_versions(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        found = list(client.versions.list(args.name, include_archived=args.include_archived))
    _table(args, found, "VERSION\tKIND\tPARENT\tMETRIC\tDECISION", _version_line)


def download_version(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        path = client.versions.download(args.name, args.version, args.output)
    print(f"{path}: {path.stat().st_size} bytes")


def list_aliases(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        found = client.aliases.list(args.name)
    if args.json:
        _print_json(found)
        return
    for alias, version in sorted(found.items()):
        print(f"{alias}\tv{version}")


def set_alias(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        moved = client.aliases.set(args.name, args.alias, args.version, reason=args.reason)
    print(f"{args.name} {moved.alias} -> v{moved.version}")


def delete_alias(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        client.aliases.delete(args.name, args.alias)
    print(f"{args.name} {args.alias} removed")


def alias_history(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        events = client.aliases.history(args.name, args.alias)
    _table(args, events, "AT\tFROM\tTO\tBY\tREASON", _event_row)


def _event_row(event: Any) -> str:
    source = f"v{event.from_version}" if event.from_version else "-"
    target = f"v{event.to_version}" if event.to_version else "-"
    return f"{event.at:%Y-%m-%d %H:%M:%S}\t{source}\t{target}\t{event.actor}\t{event.reason or ''}"


def rollback(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        moved = client.models.rollback(args.name, to_version=args.to_version, reason=args.reason)
    print(f"{args.name} production -> v{moved.version}")


def _test_line(test: Any) -> str:
    variants = ", ".join(
        f"{v.name}=" + (f"v{v.version}" if v.version is not None else f"@{v.alias}")
        for v in test.variants
    )
    return f"{test.id}\t{test.name}\t{test.model}\t{test.status}\t{variants}"


def create_ab_test(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        test = client.ab_tests.create(
            args.name,
            args.model,
            args.variants,
            args.metric,
            unit=args.unit,
            minimum_sample_size=args.minimum_sample_size,
        )
    _say(args, test, _test_line)


def list_ab_tests(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        found = list(client.ab_tests.list(model=args.model, status=args.status))
    _table(args, found, "ID\tNAME\tMODEL\tSTATUS\tVARIANTS", _test_line)


def promote(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        test = client.ab_tests.promote(args.test_id, args.variant, force=args.force)
    _say(args, test, lambda t: f"{t.id} {t.status}: production is now {args.variant}'s version")


def show_attestation(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        _print_json(client.attestations.get(args.attestation_id))


def list_attestations(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        found = list(client.attestations.list(args.name))
    _table(args, found, "ID\tVERSION\tDECISION\tISSUED", _attestation_row)


def _attestation_row(attestation: Any) -> str:
    decision = attestation.statement.get("predicate", {}).get("decision", {})
    return (
        f"{attestation.id}\tv{attestation.version}\t{decision.get('reason')}"
        f"\t{attestation.created_at:%Y-%m-%d %H:%M:%S}"
    )


def verify_attestation(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        if args.chain:
            result: Any = client.attestations.verify_chain(args.what)
        else:
            envelope = (
                _json_argument(args.what)
                if args.what.startswith("@") or args.what == "-"
                else client.attestations.get(args.what).envelope.model_dump(mode="json")
            )
            result = client.attestations.verify(envelope)
    _say(args, result, lambda r: "valid" if r.valid else f"INVALID: {r.reason}")
    if not result.valid:
        sys.exit(1)


def list_contributors(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        found = list(client.contributors.list())
    _table(
        args,
        found,
        "ADDRESS\tCONTRIBUTIONS\tMODELS\tACCEPTED\tMEASURED\tCLAIMED",
        lambda c: (
            f"{c.address}\t{c.contributions}\t{c.models_improved}\t{c.deltaone_accepted}"
            f"\t{c.measured_accepted_gain_pp:+.2f} pp\t{c.claimed_accepted_gain_pp:+.2f} pp"
        ),
    )


def contributor_impact(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        impact = client.contributors.impact(args.address)
    _say(
        args,
        impact,
        lambda i: (
            f"{i.address}: {i.contributions} contributions to {i.models_improved} "
            f"models, {i.deltaone_accepted} accepted; measured gain "
            f"{i.measured.accepted_weighted_gain_pp:+.2f} pp, claimed "
            f"{i.claimed.accepted_weighted_gain_pp:+.2f} pp"
        ),
    )


def contributions(args: argparse.Namespace) -> None:
    with HokusaiClient() as client:
        found = list(client.contributors.contributions(args.address))
    _table(args, found, "MODEL\tVERSION\tSHARE\tGAIN\tACCEPTED\tBASIS", _contribution_row)


def _contribution_row(c: Any) -> str:
    gain = f"{c.gain_pp:+.2f} pp" if c.gain_pp is not None else "-"
    return (
        f"{c.model}\tv{c.version}\t{c.weight_bps / 100:.2f}%\t{gain}"
        f"\t{c.deltaone_accepted}\t{c.basis}"
    )


def _say(args: argparse.Namespace, value: Any, line: Callable[[Any], str]) -> None:
    """One answer: its JSON with --json, else one line."""
    if args.json:
        _print_json(value)
    else:
        print(line(value))


def _table(
    args: argparse.Namespace, items: Sequence[Any], header: str, row: Callable[[Any], str]
) -> None:
    """A list: a JSON array with --json, else a header and one line per item."""
    if args.json:
        _print_json(list(items))
        return
    print(header)
    for item in items:
        print(row(item))


def _print_json(value: Any) -> None:
    def plain(item: Any) -> Any:
        return item.model_dump(mode="json") if isinstance(item, BaseModel) else item

    print(
        json.dumps([plain(v) for v in value] if isinstance(value, list) else plain(value), indent=2)
    )


if __name__ == "__main__":
    main()
