"""Reading the YAML of a configuration in one pass over the parser's event stream.

Mappings and lists are built from their start and end events, and each scalar is resolved and
constructed by PyYAML's own SafeLoader (its resolver, its constructors, on a throw-away ScalarNode),
so the data is what yaml.safe_load returns, while the shape is bounded in the same pass (no
anchors or aliases, at most MAX_DEPTH levels, at most MAX_NODES values). The composer's node graph
(about 100 MB at 10,000 instances, memory Python keeps fragmented afterwards) is never built.

What the one pass leaves to the library (merge keys `<<`, `=` keys, tagged lists and mappings such
as !!set, a list or mapping as a key, more than one document, any error) is read again the way it
was before: the shape walked, then the whole document composed by PyYAML, so its result and its
error messages are the library's own.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import ScalarNode

from monitor.config.errors import ConfigError

MAX_DEPTH = 32  # levels of nesting; a real configuration uses 6
MAX_NODES = 2_000_000  # scalars, lists and mappings; 10,000 instances use about 200,000

_MAP_TAG = yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG
_SEQ_TAG = yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG
_PLAIN_TAGS = {MappingStartEvent: {None, "!", _MAP_TAG}, SequenceStartEvent: {None, "!", _SEQ_TAG}}
_SPECIAL_KEYS = {"tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"}  # flatten_mapping's business
_IMMUTABLE = {str, int, float, bool, type(None), bytes, dt.date, dt.datetime}  # safe to share
_NO_KEY = object()  # a mapping waiting for its next key


class _Unusual(Exception):
    """Something the one pass leaves to PyYAML's composer."""


# what SafeConstructor raises besides YAMLError, for !!int x, !!bool x, !!timestamp x...
CONSTRUCT_ERRORS = (ValueError, KeyError, AttributeError, TypeError, OverflowError)


class _BadValue(Exception):
    """A scalar its constructor cannot build; the document is read again for the error before it."""

    def __init__(self, line: str) -> None:
        self.line = line


def read(text: str, where: str) -> Any:
    """The document's data as yaml.safe_load returns it (None for an empty file). ConfigError for a
    shape refused; yaml.YAMLError (the pure-Python parser's, as before) for a document not valid."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    line = where
    try:
        return build(yaml.parse(text, Loader=loader), where)
    except _BadValue as exc:
        line = exc.line
    except (yaml.YAMLError, _Unusual):
        pass  # read it again the library's way, for its result or its error
    check_shape(text, where)
    try:
        return _parse_yaml(text)
    except CONSTRUCT_ERRORS:  # !!int x: PyYAML's constructors raise these as they are
        raise ConfigError(
            [f"{line}: not valid YAML: a value tagged with a type (such as !!int) is not of that type"]
        ) from None


def _too_deep(line: str) -> ConfigError:
    return ConfigError([f"{line}: nested more than {MAX_DEPTH} levels deep"])


def _anchors(line: str) -> ConfigError:
    return ConfigError(
        [f"{line}: YAML anchors and aliases (&name, *name) are not supported; write the values out"]
    )


def _too_many(line: str) -> ConfigError:
    return ConfigError([f"{line}: more than {MAX_NODES:,} values; split the file"])


def _line(event: Any, where: str) -> str:
    return f"{where}:{event.start_mark.line + 1}" if event.start_mark else where


class _Scalars:
    """Scalars resolved and constructed by SafeLoader itself. The values it builds for scalars are
    immutable (str, int, float, bool, None, bytes, dates), so equal ones are built once and shared:
    10,000 instances repeat the same keys and most of the same values."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.loader = yaml.SafeLoader("")
        if self.loader.yaml_path_resolvers:
            raise _Unusual  # tags that depend on the path: the composer's business
        self.built: dict[tuple[Any, ...], Any] = {}
        self.tags: dict[tuple[Any, ...], str] = {}

    def tag(self, event: Any) -> str:
        if event.tag is not None and event.tag != "!":
            return str(event.tag)
        key = (event.value, event.implicit)
        tag = self.tags.get(key)
        if tag is None:
            tag = self.tags[key] = str(self.loader.resolve(ScalarNode, event.value, event.implicit))
        return tag

    def value(self, event: Any) -> Any:  # a ScalarEvent of yaml.events or of libyaml's _yaml
        key = (event.tag, event.value, event.implicit)
        try:
            return self.built[key]
        except KeyError:
            pass
        node = ScalarNode(self.tag(event), event.value, event.start_mark, event.end_mark, event.style)
        try:
            value = self.loader.construct_document(node)
        except CONSTRUCT_ERRORS:
            raise _BadValue(_line(event, self.where)) from None
        if type(value) in _IMMUTABLE:
            self.built[key] = value
        return value


def build(events: Any, where: str) -> Any:
    """The data of a one-document event stream; _Unusual where the composer must do it."""
    scalars = _Scalars(where)
    stack: list[Any] = []  # the lists and mappings being filled, innermost last
    keys: list[Any] = []  # for each mapping, the key waiting for its value (or _NO_KEY)
    document: Any = None
    documents = nodes = 0
    for event in events:
        kind = type(event)
        if kind is ScalarEvent or kind is MappingStartEvent or kind is SequenceStartEvent:
            if event.anchor is not None:
                raise _anchors(_line(event, where))
            if kind is not ScalarEvent and len(stack) >= MAX_DEPTH:
                raise _too_deep(_line(event, where))
            nodes += 1
            if nodes > MAX_NODES:
                raise _too_many(_line(event, where))
            at_key = bool(stack) and keys[-1] is _NO_KEY
            if kind is ScalarEvent:
                if at_key and scalars.tag(event) in _SPECIAL_KEYS:
                    raise _Unusual
                value = scalars.value(event)
            else:
                if at_key or event.tag not in _PLAIN_TAGS[kind]:
                    raise _Unusual  # a list or mapping as a key (unhashable), or !!set, !!omap...
                if kind is MappingStartEvent:
                    stack.append({})
                    keys.append(_NO_KEY)
                else:
                    stack.append([])
                    keys.append(None)  # a list has no keys
                continue
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            value = stack.pop()
            keys.pop()
        elif kind is AliasEvent:
            raise _anchors(_line(event, where))
        else:
            if kind is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _Unusual  # the library says "expected a single document"
            continue
        if not stack:
            document = value
        elif type(stack[-1]) is list:
            stack[-1].append(value)
        elif keys[-1] is _NO_KEY:
            keys[-1] = value
        else:
            stack[-1][keys[-1]] = value  # a key given twice: the last value, as safe_load does
            keys[-1] = _NO_KEY
    return document


def _parse_yaml(text: str) -> Any:
    """libyaml when present; on an error, the pure-Python parser again, so the message is the same
    wherever the file is read."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.load(text, Loader=fast)  # noqa: S506 - CSafeLoader is the safe loader
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def check_shape(text: str, where: str) -> None:
    """Refuse aliases and anchors (a 1 KB file of nested aliases expands to gigabytes), nesting
    deeper than MAX_DEPTH (the composer recurses) and more than MAX_NODES nodes, before anything is
    built: the event stream is read in constant memory."""
    for loader in (getattr(yaml, "CSafeLoader", yaml.SafeLoader), yaml.SafeLoader):
        try:
            _walk_events(text, where, loader)
            return
        except yaml.YAMLError:
            continue  # libyaml stops at 1,000 levels with a scanner error; the Python parser goes on
    # neither could read it: the loader reports the syntax error with its position


def _walk_events(text: str, where: str, loader: Any) -> None:
    depth = nodes = 0
    for event in yaml.parse(text, Loader=loader):
        line = _line(event, where)
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _anchors(line)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep(line)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        if isinstance(event, yaml.NodeEvent):
            nodes += 1
            if nodes > MAX_NODES:
                raise _too_many(line)
