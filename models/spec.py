"""Feature definitions as data: the typed, validated specs of the features, the label and the
model's training settings.

The pipeline's configuration (pipeline/config.py) composes these sections; the model code
(Transform, Tuner, Trainer) parses the JSON the pipeline passes along through the same models
(`ModelSpec`), so both read one set of fields, defaults and rules. Each section's rules sit next
to its fields; a broken rule is one line naming the key path (models/sections.py).
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Mapping

from pydantic import BeforeValidator, Field, field_validator, model_validator

from contracts.column_names import feature_key
from models.sections import Choice, Invalid, Section, Texts

# tf.Transform's limit for approximate vocabularies (tft.analyzers.LARGE_VOCAB_TOP_K).
VOCABULARY_CAP = 200_000


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
    # numeric: z-score of log(1 + x) instead of x, for a heavy-tailed column of values >= 0
    # (tfxp init sets it from the data); values below 0 count as 0.
    log_transform: bool = False

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
        if self.log_transform and self.type is not FeatureType.NUMERIC:
            raise Invalid("log_transform", f"is an option of type numeric, not {self.type}; remove it")
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
    """`features:` maps each column to its options (or just its type); the key is the name, the
    CSV header or its feature key (contracts/column_names.py), resolved here to the key."""
    if not isinstance(value, Mapping):
        return value  # the dict type's own error
    named: dict = {}
    written: dict[str, str] = {}
    for key, options in value.items():
        name = feature_key(str(key))
        if name in written:
            raise Invalid(
                str(key),
                f"'{written[name]}' and '{key}' are the same column (both become the feature key "
                f"'{name}'); list it once",
            )
        written[name] = str(key)
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


def _cross_part(part: str) -> str:
    """A cross part by header or key, NAME or NAME.PART (a timestamp's part), NAME as its key.
    The last dot always separates a part, so a header with a dot is named by its key here."""
    name, dot, sub = part.rpartition(".")
    return f"{feature_key(name)}.{sub}" if dot else feature_key(part)


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
        if isinstance(raw, Mapping) and isinstance(raw.get("features"), (list, tuple)):
            raw = {**raw, "features": [_cross_part(str(part)) for part in raw["features"]]}
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

    @field_validator("column", "greater_than_fraction_of")
    @classmethod
    def _as_feature_key(cls, column: str | None) -> str | None:
        """A column by its CSV header or its feature key: the key (contracts/column_names.py)."""
        return None if column is None else feature_key(column)

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

_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(trials?|minutes?|min|m)?\s*$", re.IGNORECASE)


def parse_budget(budget: int | float | str) -> tuple[int | None, float | None]:
    """tuner.budget as (trials, minutes), one of them None: `6` or "6 trials"; "10 minutes"
    (or "10 min", "10m"). ValueError names the forms."""
    match = _BUDGET.match(str(budget))
    if not match:
        raise ValueError(f"expected a number of trials (6, '6 trials') or minutes ('10 minutes'), got {budget!r}")
    number, unit = float(match.group(1)), (match.group(2) or "trials").lower()
    if number <= 0:
        raise ValueError(f"must be above 0, got {budget!r}")
    if unit.startswith("t"):
        if number != int(number):
            raise ValueError(f"a number of trials is a whole number, got {budget!r}")
        return int(number), None
    return None, number


class TunerConfig(Section):
    """The random search. Unset, its trials, their steps and its space follow the train split's
    row count (models/training_plan.py)."""

    enabled: bool = True
    # How much searching: trials (6, "6 trials") or minutes ("10 minutes": no trial starts after
    # them; the one budget whose result depends on the machine's speed). None: 4 trials for up to
    # 5000 train rows, else 2.
    budget: int | str | None = None
    max_trials: int | None = Field(default=None, ge=1)  # the same as budget: N trials
    train_steps: int | None = Field(default=None, ge=1)  # per trial; None: half an epoch, 100 to 300 steps
    eval_steps: int | None = Field(default=None, ge=1)  # None: one pass over the eval split
    seed: int | None = None  # the random search's seed; None: trainer.seed

    @field_validator("budget")
    @classmethod
    def _budget_form(cls, budget: int | str | None) -> int | str | None:
        if budget is not None:
            parse_budget(budget)
        return budget

    @model_validator(mode="after")
    def _one_budget(self) -> TunerConfig:
        if self.budget is not None and self.max_trials is not None:
            raise Invalid("max_trials", "and tuner.budget both bound the search; give one (budget: N trials)")
        return self


class TrainerModel(Choice):
    """What the Trainer trains and exports (trainer.model)."""

    DNN = "dnn"  # the wide-and-deep Keras network (models/model.py)
    GBT = "gbt"  # gradient-boosted trees: LightGBM, served as plain TensorFlow ops (models/gbt.py)
    AUTO = "auto"  # both; the one with the better tuner objective on the eval split is exported


class GbtConfig(Section):
    """LightGBM's settings for trainer.model gbt and auto."""

    num_trees: int = Field(default=500, ge=1)  # at most: early stopping on the eval split keeps fewer
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    num_leaves: int = Field(default=31, ge=2, le=1024)  # the exported graph walks one level per step
    min_data_in_leaf: int = Field(default=20, ge=1)
    early_stopping_rounds: int = Field(default=50, ge=1)  # rounds without a better eval loss
    # LightGBM's threads: with deterministic and row-wise histograms on, the same data, seed and
    # thread count train the same trees bit for bit.
    num_threads: int = Field(default=1, ge=1)


class TrainerConfig(Section):
    """Unset, the steps and the batch size follow the train split's row count: epochs with early
    stopping on the eval split and a learning rate that halves on a plateau (models/training_plan.py)."""

    train_steps: int | None = Field(default=None, ge=1)  # given: that many steps, no early stopping
    eval_steps: int | None = Field(default=None, ge=1)  # None: one pass over the eval split
    batch_size: int | None = Field(default=None, ge=1)  # None: 32 to 1024, about 200 steps per epoch
    model: TrainerModel = TrainerModel.AUTO
    learning_rate: float = Field(default=0.001, gt=0)
    # The first layer's units and the number of layers are also the Tuner's search defaults.
    hidden_units: tuple[Annotated[int, Field(ge=1)], ...] = Field(default=(32, 16), min_length=1)
    # Regression: mse, or huber; classification has its own (cross-entropy) and takes none.
    loss: RegressionLoss | None = None
    # Seeds weights, dropout and the shuffle of the training data, with TensorFlow's op
    # determinism: the same data and config train the same model.
    seed: int = 42
    warm_start: bool = False  # start from the newest served model's weights where they still fit (dnn)
    gbt: GbtConfig = Field(default_factory=GbtConfig)
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
    # A timestamp's parts are model inputs named NAME_PART (models/model_inputs.py timestamp_part_name).
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
