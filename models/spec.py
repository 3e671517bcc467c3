"""Feature definitions as data: the typed, validated specs of the features, the label and the
model's training settings, and the pydantic base every configuration section is built on.

The pipeline's configuration (pipeline/config.py) composes these sections; the model code
(Transform, Tuner, Trainer) parses the JSON the pipeline passes along through the same models
(`ModelSpec`), so both read one set of fields, defaults and rules. Each section's rules sit next
to its fields; a broken rule is one line naming the key path (`error_line`).
"""

from __future__ import annotations

import difflib
import enum
import types
import typing
from typing import Annotated, Any, Mapping, Union

import pydantic
from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

# tf.Transform's limit for approximate vocabularies (tft.analyzers.LARGE_VOCAB_TOP_K).
VOCABULARY_CAP = 200_000


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


class FeatureType(Choice):
    """How a feature column is preprocessed (models/preprocessing.py)."""

    NUMERIC = "numeric"  # z-score scaled float
    BUCKETIZED = "bucketized"  # quantile buckets of a number, one-hot
    CATEGORICAL = "categorical"  # vocabulary of strings (or integers), one-hot with OOV buckets
    TIMESTAMP = "timestamp"  # hour of day, day of week and month (UTC), each one-hot


class TimestampFormat(Choice):
    """How a timestamp feature's values are written."""

    EPOCH = "epoch"  # seconds since 1970-01-01 UTC (a number)
    ISO = "iso"  # ISO-8601 text: 2019-03-01, 2019-03-01T14:05:00, with Z or an offset such as +02:00


# What the model sees of a timestamp, each a categorical part; crosses name them NAME.PART.
TIMESTAMP_PARTS = ("hour", "day_of_week", "month")


class Vocabulary(Choice):
    """How a categorical feature's vocabulary is computed."""

    # One pass, shared with the other analyzers; exact whenever the column has at most top_k
    # distinct values (VOCABULARY_CAP without top_k).
    APPROXIMATE = "approximate"
    EXACT = "exact"  # a Beam sub-pipeline of its own per feature, for larger vocabularies


class Task(Choice):
    """What the model predicts from the label column (label.task)."""

    BINARY = "binary"  # two classes: a sigmoid head, AUC and accuracy
    MULTICLASS = "multiclass"  # one of several classes: a softmax head over a vocabulary of classes
    REGRESSION = "regression"  # a number: a linear head, MAE and RMSE


class LabelMissing(Choice):
    """Rows whose label (or greater_than_fraction_of) is missing."""

    ERROR = "error"  # stops the run before any component (pipeline/preflight.py)
    DROP = "drop"  # ExampleGen leaves them out


class OtherClasses(Choice):
    """multiclass with label.classes: rows of a class not among them."""

    ERROR = "error"  # stops the run before any component (pipeline/preflight.py)
    DROP = "drop"  # ExampleGen leaves them out


class RegressionLoss(Choice):
    MSE = "mse"
    HUBER = "huber"  # delta: one standard deviation of the (z-scored) target


# --------------------------------------------------------------------------- the base


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


# --------------------------------------------------------------------------- features and label


class FeatureSpec(Section):
    """One input feature: its column, how it is preprocessed, and what fills it when missing."""

    name: str
    type: FeatureType
    default: float | int | str | None = None  # fills missing values; None: the type's default
    num_buckets: int = 10  # bucketized: number of quantile buckets
    top_k: int | None = Field(default=None, ge=1)  # categorical: keep the k most frequent values
    num_oov_buckets: int = Field(default=1, ge=0)  # categorical: buckets for values outside the vocabulary
    vocabulary: Vocabulary = Vocabulary.APPROXIMATE  # categorical
    format: TimestampFormat | None = None  # timestamp; None: epoch

    @field_validator("default", mode="before")
    @classmethod
    def _scalar_default(cls, value: Any) -> Any:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
            raise ValueError(f"expected a number or a text value, got {value!r}")
        return value

    @model_validator(mode="after")
    def _fits_its_type(self) -> FeatureSpec:
        if self.type is FeatureType.BUCKETIZED and self.num_buckets < 2:
            raise Invalid("num_buckets", f"must be at least 2 for a bucketized feature, got {self.num_buckets}")
        if self.type is FeatureType.NUMERIC and isinstance(self.default, str):
            raise Invalid("default", f"must be a number for a numeric feature, got {self.default!r}")
        if self.vocabulary is Vocabulary.APPROXIMATE and (self.top_k or 0) > VOCABULARY_CAP:
            raise Invalid(
                "top_k",
                f"{self.top_k} is above {VOCABULARY_CAP}, the limit of an approximate "
                "vocabulary; set vocabulary: exact",
            )
        if self.type is not FeatureType.TIMESTAMP and self.format is not None:
            raise Invalid("format", f"is an option of type timestamp, not {self.type}; remove it")
        if self.type is FeatureType.TIMESTAMP and self.default is not None:
            raise Invalid(
                "default",
                "a timestamp takes no default (a missing one gets a 'missing' category "
                "of its own in each part); remove it",
            )
        return self


def _named_features(value: Any) -> Any:
    """`features:` maps each column to its options (or just its type); the key is the name."""
    if not isinstance(value, Mapping):
        return value  # the dict type's own error
    named = {}
    for key, options in value.items():
        name = str(key)
        if isinstance(options, str):
            options = {"type": options}
        elif options is None:
            options = {}
        if isinstance(options, Mapping):
            if options.get("name", name) != name:
                raise Invalid(f"{name}.name", f"is the key '{name}'; leave it out")
            options = {**options, "name": name}
        named[name] = options
    return named


Features = Annotated[dict[str, FeatureSpec], BeforeValidator(_named_features)]


def _features_text(features: Any) -> str:
    return " x ".join(str(f) for f in features) if isinstance(features, (list, tuple)) and features else "no features"


class CrossSpec(Section):
    """A feature cross: each row's combination of the values of two or more categorical or
    bucketized features (or timestamp parts, NAME.PART), hashed into `hash_buckets` ids that
    the model one-hot encodes like a categorical feature's. `crosses:` lists them as mappings
    or as "A x B" text."""

    features: tuple[str, ...]
    hash_buckets: int = Field(default=100, ge=2)
    name: str = ""  # not given: the parts joined by _x_ (dots as _)

    @model_validator(mode="before")
    @classmethod
    def _shorthand_and_name(cls, raw: Any) -> Any:
        if isinstance(raw, str):
            raw = {"features": [part.strip() for part in raw.split(" x ")]}
        if isinstance(raw, Mapping) and not raw.get("name") and isinstance(raw.get("features"), (list, tuple)):
            raw = {**raw, "name": "_x_".join(str(part).replace(".", "_") for part in raw["features"])}
        return raw

    @model_validator(mode="after")
    def _distinct_parts(self) -> CrossSpec:
        shown = _features_text(self.features)
        if len(self.features) < 2:
            raise Invalid(
                None,
                "a cross needs at least two features; list two or more, e.g. features: [payment_type, company]",
                shown,
            )
        for part in self.features:
            if self.features.count(part) > 1:
                raise Invalid(None, f"'{part}' is listed twice; list each feature once", shown)
        return self


class LabelSpec(Section):
    """The label and the task it defines.

    binary: without a rule the column already holds the class: 0/1 integers, or strings of
    which `positive_values` are the positive class. With `greater_than_fraction_of` the label
    is 1 where `column > fraction * greater_than_fraction_of` (the taxi "big tipper" task).
    multiclass: the column's values (strings or integers) are the classes: `classes` lists
    them in the order the model answers them; without it, tf.Transform's vocabulary of the
    train split does (most frequent first). A row whose class is not in `classes` stops the
    run before any component (pipeline/preflight.py), or with `other_classes: drop` is left
    out by ExampleGen; without `classes`, rows of classes absent from the train split are left
    out of training and count as errors in the evaluation.
    regression: the column is a number; with `log_transform` the model learns log(1 + y)
    and answers y, so the target must not be below 0.
    """

    column: str
    name: str = "label"
    task: Task = Task.BINARY
    positive_values: Texts = ()  # binary
    greater_than_fraction_of: str | None = None  # binary
    fraction: float = 0.2  # binary, with greater_than_fraction_of
    classes: Texts = ()  # multiclass: the expected classes, in order
    log_transform: bool = False  # regression: train on log(1 + y)
    missing: LabelMissing = LabelMissing.ERROR
    other_classes: OtherClasses = OtherClasses.ERROR  # multiclass with classes

    @field_validator("classes")
    @classmethod
    def _classes_once(cls, classes: tuple[str, ...]) -> tuple[str, ...]:
        twice = sorted({c for c in classes if classes.count(c) > 1})
        if twice:
            raise ValueError(f"lists {', '.join(repr(c) for c in twice)} more than once")
        return classes

    @model_validator(mode="after")
    def _options_of_the_task(self) -> LabelSpec:
        task = self.task
        if self.greater_than_fraction_of and self.positive_values:
            raise Invalid(None, "give either positive_values or greater_than_fraction_of, not both")
        binary_only = [name for name in ("positive_values", "greater_than_fraction_of") if getattr(self, name)]
        if task is not Task.BINARY and binary_only:
            raise Invalid(binary_only[0], f"is an option of label.task binary, not {task}; remove it")
        if task is not Task.MULTICLASS and self.classes:
            raise Invalid("classes", f"is an option of label.task multiclass, not {task}; remove it")
        if task is not Task.REGRESSION and self.log_transform:
            raise Invalid("log_transform", f"is an option of label.task regression, not {task}; remove it")
        if task is Task.MULTICLASS and len(self.classes) == 1:
            raise Invalid("classes", "needs at least 2 classes (or leave it out: the data's classes)")
        if self.other_classes is not OtherClasses.ERROR and not self.classes:
            raise Invalid("other_classes", "applies to label.classes (multiclass); list the classes or remove it")
        return self


# --------------------------------------------------------------------------- training


class TunerConfig(Section):
    enabled: bool = True
    max_trials: int = Field(default=2, ge=1)
    train_steps: int = Field(default=100, ge=1)
    eval_steps: int = Field(default=20, ge=1)
    seed: int | None = None  # the random search's seed; None: trainer.seed


class TrainerConfig(Section):
    train_steps: int = Field(default=1000, ge=1)
    eval_steps: int = Field(default=100, ge=1)
    batch_size: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=0.001, gt=0)
    # The first layer's units and the number of layers are also the Tuner's search defaults.
    hidden_units: tuple[Annotated[int, Field(ge=1)], ...] = Field(default=(32, 16), min_length=1)
    # Regression: mse, or huber; classification has its own (cross-entropy) and takes none.
    loss: RegressionLoss | None = None
    # Seeds weights, dropout and the shuffle of the training data, with TensorFlow's op
    # determinism: the same data and config train the same model.
    seed: int = 42
    warm_start: bool = False  # start from the newest served model's weights where they still fit
    # The Trainer's entry point, by dotted path in an installed package (models/ by default).
    run_fn: str = "models.model.run_fn"

    @field_validator("run_fn")
    @classmethod
    def _dotted(cls, run_fn: str) -> str:
        module, _, function = run_fn.rpartition(".")
        if not module or not function:
            raise ValueError(f"'{run_fn}' is not a dotted path of the form package.module.function")
        return run_fn


def check_model(
    label: LabelSpec, features: Mapping[str, FeatureSpec], trainer: TrainerConfig, crosses: tuple[CrossSpec, ...] = ()
) -> None:
    """The rules between the label, the features, the crosses and the trainer (paths from the top
    level)."""
    if label.column in features:
        raise Invalid("label.column", f"'{label.column}' is also listed under features; remove it from features")
    if label.name in features:
        raise Invalid("label.name", f"'{label.name}' clashes with a feature name; choose another")
    _check_crosses(label, features, crosses)
    if label.task is not Task.REGRESSION and trainer.loss is not None:
        raise Invalid(
            "trainer.loss",
            f"is an option of label.task regression "
            f"({', '.join(m.value for m in RegressionLoss)}); "
            f"{label.task} trains with cross-entropy: remove it",
        )


def _check_crosses(label: LabelSpec, features: Mapping[str, FeatureSpec], crosses: tuple[CrossSpec, ...]) -> None:
    """Each cross names categorical, bucketized or timestamp-part features, under a name of its own."""
    # A timestamp's parts are model inputs named NAME_PART (models/features.py timestamp_part_name).
    parts = {
        f"{name}_{part}": f"{name}.{part}"
        for name, spec in features.items()
        if spec.type is FeatureType.TIMESTAMP
        for part in TIMESTAMP_PARTS
    }
    for clash in sorted(parts.keys() & {*features, label.name}):
        raise Invalid(
            "label.name" if clash == label.name else f"features.{clash}",
            f"'{clash}' names both a feature (or the label) and the model input of timestamp "
            f"part {parts[clash]}; rename the feature or the label",
        )
    taken = {*features, label.name, *parts}
    for i, cross in enumerate(crosses):
        where, shown = ("crosses", i), _features_text(cross.features)
        for part in cross.features:
            name, dot, sub = part.partition(".")
            spec = features.get(name)
            if spec is None:
                close = difflib.get_close_matches(name, features, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"features are: {', '.join(sorted(features))}"
                raise Invalid(where, f"'{name}' is not a feature; {hint}", shown)
            if spec.type is FeatureType.TIMESTAMP and sub not in TIMESTAMP_PARTS:
                raise Invalid(
                    where,
                    f"'{part}' is a timestamp; cross one of its parts: "
                    f"{', '.join(f'{name}.{p}' for p in TIMESTAMP_PARTS)}",
                    shown,
                )
            if spec.type is not FeatureType.TIMESTAMP and dot:
                raise Invalid(where, f"'{part}': only timestamp features have parts; write '{name}'", shown)
            if spec.type is FeatureType.NUMERIC:
                raise Invalid(
                    where,
                    f"'{name}' is a numeric feature, which has too many values to cross; "
                    "make it type: bucketized, or cross another feature",
                    shown,
                )
        if cross.name in taken:
            raise Invalid(
                where,
                f"the name '{cross.name}' is already taken by a feature, the label or another "
                "cross; give the cross a name of its own (name: ...)",
                shown,
            )
        taken.add(cross.name)


class ModelSpec(Section):
    """What the model code reads: `PipelineConfig.model_code_config()`, parsed again (Transform gets
    only the label and the features; the trainer and tuner sections then take their defaults)."""

    label: LabelSpec
    features: Features = Field(default_factory=dict)
    crosses: tuple[CrossSpec, ...] = ()
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    tuner: TunerConfig = Field(default_factory=TunerConfig)

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        check_model(self.label, self.features, self.trainer, self.crosses)
        return self


# --------------------------------------------------------------------------- errors


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
