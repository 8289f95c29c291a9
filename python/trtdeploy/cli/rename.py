"""trtdeploy rename MODEL -o OUT [--input OLD=NEW ...] [--output OLD=NEW ...] [--tensor OLD=NEW ...]
[--map-file JSON] [--prefix P] [--sanitize] [--no-verify]

Note: here -o is the output file and --output renames a graph output."""

from __future__ import annotations

from ._common import add_model_io, add_verify_options, log, output_path


def add_parser(sub):
    p = sub.add_parser("rename", help="rename inputs/outputs/any tensor, updating every reference")
    add_model_io(p, long_output=False)
    p.add_argument("--input", action="append", default=[], metavar="OLD=NEW", help="rename a graph input")
    p.add_argument("--output", dest="output_names", action="append", default=[], metavar="OLD=NEW",
                   help="rename a graph output")
    p.add_argument("--tensor", action="append", default=[], metavar="OLD=NEW", help="rename any tensor")
    p.add_argument("--map-file", metavar="JSON", help='a JSON object {"old": "new", ...}')
    p.add_argument("--prefix", help="prepend to every tensor name")
    p.add_argument("--sanitize", action="store_true",
                   help="make every name an identifier ([A-Za-z0-9_], not starting with a digit)")
    p.add_argument("--python", action="store_true", help="use the Python reference instead of the compiled path")
    add_verify_options(p, runs=False)
    return p


def _pairs(items, flag):
    from ..errors import TrtDeployError

    out = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise TrtDeployError(f"{flag} '{item}': expected OLD=NEW")
        if old in out and out[old] != new:
            raise TrtDeployError(f"{flag}: '{old}' is renamed twice ('{out[old]}' and '{new}')")
        out[old] = new
    return out


def run(args):
    import json

    from ..errors import TrtDeployError

    out = output_path(args, _weights_files(args))
    mapping = {}
    if args.map_file:
        try:
            with open(args.map_file, encoding="utf-8") as f:
                loaded = json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            raise TrtDeployError(f"--map-file {args.map_file}: {exc}") from None
        if not isinstance(loaded, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()):
            raise TrtDeployError(f"--map-file {args.map_file}: expected a JSON object of strings {{\"old\": \"new\"}}")
        mapping.update(loaded)
    ios = {"--input": _pairs(args.input, "--input"), "--output": _pairs(args.output_names, "--output")}
    mapping.update(_pairs(args.tensor, "--tensor"))
    if any(ios.values()):
        _check_io(args.model, ios)
        for pairs in ios.values():
            mapping.update(pairs)
    from .._rename_file import rename_file

    info = rename_file(args.model, out, mapping, prefix=args.prefix, sanitize=args.sanitize,
                       backend="python" if args.python else "auto", verify=args.verify)
    if info.get("check"):
        from ._common import log_report

        log_report(info["check"])
    for data in info.get("data_files", []):
        log.info("wrote %s (the weights, copied)", data)
    how = f"{info['backend']} path" + (f", {info['renamed_fields']} references renamed" if "renamed_fields" in info else "")
    if args.verify:
        log.info("wrote %s (%s)", out, how)
    else:
        log.warning("wrote %s (%s) without checking it (--no-verify)", out, how)
    return 0


def _weights_files(args) -> list:
    """The output's copy of the input's external data files (_rename_file.rename_file): outputs too."""
    from pathlib import Path

    from .. import io

    out = io.check_output_path(args.model, args.output, args.inplace)
    if io.same_file(out, args.model) or not Path(args.model).is_file():
        return []
    n = len(io.external_files(args.model))
    names = [io.data_name(out)] if n == 1 else [f"{io.data_name(out)}.{i}" for i in range(n)]
    return [("the weights file of -o", out.parent / name) for name in names]


def _check_io(path, ios):
    """--input/--output must name graph inputs/outputs (listed by the wire reader: no weights loaded)."""
    from .. import io
    from ..errors import TrtDeployError

    info = io.scan(path)
    if info is None:  # no compiled module: read the graph without weights
        model = io.load(path, load_external_data=False)
        info = {"graph_inputs": [i.name for i in model.graph.input],
                "graph_outputs": [o.name for o in model.graph.output]}
    names = {"--input": info["graph_inputs"], "--output": info["graph_outputs"]}
    for flag, pairs in ios.items():
        for old in pairs:
            if old not in names[flag]:
                raise TrtDeployError(f"{flag} {old}: not a graph {'input' if flag == '--input' else 'output'} "
                                     f"(they are: {', '.join(names[flag])})")
