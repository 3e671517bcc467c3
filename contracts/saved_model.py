"""The pushed model's contract: what models/ exports and the Pusher, TF Serving, the serving
checks, the stand-in, the client and ops/ rely on, named once.

The signature keys are models/model.py's (its docstring says what each answers); the method
names and tensor keys are TF Serving's (classifier.cc, regressor.cc, predict_util.cc); the
files under ASSETS_EXTRA are the ones TF Serving ignores except its warm-up file.
"""

# The exported model's signatures.
DEFAULT_SIGNATURE = "serving_default"  # serialized tf.Examples; TF Serving's default signature key
RAW_SIGNATURE = "serve_raw"  # one tensor per raw column
CLASSIFY_SIGNATURE = "classify"  # a classifier's, with TF Serving's classify method
REGRESS_SIGNATURE = "regress"  # a regressor's, with TF Serving's regress method
TRANSFORM_SIGNATURE = "transform_features"  # raw examples to transformed features, for TFMA
SERVE_TAG = "serve"  # the MetaGraphDef TF Serving loads

# TF Serving's SignatureDef method names, and the tensor keys its classify and regress APIs
# look signatures up by.
PREDICT_METHOD_NAME = "tensorflow/serving/predict"
CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
REGRESS_METHOD_NAME = "tensorflow/serving/regress"
CLASSIFY_INPUTS, CLASSIFY_CLASSES, CLASSIFY_SCORES = "inputs", "classes", "scores"
REGRESS_INPUTS, REGRESS_OUTPUTS = "inputs", "outputs"

SAVED_MODEL_PB, SAVED_MODEL_PBTXT = "saved_model.pb", "saved_model.pbtxt"
SAVED_MODEL_FILES = (SAVED_MODEL_PB, SAVED_MODEL_PBTXT)

# The SavedModel's extra files, which TF Serving's loader does not read, except its warm-up
# file (saved_model_warmup_util.cc).
ASSETS_EXTRA = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"  # PredictionLogs TF Serving replays at load
WEIGHTS_FILE = "keras.weights.h5"  # the Keras weights the next training warm-starts from
# A classifier's class names, one a line in output order: the Evaluator's per-class metrics
# and clients read them.
CLASSES_FILE = "classes.txt"
GBT_MODEL_FILE = "lightgbm_model.txt"  # gradient-boosted trees: LightGBM's own text model
# Which model trainer.model trained and exported (dnn or gbt) and, for auto, the eval split's
# tuner objective of each: JSON {"configured", "model", "objective", "eval_scores", "reason"}.
TRAINER_CHOICE = "trainer_choice.json"
WARM_STARTED_FROM = "warm_started_from"  # the served version the training warm-started from
ROLLED_BACK_FROM = "rolled_back_from"  # the version `tfxp rollback` copied this one from

# What a push writes into its version directory besides the SavedModel: where it came from
# (see components/atomic_pusher). TF Serving's loader reads saved_model.pb(txt), variables/,
# assets/, fingerprint.pb, assets.extra/tf_serving_warmup_requests, batching_params.pbtxt and
# model.tflite; it ignores other files (tensorflow_serving/servables/tensorflow/
# saved_model_bundle_factory.cc, bundle_factory_util.cc, saved_model_warmup_util.cc).
PUSH_RECORD = "tfxp-push.json"
# The model card each push writes under ASSETS_EXTRA (components/model_card): for people, for
# a browser, and the facts it was rendered from, for programs.
MODEL_CARD_MD, MODEL_CARD_HTML, MODEL_CARD_JSON = "model_card.md", "model_card.html", "model_card.json"
