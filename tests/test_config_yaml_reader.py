"""The one-pass YAML reader (monitor/config/yamlread.py) gives what yaml.safe_load gives: the same
data for every document, and for the documents it refuses or cannot read, the same one-line error
as the reader it replaced (the shape walked, then the whole document composed by PyYAML)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import ConfigError, yamlread

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```ya?ml\n(.*?)^```", re.S | re.M)


def outcome(read: Any, text: str) -> tuple[str, Any]:
    """What a reader makes of a text: its data, or the kind and message of its error."""
    try:
        return "data", repr(read(text, "f.yaml"))  # repr: 1, 1.0 and True differ, nan equals nan
    except ConfigError as exc:
        return "refused", exc.problems
    except yaml.YAMLError as exc:
        return "invalid", str(exc)
    except yamlread.CONSTRUCT_ERRORS:
        return "crashed", None  # !!int x: safe_load raises ValueError; `validate` showed a traceback


def before(text: str, where: str) -> Any:
    """The reader as it was: the shape walked, then the whole document composed."""
    yamlread.check_shape(text, where)
    return yamlread._parse_yaml(text)


def assert_same(text: str) -> None:
    new, old = outcome(yamlread.read, text), outcome(before, text)
    if old[0] == "crashed":
        assert new[0] == "refused" and "not valid YAML: a value tagged with a type" in new[1][0]
        return
    assert new == old
    if new[0] == "data":
        try:
            expected = yaml.safe_load(text)
        except yaml.YAMLError:
            # libyaml (which the monitor has always read with) accepts a few texts PyYAML's own
            # parser refuses, such as [!!str, yes] or [http://x/a?b]: the same data as before then
            return
        assert new == ("data", repr(expected))


def fast_path(text: str) -> Any:
    """The one pass alone, on libyaml's events (it raises _Unusual where it would give way)."""
    return yamlread.build(yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)), "f")


def documents() -> list[Path]:
    found = [p for d in ("examples", "tests", "deploy") for p in sorted((ROOT / d).rglob("*.y*ml"))]
    return [p for p in found if ".venv" not in p.parts]


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_yaml_file_of_the_project_reads_as_safe_load_reads_it(path):
    text = path.read_text(encoding="utf-8")
    assert_same(text)
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        docs = []  # tests/configs/invalid/bad-yaml.yaml
    for doc in docs:  # a configuration embedded in a Kubernetes ConfigMap too
        for value in (doc.get("data") or {}).values() if isinstance(doc, dict) else ():
            if isinstance(value, str):
                assert_same(value)


def test_the_yaml_in_the_documentation_reads_as_safe_load_reads_it():
    blocks = [
        b
        for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        for b in FENCE.findall(p.read_text())
    ]
    assert len(blocks) > 10
    for block in blocks:
        assert_same(block)


def test_a_monitor_configuration_is_read_in_the_one_pass_without_a_node_graph():
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert repr(fast_path(text)) == repr(yaml.safe_load(text))


SCALARS = [
    *["yes", "No", "on", "OFF", "y", "n", "true", "False", "TRUE", "null", "Null", "~", "NULL"],
    *[
        "0",
        "-0",
        "+12",
        "010",
        "0o17",
        "0x1F",
        "0b101",
        "1_000",
        "190:20:30",
        "12:30",
        "1e3",
        "6.8523015e+5",
        ".5",
        "-.inf",
        ".NaN",
        ".inf",
        "1.",
    ],
    *["2002-12-14 2001-12-14t21:59:43.10-05:00 2001-12-15T02:59:43.1Z 2001-12-14 21:59:43.10 -5"],
    *["=", "<<", "", "a b", "'single'", '"double \\n \\u00e9"', "'it''s'", "http://x:1/a?b=c#d", "60s"],
    *["!!str 1", "!!int '7'", "!!float 1", "!!binary aGVsbG8=", "! 12", "!!null ''", "!!bool yes"],
    *["!!timestamp 2001-12-14", "!!str", "!!int x", "!foo bar", "!!binary %%%", "$${X}", "${HOME:-/h}"],
]
KEYS = ["a", "b", "name", "url", "1", "null", "yes", "<<", "=", "? c", "'q'", "!!str 2", "2002-12-14"]
plain = st.sampled_from(SCALARS)
flow = st.recursive(
    plain,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(st.tuples(st.sampled_from(KEYS), inner), max_size=3).map(
            lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
        ),
    ),
    max_leaves=6,
)


def block(node: Any, indent: int = 0) -> list[str]:
    """A tree of ("map", [(key, node)]), ("seq", [node]) and scalar texts as block-style lines."""
    pad = " " * indent
    if isinstance(node, str):
        return [pad + node]
    kind, items = node
    lines = []
    for item in items:
        key, value = item if kind == "map" else ("-", item)
        head = pad + (f"{key}:" if kind == "map" else "-")
        if isinstance(value, str):
            lines.append(f"{head} {value}")
        elif not value[1]:
            lines.append(f"{head} {'{}' if value[0] == 'map' else '[]'}")
        else:
            lines.append(head)
            lines.extend(block(value, indent + 2))
    return lines


trees = st.recursive(
    st.one_of(plain, flow),
    lambda inner: st.one_of(
        st.tuples(st.just("map"), st.lists(st.tuples(st.sampled_from(KEYS), inner), max_size=4)),
        st.tuples(st.just("seq"), st.lists(inner, max_size=4)),
    ),
    max_leaves=12,
)
extras = st.sampled_from(["", "--- ", "---\n", "# comment\n", "%YAML 1.1\n---\n", "&a ", "!!map ", "!!set "])
endings = st.sampled_from(["", "\n...\n", "\n--- x\n", "\n- *a\n", "\nz: [1\n", "\n  bad: indent\n"])


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees, extras, endings)
def test_generated_yaml_reads_as_safe_load_reads_it_or_fails_as_before(tree, start, end):
    body = "\n".join(block(tree)) if not isinstance(tree, str) else tree
    assert_same(start + ("\n" if start.strip() and not start.endswith("\n") else "") + body + end)


values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=20),
        st.binary(max_size=8),
        st.dates(min_value=dt.date(1, 1, 1)),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(st.text(max_size=8), st.integers(), st.none(), st.booleans()), inner, max_size=4
        ),
    ),
    max_leaves=20,
)
dumps = st.fixed_dictionaries(
    {
        "default_flow_style": st.sampled_from([False, True, None]),
        "canonical": st.booleans(),
        "allow_unicode": st.booleans(),
        "width": st.sampled_from([20, 80, 1000]),
        "explicit_start": st.booleans(),
    }
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, dumps)
def test_what_safe_dump_writes_reads_back_as_safe_load_reads_it(value, options):
    text = yaml.safe_dump(value, **options)
    assert_same(text)
    if "&" not in text:
        assert repr(fast_path(text)) == repr(yaml.safe_load(text))
