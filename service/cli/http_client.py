"""The HTTP side of the ``gaitid`` client commands: one server, one key, every failure one line.

``enroll``, ``identify``, ``subjects``, ``jobs`` and ``events list`` all talk to the server through
:class:`Client`, so an unreachable server, a refused key or an API error reads the same in each:
``gaitid: error [code]: message`` with the server's own code. Server and key come from
``--server``/``--api-key`` or ``GAITID_SERVER``/``GAITID_API_KEY``.
"""

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

import httpx

from cli_common.errors import CliInputError
from service.cli.result_tables import tracks_table

DEFAULT_SERVER = "http://127.0.0.1:8000"
# per socket operation, not per request: an upload of any size may take longer as long as bytes move
TIMEOUT_S = 60.0


class Client:
    """A GaitID server, called with one API key."""

    def __init__(self, server: str, api_key: str | None) -> None:
        if not api_key:
            raise CliInputError("an API key is needed: --api-key or GAITID_API_KEY", code="missing_api_key")
        self.http = httpx.Client(base_url=server.rstrip("/"), headers={"X-API-Key": api_key}, timeout=TIMEOUT_S)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise CliInputError(f"cannot reach {self.http.base_url}: {error}", code="server_unreachable") from None

    def checked(self, response: httpx.Response) -> dict[str, Any]:
        """The JSON body of a 2xx answer (``{}`` for 204); the server's error code and message otherwise."""
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code >= 400:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            tracks = error.get("details", {}).get("tracks")
            if tracks:
                print(tracks_table(tracks), file=sys.stderr)
            raise CliInputError(error.get("message", response.text[:300]), code=error.get("code", "http_error"))
        return body

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """``request`` and ``checked`` in one: the answer's JSON, or the error as :class:`CliInputError`."""
        return self.checked(self.request(method, path, **kwargs))


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """``--server`` and ``--api-key``, defaulting to ``GAITID_SERVER`` and ``GAITID_API_KEY``."""
    parser.add_argument(
        "--server",
        default=os.environ.get("GAITID_SERVER", DEFAULT_SERVER),
        help=f"server URL (default $GAITID_SERVER or {DEFAULT_SERVER})",
    )
    parser.add_argument("--api-key", default=os.environ.get("GAITID_API_KEY"), help="API key (or $GAITID_API_KEY)")


def client_from_args(args: argparse.Namespace) -> Client:
    return Client(args.server, args.api_key)


def add_client_options(parser: argparse.ArgumentParser, handler: Callable[[argparse.Namespace], int]) -> None:
    """What every client action takes: the server options and ``--json``; and the function that runs it."""
    add_server_options(parser)
    parser.add_argument("--json", action="store_true", help="print the server's answer as JSON")
    parser.set_defaults(handler=handler)


def add_client_action(
    actions: "argparse._SubParsersAction[argparse.ArgumentParser]",
    name: str,
    help_line: str,
    example: str,
    handler: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    """One action of a client command (``subjects list``, ``jobs cancel``...), with its example in ``--help``."""
    parser = actions.add_parser(
        name,
        help=help_line,
        description=help_line[:1].upper() + help_line[1:] + ".",
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_client_options(parser, handler)
    return parser


def add_page_options(parser: argparse.ArgumentParser) -> None:
    """``--limit`` and ``--offset``: which rows of a list the server returns (it checks their bounds)."""
    parser.add_argument("--limit", type=int, default=50, help="the most rows to show, 1..500 (default 50)")
    parser.add_argument("--offset", type=int, default=0, help="rows to skip: the rows of the pages before (default 0)")
