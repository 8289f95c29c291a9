"""The build/bench shape options, trtexec style, with --profile starting another profile."""

from __future__ import annotations

import argparse


class _NewProfile(argparse.Action):
    def __call__(self, parser, ns, values, option_string=None):
        from ..plan import ProfileSpec

        ns.profiles = list(ns.profiles or [ProfileSpec()]) + [ProfileSpec()]


class _Shapes(argparse.Action):
    def __call__(self, parser, ns, values, option_string=None):
        from ..plan import ProfileSpec, add_shapes

        ns.profiles = list(ns.profiles or [ProfileSpec()])
        add_shapes(ns.profiles[-1], self.dest.split("_")[0], values)


class _Batch(argparse.Action):
    def __call__(self, parser, ns, values, option_string=None):
        from ..plan import ProfileSpec, parse_batch

        ns.profiles = list(ns.profiles or [ProfileSpec()])
        ns.profiles[-1].batch = parse_batch(values)


def add_profile_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("optimization profiles (the flags after --profile belong to the next profile)")
    g.set_defaults(profiles=None)
    for kind in ("min", "opt", "max"):
        g.add_argument(f"--{kind}-shapes", dest=f"{kind}_shapes", action=_Shapes, metavar="NAME:DxDxD,...",
                       help=f"{kind} shapes, e.g. images:1x3x640x640")
    g.add_argument("--batch", dest="batch_range", action=_Batch, metavar="MIN:OPT:MAX",
                   help="shorthand for the batch axis when it is the only dynamic dim")
    g.add_argument("--profile", action=_NewProfile, nargs=0, help="start another optimization profile")
