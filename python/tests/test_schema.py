"""The Python models against docs/tapis-cred.schema.json (derived from the
Rust output types): every field of each document the package parses is read,
nothing is read that the schema lacks, a missing required field raises
:class:`UnexpectedOutput` naming it, and null is accepted where the schema
allows it. No agent is needed: the documents are made from the schema."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tapis_agent import agent, errors
from tapis_agent.errors import UnexpectedOutput

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "tapis-cred.schema.json").read_text())
DEFS: dict[str, Any] = SCHEMA["$defs"]

#: Read by ``_cred.run`` for every document, not by the models.
ENVELOPE = ("command", "ok", "exit_code")

#: The documents the Python API parses, by their name in the schema.
PARSERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "token": agent._parse_token,
    "login": agent._parse_login,
    "status": agent._parse_status,
    "systems": lambda doc: agent._parse_systems(doc, "check"),
}


class Recorded(dict):  # type: ignore[type-arg]
    """A JSON object that notes which of its keys are looked at."""

    def __init__(self, fields: dict[str, Any], path: str, seen: set[str]) -> None:
        super().__init__(fields)
        self.path = path
        self.seen = seen

    def _note(self, key: object) -> None:
        self.seen.add(f"{self.path}.{key}" if self.path else str(key))

    def __getitem__(self, key: str) -> Any:
        self._note(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._note(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self._note(key)
        return super().__contains__(key)


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DEFS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def non_null(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema of the value when it is not null."""
    schema = resolve(schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return non_null(next(b for b in schema[key] if resolve(b).get("type") != "null"))
    return schema


def nullable(schema: dict[str, Any]) -> bool:
    schema = resolve(schema)
    types = schema.get("type")
    return (
        (isinstance(types, list) and "null" in types)
        or None in schema.get("enum", [])
        or any(resolve(b).get("type") == "null" for b in schema.get("anyOf", []) + schema.get("oneOf", []))
    )


def fields(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, bool, bool]]:
    """``(path, required, nullable)`` of every field, nested ones included
    (``systems[].error.kind``)."""
    schema = non_null(schema)
    if "properties" in schema:
        required = schema.get("required", [])
        for key, sub in schema["properties"].items():
            if not path and key in ENVELOPE:
                continue
            here = f"{path}.{key}" if path else key
            yield here, key in required, nullable(sub)
            yield from fields(sub, here)
    elif schema.get("type") == "array":
        yield from fields(schema["items"], f"{path}[]")


def sample(
    schema: dict[str, Any], seen: set[str], path: str = "", drop: str = "", null: frozenset[str] = frozenset()
) -> Any:
    """A value of ``schema``: every field present (but ``drop``; null for
    ``null``), objects recording what is read into ``seen``."""
    schema = non_null(schema)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return next(v for v in schema["enum"] if v is not None)
    types = schema.get("type")
    kind = next(t for t in types if t != "null") if isinstance(types, list) else types
    if kind == "object":
        out: dict[str, Any] = {}
        for key, sub in schema.get("properties", {}).items():
            here = f"{path}.{key}" if path else key
            if here != drop:
                out[key] = None if here in null else sample(sub, seen, here, drop, null)
        return Recorded(out, path, seen)
    if kind == "array":
        return [sample(schema["items"], seen, f"{path}[]", drop, null)]
    if kind == "string":
        return "x"
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return True
    raise AssertionError(f"no sample for {schema} at {path}")


def document(name: str, drop: str = "", null: frozenset[str] = frozenset()) -> tuple[Any, set[str]]:
    seen: set[str] = set()
    return sample(DEFS[name], seen, drop=drop, null=null), seen


def normal(field: str) -> str:
    """``systems[0].state`` as the schema path ``systems[].state``."""
    return re.sub(r"\[\d+\]", "[]", field)


def test_the_schema_has_the_documents_parsed() -> None:
    for name in PARSERS:
        assert name in DEFS, f"docs/tapis-cred.schema.json has no document {name!r}"


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_field_is_read_and_nothing_else(name: str) -> None:
    doc, seen = document(name)
    PARSERS[name](doc)
    known = {path for path, _, _ in fields(DEFS[name])}
    unread = sorted(known - seen)
    assert not unread, f"{name}: the model does not read {unread}"
    unknown = sorted(seen - known - set(ENVELOPE))
    assert not unknown, f"{name}: the model reads {unknown}, which the schema lacks"


def test_errors_read_every_field() -> None:
    doc, seen = document("failure")
    e = errors.from_document(doc["error"], "token")
    assert isinstance(e, errors.TapisAgentError)
    unread = sorted({f"error.{p}" for p, _, _ in fields(DEFS["error"])} - seen)
    assert not unread, f"from_document does not read {unread}"


def cases() -> Iterator[tuple[str, str, bool]]:
    for name in sorted(PARSERS):
        for path, required, _ in fields(DEFS[name]):
            # An error object is read leniently on purpose: whatever it lacks,
            # the call still raises an error (errors.from_document).
            if ".error." not in path:
                yield name, path, required


@pytest.mark.parametrize(("name", "path", "required"), list(cases()))
def test_a_missing_field_fails_loudly_when_required(name: str, path: str, required: bool) -> None:
    doc, _ = document(name, drop=path)
    if not required:
        PARSERS[name](doc)
        return
    with pytest.raises(UnexpectedOutput) as caught:
        PARSERS[name](doc)
    e = caught.value
    assert normal(e.field) == path, e
    assert isinstance(e, ValueError) and isinstance(e, errors.TapisAgentError)
    assert path.rsplit(".", 1)[-1] in str(e) and e.hint


def twins(path: str) -> frozenset[str]:
    """A time and its ``_unix`` form are null together."""
    base = path[: -len("_unix")] if path.endswith("_unix") else path
    return frozenset({base, f"{base}_unix"})


@pytest.mark.parametrize(
    ("name", "path"), [(n, p) for n in sorted(PARSERS) for p, _, is_null in fields(DEFS[n]) if is_null]
)
def test_null_is_read_where_the_schema_allows_it(name: str, path: str) -> None:
    doc, _ = document(name, null=twins(path))
    PARSERS[name](doc)


def test_a_field_of_another_type_names_it() -> None:
    doc, _ = document("status")
    doc["systems_total"] = "5"
    with pytest.raises(UnexpectedOutput, match="systems_total"):
        agent._parse_status(doc)
    doc, _ = document("systems")
    doc["systems"][0]["cached"] = 1
    with pytest.raises(UnexpectedOutput) as caught:
        agent._parse_systems(doc, "check")
    assert caught.value.field == "systems[0].cached"


def test_a_time_given_half_is_an_error() -> None:
    doc, _ = document("status", null=frozenset({"login.expires_at"}))
    with pytest.raises(UnexpectedOutput, match="expires_at"):
        agent._parse_status(doc)


def test_the_parsed_values() -> None:
    doc, _ = document("token")
    doc.update(access_token="a.b.c", expires_at_unix=1_795_456_800, username="u", base_url="https://t")
    token = agent._parse_token(doc)
    assert (token.access_token, token.username, token.base_url) == ("a.b.c", "u", "https://t")
    assert token.expires_at.isoformat() == "2026-11-23T18:00:00+00:00"
    doc, _ = document("login", null=frozenset())
    doc.update(refreshable=False, refresh_problem="no refresh token")
    login = agent._parse_login(doc)
    assert (login.refreshable, login.refresh_problem) == (False, "no refresh token")
    assert "not refreshable: no refresh token" in str(login)
