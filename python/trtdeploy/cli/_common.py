"""Option groups shared by subcommands (model in, model out)."""

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


def output_path(args):
    from ..io import check_output_path

    return check_output_path(args.model, args.output, args.inplace)


def load(path):
    from .. import io

    log.info("loading %s", path)
    return io.load(path)


def save(model, path):
    from .. import io

    io.save(model, path)
    log.info("wrote %s", path)
