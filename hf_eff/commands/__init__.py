"""Method subcommands of ``hf-eff``; each module defines ``add_parser(subparsers)`` (see :mod:`hf_eff.cli`)."""
