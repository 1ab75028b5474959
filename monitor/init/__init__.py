"""`2fauth-monitor init`: from nothing to a working configuration in one command.

1. the answers: flags, or asked for in a terminal (answers.py);
2. 2FAuth checked: the live check finds /up or /live and the version, GET /api/v1/user proves the
   token; with --create-canary, the canary TOTP account is created (talk.py);
3. the files: the secrets each in its own file (mode 0600), a minimal configuration referring to
   them by token_file and canary_secret_file, never inline;
4. every check run once from the written file, as `check` would.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from monitor import config as configuration
from monitor.checks import make_context
from monitor.config import ConfigError, Instance
from monitor.init.answers import (
    EXIT_TWOFAUTH,
    EXIT_USER,
    Answers,
    InitError,
    add_arguments,
    gather,
    private_write,
)
from monitor.init.talk import CANARY_NAME, Found, create_canary, find, new_secret
from monitor.models import Status
from monitor.plural import plural
from monitor.sanitize import clean
from monitor.scheduler import run_all_once
from monitor.secrets import redact

__all__ = ["add_arguments", "cmd_init"]


def cmd_init(args: argparse.Namespace) -> int:
    try:
        answers = gather(args)
        secret = new_secret()
        inst = _probe_instance(answers, secret)
        found, account_id = asyncio.run(_talk(inst, answers, secret))
        _write(answers, secret, account_id, found)
        return _first_run(answers.out)
    except InitError as exc:
        print(f"error: {clean(redact(exc.message))}", file=sys.stderr)
        return exc.code


def _probe_instance(answers: Answers, secret: str) -> Instance:
    """The instance as the checks see it, the secrets in memory only (and registered, so that no
    message can show them)."""
    raw = {
        "instances": [
            {
                "name": answers.name,
                "url": answers.url,
                "token": answers.token,
                "checks": {"totp": {"canary_secret": secret}},
            }
        ]
    }
    try:
        return configuration.from_mapping(raw, env={}).instances[0]
    except ConfigError as exc:
        problem = exc.problems[0].replace("instances[0].name", "--name").replace("instances[0].url", "--url")
        raise InitError(problem, EXIT_USER) from None


async def _talk(inst: Instance, answers: Answers, secret: str) -> tuple[Found, int | None]:
    ctx = make_context(inst)
    try:
        found = await find(ctx)
        version = f"2FAuth {found.version}" if found.version else "2FAuth"
        print(f"{version} answers at {answers.url} (health: {found.path})")
        role = "an administrator" if found.admin else "not an administrator"
        print(f"the token works: user {clean(found.user)} ({role})")
        if not answers.create_canary:
            print(
                "no canary account in 2FAuth (--create-canary adds one, to check that stored secrets decrypt)"
            )
            return found, None
        account_id = await create_canary(ctx, secret)
        print(f'created the canary TOTP account "{CANARY_NAME}" in 2FAuth (id {account_id})')
        return found, account_id
    finally:
        await ctx.aclose()


def config_text(answers: Answers, account_id: int | None, found: Found) -> str:
    """The minimal configuration: one instance, its secrets referred to by file."""
    totp: dict[str, Any] = {"canary_secret_file": str(answers.canary_secret_file)}
    if account_id is not None:
        totp["account_id"] = account_id
    data = {
        "storage": {"path": str(answers.out.parent / "data" / "monitor.db")},
        "web": {"listen": "127.0.0.1:8080"},
        "instances": [
            {
                "name": answers.name,
                "url": answers.url.replace("$", "$$"),  # ${...} would be read as a variable
                "token_file": str(answers.token_file),
                "checks": {"totp": totp},
            }
        ],
    }
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    release = f"2FAuth {found.version}" if found.version else "2FAuth"
    head = (
        f"# Written by `2fauth-monitor init` on {when}, for {release} at {answers.url}.\n"
        "# Secrets are in the files named here (mode 0600), never in this file.\n"
        "# Every key: README.md, Configuration. Check it: 2fauth-monitor check --config THIS_FILE\n"
    )
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _write(answers: Answers, secret: str, account_id: int | None, found: Found) -> None:
    if answers.token_typed:
        private_write(answers.token_file, answers.token, force=answers.force)
        print(f"wrote {answers.token_file} (the token, mode 0600)")
    private_write(answers.canary_secret_file, secret, force=answers.force)
    print(f"wrote {answers.canary_secret_file} (the canary secret, mode 0600)")
    text = config_text(answers, account_id, found)
    try:
        answers.out.parent.mkdir(parents=True, exist_ok=True)
        answers.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InitError(f"cannot write {answers.out}: {exc.strerror or exc}") from None
    print(f"wrote {answers.out}")


def _first_run(out: Path) -> int:
    """Every check once from the file just written: proof that it works as it stands."""
    try:
        settings = configuration.load(out)
    except ConfigError as exc:  # a bug of ours: the file was written by init itself
        raise InitError(f"{out} does not validate: {exc.problems[0]}", EXIT_TWOFAUTH) from None
    for line in configuration.warnings(settings):
        print(f"warning: {redact(line)}", file=sys.stderr)
    results = asyncio.run(run_all_once(settings))
    for r in results:
        kind = f" [{r.kind}]" if r.kind else ""
        print(clean(redact(f"{r.instance}/{r.check}: {r.status}{kind} {r.message}")))
    release = next((r.release for r in results if r.release), None)
    if release:
        print(f"release: {release}")
    failing = [r for r in results if r.status != Status.UP]
    if failing:
        names = ", ".join(f"{r.check} ({r.kind})" for r in failing)
        print(f"the configuration is written, but {names} is not up", file=sys.stderr)
        return EXIT_TWOFAUTH
    print(f"{plural(len(results), 'check')}, all up. Start monitoring:")
    print(f"  2fauth-monitor run --config {out}    # status page on http://127.0.0.1:8080/")
    return 0
