"""The pydantic base every configuration section is built on, and its one-line errors.

`Section` is an immutable section that refuses unknown keys; `Choice` an option with a fixed set
of values; `Invalid` a broken rule with the key it concerns. `error_line` turns the first problem
of a validation into one line that names the key path (`trainer.train_steps: must be at least 1,
got 0`). The feature definitions (models/spec.py) and the pipeline's configuration
(pipeline/config.py) are both built of these.
"""

from __future__ import annotations

import difflib
import enum
import types
import typing
from typing import Annotated, Any, Mapping, Union

import pydantic
from pydantic import AfterValidator, BeforeValidator


class Choice(str, enum.Enum):
    """A config option with a fixed set of values: YAML and `--set` give them as text, in any case."""

    @classmethod
    def _missing_(cls, value: object) -> Choice | None:
        if isinstance(value, str):
            for member in cls:
                if member.value.lower() == value.strip().lower():
                    return member
        return None

    def __str__(self) -> str:  # f-strings and str() give the value on every Python version
        return self.value


class Invalid(ValueError):
    """A rule of a section is broken. `field` (dotted, or a tuple of keys and list indexes, below
    the section) is where, if not the section itself; `error_line` puts it into the key path.
    `shown` (optional) is what the key holds, shown after the key path: crosses[0] (a x b)."""

    def __init__(self, field: str | tuple | None, message: str, shown: str | None = None):
        super().__init__(message)
        self.field = field
        self.shown = shown


class Section(pydantic.BaseModel):
    """A config section: immutable, unknown keys rejected, numbers accepted where text is wanted
    (YAML reads `classes: [1, 2]` and `cpu_request: 1` as numbers)."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)


def _as_list(value: Any) -> Any:
    """A single value where a list is wanted is a list of one (`slices: hour`)."""
    return [value] if isinstance(value, (str, int, float)) and not isinstance(value, bool) else value


# A list of text values, kept as a tuple (sections are immutable).
Texts = Annotated[tuple[str, ...], BeforeValidator(_as_list)]


def _between_0_and_1(value: float | None) -> float | None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(f"must lie between 0 and 1, got {value}")
    return value


def _in_0_1(value: float | None) -> float | None:
    if value is not None and not 0.0 < value <= 1.0:
        raise ValueError(f"must lie in (0, 1], got {value}")
    return value


Fraction = Annotated[float, AfterValidator(_between_0_and_1)]  # [0, 1]: an AUC, an accuracy, a ratio
Share = Annotated[float, AfterValidator(_in_0_1)]  # (0, 1]: a distance threshold


def _unwrap(annotation: Any) -> Any:
    """The type inside Annotated[...] and Optional[...]."""
    while True:
        if typing.get_origin(annotation) is Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if typing.get_origin(annotation) in (Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)


def fields_of(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """A model's fields under the keys a config writes: their aliases where they have one."""
    return {field.alias or name: field for name, field in model.model_fields.items()}


def walk(model: type[pydantic.BaseModel], loc: tuple) -> tuple[tuple, Any]:
    """Follows an error location from `model`: (the key path, without pydantic's union member
    tags, and the unwrapped annotation found there, or None when it cannot tell)."""
    path: list = []
    annotation: Any = model
    for part in loc:
        if annotation is None:
            path.append(part)
            continue
        if typing.get_origin(annotation) in (Union, types.UnionType):
            # pydantic names the member of a union it tried: not part of the key path
            members = {getattr(m, "__name__", str(m)): m for m in typing.get_args(annotation)}
            annotation = _unwrap(members.get(str(part))) if str(part) in members else None
            continue
        path.append(part)
        origin = typing.get_origin(annotation)
        if _is_model(annotation):
            field = fields_of(annotation).get(str(part))
            annotation = _unwrap(field.annotation) if field else None
        elif origin in (dict, Mapping, typing.get_origin(Mapping[str, str])):
            annotation = _unwrap(typing.get_args(annotation)[1])
        elif origin is tuple or origin is list:
            annotation = _unwrap(typing.get_args(annotation)[0])
        else:
            annotation = None
    return tuple(path), annotation


def key_path(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _choices(annotation: Any) -> str | None:
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return ", ".join(str(m.value) for m in annotation)
    return None


def error_line(err: pydantic.ValidationError, model: type[pydantic.BaseModel], top: str = "config") -> str:
    """The first problem of `err` (from validating `model`) as one line: `key.path: what is wrong`.

    `top` names the top level, for an unknown top-level option."""
    problem = err.errors(include_url=False)[0]
    kind, given = problem["type"], problem.get("input")
    loc, annotation = walk(model, tuple(problem["loc"]))
    error = (problem.get("ctx") or {}).get("error")
    if isinstance(error, Invalid) and error.field:
        loc = (*loc, *(error.field if isinstance(error.field, tuple) else error.field.split(".")))
    where = key_path(loc)
    if isinstance(error, Invalid) and error.shown:
        where = f"{where} ({error.shown})"
    if kind == "extra_forbidden":
        parent, parent_type = walk(model, tuple(problem["loc"])[:-1])
        valid = sorted(fields_of(parent_type)) if _is_model(parent_type) else []
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"{key_path(parent) or top}: unknown option '{loc[-1]}'{hint}; valid options are: {', '.join(valid)}"
    if kind == "missing":
        choices = _choices(annotation)
        return f"{where}: missing required option" + (f" (one of: {choices})" if choices else "")
    if kind == "enum":
        return f"{where}: '{given}' is not one of: {_choices(annotation) or problem['ctx']['expected']}"
    messages = {
        "int_parsing": "expected a number",
        "int_type": "expected a number",
        "float_parsing": "expected a number",
        "float_type": "expected a number",
        "int_from_float": "expected a whole number",
        "bool_parsing": "expected true or false",
        "bool_type": "expected true or false",
        "string_type": "expected a text value",
        "dict_type": "expected a mapping",
        "model_type": "expected a mapping of options",
        "model_attributes_type": "expected a mapping of options",
        "tuple_type": "expected a list",
        "list_type": "expected a list",
    }
    if kind in messages:
        shown = f"{type(given).__name__} {given!r}" if "mapping" in messages[kind] else repr(given)
        return f"{where}: {messages[kind]}, got {shown}"
    bounds = {
        "greater_than_equal": ("ge", "must be at least"),
        "greater_than": ("gt", "must be above"),
        "less_than_equal": ("le", "must be at most"),
        "less_than": ("lt", "must be below"),
    }
    if kind in bounds:
        key, words = bounds[kind]
        if kind == "greater_than_equal" and problem["ctx"][key] == 0:
            return f"{where}: must not be negative, got {given!r}"
        return f"{where}: {words} {problem['ctx'][key]}, got {given!r}"
    if kind == "too_short":
        return f"{where}: needs at least {problem['ctx']['min_length']} value(s), got {given!r}"
    message = str(error) if error is not None else problem["msg"]
    return f"{where}: {message}" if where else message
