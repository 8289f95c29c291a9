"""The build shape options, trtexec style, with --profile starting another profile.

The actions only record what was typed (flag, text) per profile; run() parses it with
plan.profile_specs, so a malformed value is a one-line error rather than a traceback from inside
argparse. trtexec's --minShapes/--optShapes/--maxShapes spellings are accepted too.
"""

from __future__ import annotations

import argparse


class _Record(argparse.Action):
    def __call__(self, parser, ns, values, option_string=None):
        raw = [list(p) for p in (getattr(ns, "profile_args", None) or [[]])]
        if self.const == "profile":
            raw.append([])
        else:
            raw[-1].append((self.const, option_string, values))
        ns.profile_args = raw


def add_profile_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("optimization profiles (the flags after --profile belong to the next profile)")
    g.set_defaults(profile_args=None)
    for kind in ("min", "opt", "max"):
        g.add_argument(f"--{kind}-shapes", f"--{kind}Shapes", dest=f"{kind}_shapes", action=_Record, const=kind,
                       metavar="NAME:DxDxD,...", help=f"{kind} shapes, e.g. images:1x3x640x640")
    g.add_argument("--batch", dest="batch_range", action=_Record, const="batch", metavar="MIN:OPT:MAX",
                   help="sizes of the dynamic axis 0 of every input (the batch), e.g. 1:8:32")
    g.add_argument("--profile", action=_Record, const="profile", nargs=0, help="start another optimization profile")


def profile_specs(args) -> list:
    from ..plan import profile_specs as parse

    return parse(args.profile_args)
