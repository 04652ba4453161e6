"""The ``fdbmail`` command.  Subcommands of later packages register themselves
through :data:`COMMAND_MODULES` (each module has ``register(subparsers)``)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Sequence

from . import __version__
from .config import ConfigError, load_config, render_config

# Modules that add subcommands: each defines register(subparsers) and sets
# ``func`` on its parsers (``func(args) -> int``).
COMMAND_MODULES: tuple[str, ...] = (
    "server.directory.cli",
    "server.outbound.cli",
    "server.directory.tokens_cli",
    "server.mailauth.cli",
)


def _cmd_version(args: argparse.Namespace) -> int:
    print(f"fdbmail {__version__}")
    return 0


def _cmd_config_show(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    print(render_config(config), end="")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from server.node.node import serve

    config = load_config(args.config)
    return asyncio.run(serve(config))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fdbmail", description="fdbmail mail server")
    parser.add_argument("-c", "--config", help="TOML config file (default: $FDBMAIL_CONFIG, "
                        "else built-in defaults)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run a node (every listener the config enables)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=_cmd_version)

    p = sub.add_parser("config", help="inspect the configuration")
    config_sub = p.add_subparsers(dest="config_command", required=True)
    show = config_sub.add_parser("show", help="the effective config, every default documented")
    show.set_defaults(func=_cmd_config_show)

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as e:
        print(f"fdbmail: configuration error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
