"""What `init` needs from the user: the URL, the token and where the files go, from flags or asked
for in a terminal. Every mistake is one line and exit code 2."""

from __future__ import annotations

import argparse
import getpass
import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

EXIT_TWOFAUTH, EXIT_USER = 1, 2


class InitError(Exception):
    """One line for the user, and the exit code: 2 a mistake in the input, 1 a 2FAuth problem."""

    def __init__(self, message: str, code: int = EXIT_USER) -> None:
        super().__init__(message)
        self.message, self.code = message, code


@dataclass
class Answers:
    url: str
    name: str
    token: str
    token_file: Path
    token_typed: bool  # asked for in the terminal: init writes token_file
    canary_secret_file: Path
    create_canary: bool
    out: Path
    force: bool


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="the 2FAuth base URL, e.g. https://2fauth.example.com")
    p.add_argument(
        "--token-file",
        metavar="FILE",
        help="a file holding a personal access token (2FAuth: Settings → OAuth → Generate a new token); "
        "in a terminal, when it is not given or does not exist, init asks for the token and writes it "
        "there (default: twofauth_token beside --out)",
    )
    p.add_argument(
        "--create-canary",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="create the canary TOTP account in 2FAuth (a fresh random secret), so the monitor also "
        "checks that stored secrets decrypt (in a terminal: asked, default yes; else: no)",
    )
    p.add_argument(
        "--canary-secret-file",
        metavar="FILE",
        help="where to write the canary's secret (mode 0600; default: canary_secret beside --out)",
    )
    p.add_argument("--name", help="the instance's name in URLs and alerts (default: from the host name)")
    p.add_argument(
        "--out",
        "-o",
        metavar="FILE",
        default="monitor.yaml",
        help="the configuration to write (default monitor.yaml)",
    )
    p.add_argument("--force", action="store_true", help="replace files that already exist")


def gather(args: argparse.Namespace, interactive: bool | None = None) -> Answers:
    """The answers from the flags, asking in a terminal for what is missing."""
    interactive = sys.stdin.isatty() if interactive is None else interactive
    out = Path(args.out).expanduser().absolute()
    _refuse_existing(out, args.force, "--out")
    url = args.url or (_ask("2FAuth URL (e.g. https://2fauth.example.com): ") if interactive else "")
    if not url:
        raise InitError("--url is required (or run init in a terminal to be asked)")
    url = url.strip().rstrip("/")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise InitError(f"--url: {url[:100]} is not an http:// or https:// URL")
    token_file = Path(args.token_file or out.with_name("twofauth_token")).expanduser().absolute()
    token, typed = _token(args, token_file, interactive)
    create = args.create_canary
    if create is None:
        create = interactive and _yes(
            "Create a canary TOTP account in 2FAuth, to check that stored secrets still decrypt? [Y/n] "
        )
    canary_file = Path(args.canary_secret_file or out.with_name("canary_secret")).expanduser().absolute()
    _refuse_existing(canary_file, args.force, "--canary-secret-file")
    for path, flag in ((out, "--out"), (canary_file, "--canary-secret-file"), (token_file, "--token-file")):
        if flag != "--token-file" or typed:
            _refuse_unwritable(path, flag)  # before 2FAuth is changed: no canary account left orphaned
    name = args.name or default_name(url)
    return Answers(url, name, token, token_file, typed, canary_file, create, out, args.force)


def default_name(url: str) -> str:
    """An instance name from the host's first label (vault.example.com -> vault); "2fauth" for an
    IP address or localhost."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or ":" in host or re.fullmatch(r"[\d.]+", host):
        return "2fauth"
    name = re.sub(r"[^a-z0-9]+", "-", host.split(".", 1)[0]).strip("-_")[:63]
    return name or "2fauth"


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long (a token pasted in place of a file name) exists nowhere
        return False


def _token(args: argparse.Namespace, path: Path, interactive: bool) -> tuple[str, bool]:
    if _exists(path) or not interactive:
        if args.token_file is None and not interactive:
            raise InitError("--token-file is required (or run init in a terminal to be asked for the token)")
        return _read_token(path), False
    token = _bare(getpass.getpass("Personal access token (Settings → OAuth; not shown): "))
    if not token:
        raise InitError("no token given")
    return token, True


def _bare(token: str) -> str:
    """The token without spaces or a pasted "Bearer " in front of it."""
    token = token.strip()
    return token[7:].strip() if token.lower().startswith("bearer ") else token


def _read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
        mode = path.stat().st_mode
    except OSError as exc:
        # the path is not repeated: a token pasted in place of a file name would be echoed
        raise InitError(f"--token-file: cannot read the file: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:
        raise InitError("--token-file: the file is not UTF-8 text") from None
    if not token:
        raise InitError("--token-file: the file is empty")
    if _bare(token) != token:  # the monitor reads the file as it is: "Bearer Bearer ..." would be refused
        raise InitError('--token-file: the file starts with "Bearer "; keep only the token in it')
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(f"warning: {path} can be read by other users; run: chmod 600 {path}", file=sys.stderr)
    return token


def _refuse_existing(path: Path, force: bool, flag: str) -> None:
    if _exists(path) and not force:
        raise InitError(f"{flag}: {path} already exists; pass --force to replace it")
    try:
        is_dir = path.is_dir()
    except OSError as exc:
        raise InitError(f"{flag}: unusable file name: {exc.strerror or exc}") from None
    if is_dir:
        raise InitError(f"{flag}: {path} is a directory")


def _refuse_unwritable(path: Path, flag: str) -> None:
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise InitError(f"{flag}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InitError(f"{flag}: cannot write in {folder}")


def _ask(prompt: str) -> str:
    try:
        return input(prompt).strip()
    except EOFError:
        return ""


def _yes(prompt: str) -> bool:
    return _ask(prompt).lower() in ("", "y", "yes")


def private_write(path: Path, text: str, *, force: bool) -> None:
    """Write a secret to a new file readable by its owner only (mode 0600), never wider, even for
    a moment: the file is created with that mode."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise InitError(f"{path} already exists; pass --force to replace it") from None
    except OSError as exc:
        raise InitError(f"cannot write {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an existing file replaced with --force keeps no wider mode
        handle.write(text + "\n")
