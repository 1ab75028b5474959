"""Configuration errors: one line per problem, each naming its key path, with a spelling hint."""

from __future__ import annotations

import difflib
import json
import re
import typing
from typing import Any

from pydantic import BaseModel

from monitor.config.push import PUSH_TYPES
from monitor.config.schema import Settings
from monitor.notifiers import REGISTRY

# lists whose entries are told apart by `type`: the list's key -> the types it accepts
_TAGGED: dict[str, tuple[str, ...]] = {"notifiers": tuple(REGISTRY), "push": PUSH_TYPES}


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def path_str(loc: tuple[Any, ...]) -> str:
    """A key path as the user writes it: instances[0].checks.totp."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(part)):
            out += ("." if out else "") + str(part)
        else:  # a key with spaces, newlines or other odd characters: quoted, escaped, shortened
            out += "[" + json.dumps(str(part)[:64]) + "]"
    return out or "(top level)"


_FRIENDLY = {
    "extra_forbidden": "unknown key (check the spelling; see the configuration reference)",
    "missing": "required",
    "model_type": "must be a mapping of keys (key: value)",
    "model_attributes_type": "must be a mapping of keys (key: value)",
    "dict_type": "must be a mapping of keys (key: value)",
    "list_type": "must be a list (- item)",
    "too_short": "needs at least one entry",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "string_type": "must be text",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
}


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation holds: X, list[X], X | None, Annotated[A | B, ...]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _tag(model: type[BaseModel]) -> Any:
    """The `type` a notifier settings model answers to."""
    field = model.model_fields.get("type")
    return next(iter(typing.get_args(field.annotation)), None) if field else None


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at `loc`'s parent accepts, to suggest a spelling."""
    models: list[type[BaseModel]] = [Settings]
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if len(models) > 1:  # a union of notifier settings: pydantic puts the `type` in the path
            models = [m for m in models if _tag(m) == part]
            continue
        field = models[0].model_fields.get(part) if models else None
        if field is None:
            return []
        models = _models(field.annotation)
    return list(models[0].model_fields) if len(models) == 1 else []


def _user_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The path as written: without a tagged union's tag (notifiers, push), which pydantic adds."""
    if len(loc) >= 3 and isinstance(loc[1], int) and loc[2] in _TAGGED.get(str(loc[0]), ()):
        loc = (*loc[:2], *loc[3:])
    return loc


def _notifier_type_problem(err: Any, loc: tuple[Any, ...]) -> str:
    """A notifiers: or push: entry whose `type` is missing, unknown, or that is not a mapping."""
    if not isinstance(err["input"], dict):
        return f"{path_str(loc)}: {_FRIENDLY['model_type']}"
    if "type" not in err["input"]:
        return f"{path_str((*loc, 'type'))}: required"
    names = [repr(name) for name in _TAGGED.get(str(loc[0]) if loc else "", tuple(REGISTRY))]
    choices = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return f"{path_str((*loc, 'type'))}: must be {choices}"


def format_error(err: Any) -> str:
    """One pydantic error as one line: the key path, then what is wrong in plain words."""
    raw = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    loc = _user_loc(raw)
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return _notifier_type_problem(err, loc)
    msg = _FRIENDLY.get(err["type"]) or err["msg"]
    if err["type"] == "extra_forbidden" and loc:
        close = difflib.get_close_matches(str(loc[-1]), _known_keys(raw), n=1)
        if close:
            msg = f"unknown key (did you mean {close[0]}?)"
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    msg = msg.replace("Input should be", "must be").replace("String should", "must")
    return f"{path_str(loc)}: {msg}"
