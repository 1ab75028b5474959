"""A 2FAuth simulator (release 8.0.1, or 5.4.3 as the real one answers): faults to rehearse outages.

Public surface (the CLI and the tests import these names):

    create_app(...) -> Starlette        the ASGI app
    run(host, port, ...)                serve until SIGINT/SIGTERM
    start_in_thread(...) -> SimHandle   serve on a free loopback port, for tests
    make_token(exp, sub="1")            an unsigned JWT-shaped bearer token
    add_cli_arguments / main_from_args  `2fauth-monitor simulate`
"""

from .accounts import (
    CANARY_ACCOUNT_ID,
    DEFAULT_CANARY_SECRET,
    DEFAULT_HOTP_SECRET,
    DEFAULT_STEAM_SECRET,
    DEFAULT_USER_EMAIL,
    DEFAULT_USER_NAME,
    HOTP_ACCOUNT_ID,
    STEAM_ACCOUNT_ID,
    Account,
)
from .app import create_app
from .cli import add_cli_arguments, main_from_args
from .faults import DEFAULT_INSTANCE, FAULTS, FLAVOURS, RELEASES
from .server import SimHandle, run, start_in_thread
from .tokens import DEFAULT_TOKEN, make_token

__all__ = [
    "CANARY_ACCOUNT_ID",
    "DEFAULT_CANARY_SECRET",
    "DEFAULT_HOTP_SECRET",
    "DEFAULT_INSTANCE",
    "DEFAULT_STEAM_SECRET",
    "DEFAULT_TOKEN",
    "DEFAULT_USER_EMAIL",
    "DEFAULT_USER_NAME",
    "FAULTS",
    "FLAVOURS",
    "HOTP_ACCOUNT_ID",
    "RELEASES",
    "STEAM_ACCOUNT_ID",
    "Account",
    "SimHandle",
    "add_cli_arguments",
    "create_app",
    "main_from_args",
    "make_token",
    "run",
    "start_in_thread",
]
