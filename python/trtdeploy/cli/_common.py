"""Option groups shared by subcommands (model in, model out, the check), and write_checked: how every
model-writing subcommand writes (staged, checked by verify.py, then renamed into place)."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger("trtdeploy")


def add_model_io(p: argparse.ArgumentParser, output: bool = True, long_output: bool = True) -> None:
    p.add_argument("model", metavar="MODEL", help="input .onnx file")
    if output:
        flags = ["-o", "--output"] if long_output else ["-o"]
        p.add_argument(*flags, dest="output", metavar="OUT", help="output .onnx file (never the input unless --inplace)")
        p.add_argument("--inplace", action="store_true", help="overwrite MODEL")


def add_run_options(p: argparse.ArgumentParser) -> None:
    """--shapes/--inputs: what onnxruntime runs the model on."""
    p.add_argument("--shapes", metavar="NAME:DIMS[,NAME:DIMS]",
                   help="input sizes for the onnxruntime runs, trtexec style (images:1x3x640x640); needed for "
                        "dynamic dims other than the batch, which are guessed otherwise (and the guess named)")
    p.add_argument("--inputs", metavar="FILE.npz", help="input values for the onnxruntime runs (one array per "
                                                         "input name; default: random, right shape and dtype)")


def add_verify_options(p: argparse.ArgumentParser, runs: bool = True) -> None:
    """--no-verify (and, for commands whose check runs the model, --shapes/--inputs)."""
    p.add_argument("--verify", action=argparse.BooleanOptionalAction, default=True,
                   help="before writing, check the result: onnx.checker, then onnxruntime against the input "
                        "(default: on; --no-verify writes without checking)")
    if runs:
        add_run_options(p)


def add_batch_sizes(p: argparse.ArgumentParser) -> None:
    """--batch-sizes for the `dynamic` check (dynamic, verify)."""
    p.add_argument("--batch-sizes", metavar="N,N,...",
                   help="batch sizes of the check, multiples of the original batch (default: 1x, 2x, 3x it)")


def batch_sizes(text: str | None) -> list[int] | None:
    """--batch-sizes ``1,2,4`` -> [1, 2, 4] (None when not given); every size a whole number >= 1."""
    from ..errors import TrtDeployError

    if text is None:
        return None
    sizes = []
    for item in text.split(","):
        item = item.strip()
        if not item.lstrip("-").isdigit():
            raise TrtDeployError(f"--batch-sizes '{text}': '{item}' is not a whole number; e.g. --batch-sizes 1,2,4")
        if int(item) < 1:
            raise TrtDeployError(f"--batch-sizes '{text}': {item} is not a batch size (1 or more)")
        sizes.append(int(item))
    return sizes


def input_files(args) -> list:
    """What the call reads, for io.check_outputs: MODEL with its external data files, --inputs,
    --map-file, --plugins."""
    from pathlib import Path

    from ..io import model_files

    files = model_files("the input model", args.model) if getattr(args, "model", None) else []
    for attr, flag in (("inputs", "--inputs"), ("map_file", "--map-file"), ("plugins", "--plugins")):
        value = getattr(args, attr, None)
        for path in [value] if isinstance(value, str) else value or []:
            files.append((f"{flag} {path}", Path(path)))
    return files


def check_outputs(args, outputs) -> None:
    """Every file the call writes ([(flag, path)], the main output first) against its inputs and each
    other, before any work (io.check_outputs); with --inplace the main output may be MODEL."""
    from .. import io

    model = [p for _, p in io.model_files("", args.model)] if getattr(args, "model", None) else []
    hint = ", or --inplace to overwrite it" if hasattr(args, "inplace") else ""
    io.check_outputs(outputs, input_files(args), model, getattr(args, "inplace", False), hint)


def output_path(args, more=()):
    """-o OUT (or MODEL with --inplace), checked with the call's other outputs ``more``."""
    from ..io import check_output_path

    out = check_output_path(args.model, args.output, getattr(args, "inplace", False))
    check_outputs(args, [("-o", out), *more])
    return out


def load(path):
    from .. import io

    log.info("loading %s", path)
    return io.load(path)


def save(model, path):
    """Write without a check (for files that are not a transformed model)."""
    from .. import io

    io.save(model, path)
    log.info("wrote %s", path)


def probe(args, model):
    """The inputs of the check, from --shapes/--inputs (errors in them surface before any writing)."""
    from ..ort import load_inputs, parse_shapes
    from ..verify import Probe

    values = load_inputs(args.inputs, model) if getattr(args, "inputs", None) else None
    return Probe(model, parse_shapes(getattr(args, "shapes", None)), values, seed=getattr(args, "seed", 0))


def protected(args) -> list:
    """The input's files (model and external data): an output must not replace them, unless --inplace."""
    from pathlib import Path

    from ..io import external_files

    if getattr(args, "inplace", False):
        return []
    return [Path(args.model), *external_files(args.model)]


def log_report(report: dict, verb: str = "checked") -> None:
    """One line per note and per check of a verify.py report."""
    for note in report.get("notes", []):
        log.info("note: %s", note)
    for c in report.get("checks", []):
        diff = c.get("max_abs_diff")
        log.info("%s: %s%s", verb, c["check"], "" if diff is None or "output" in c else f" (max abs diff {diff:.3g})")


def write_checked(args, original, new, check, out=None) -> dict | None:
    """Write ``new`` at -o OUT through io.save's staging; before the rename into place, run
    onnx.checker on the written file and, when onnxruntime is installed, ``check(original, new, probe)``,
    unless --no-verify. ``check=None``: the checker only. A failure writes nothing at OUT.

    A check is a verify.py promise (same_outputs, fp16_outputs, dynamic_outputs) or any function with
    that signature: ``probe`` is a verify.Probe built from --shapes/--inputs (``probe.feeds()``: the
    input values; ``probe.note()``: the sizes it had to guess); it returns a report
    ``{"checks": [{"check": text, "max_abs_diff": x}], "notes": [text]}`` or raises TrtDeployError
    naming what differs and by how much (verify.CannotRun: nothing to compare with, only noted)."""
    from .. import io, ort, verify

    out = out or output_path(args)
    verify_on = getattr(args, "verify", True) is not False
    pr = probe(args, original) if verify_on and check is not None and ort.available() else None
    result: dict = {}

    def before_commit(staged):
        if not verify_on:
            return
        log.info("%s", verify.checker(staged, new, original_path=args.model))
        if check is None:
            return
        if pr is None:
            log.warning("note: only onnx.checker ran: onnxruntime is not installed (pip install onnxruntime)")
            return
        pr.written = (new, staged)  # onnxruntime opens the staged file (and its data), not a copy of `new`
        try:
            result.update(check(original, new, pr))
        except verify.CannotRun as exc:
            log.warning("note: only onnx.checker ran: %s", exc)
            return
        log_report(result)

    io.save(new, out, check=before_commit, protect=protected(args))
    if not verify_on:
        log.warning("wrote %s without checking it (--no-verify)", out)
    else:
        log.info("wrote %s", out)
    return result or None
