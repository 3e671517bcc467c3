"""Column names to feature keys (contracts/column_names.py): one deterministic mapping, a key
maps to itself, two columns that become one key are one line naming both."""

import pytest

from contracts.column_names import KEY, ColumnNameError, column_headers, column_keys, feature_key


@pytest.mark.parametrize(
    "name, key",
    [
        ("trip_miles", "trip_miles"),  # already a key: unchanged, so existing configs keep their names
        ("Fare2", "Fare2"),
        ("île", "ile"),  # NFKD, the accent dropped
        ("Ünïcödé", "Unicode"),
        ("ｆｕｌｌ", "full"),  # full-width letters: their compatibility decomposition
        ("trip miles-x", "trip_miles_x"),
        ("2nd value", "c_2nd_value"),  # a leading digit gets the prefix
        ("a.b", "a_b"),  # a dot would read as a cross's NAME.PART
        ("_id", "c__id"),  # TensorFlow names do not start with '_'
        ("price ($)", "price____"),
        ("Straße", "Stra_e"),  # no ASCII decomposition: '_'
        ("日付", "c___"),
        ("", "c_"),
        ("self", "c_self"),  # TensorFlow's signature functions take the keys as argument names
        ("class", "c_class"),  # a Python keyword is no argument name
        ("lambda", "c_lambda"),
        ("Self", "Self"),
    ],
)
def test_feature_key(name, key):
    assert feature_key(name) == key
    assert KEY.match(key)
    assert feature_key(key) == key  # mapping twice changes nothing: a header or a key is accepted


def test_column_keys_keep_the_order_and_invert():
    header = ["île", "2nd value", "fare"]
    assert column_keys(header) == {"île": "ile", "2nd value": "c_2nd_value", "fare": "fare"}
    assert column_headers(header) == {"ile": "île", "c_2nd_value": "2nd value", "fare": "fare"}


@pytest.mark.parametrize(
    "header, first, second, key",
    [
        (["ile", "x", "île"], "ile", "île", "ile"),
        (["trip miles", "trip-miles"], "trip miles", "trip-miles", "trip_miles"),
        (["a.b", "a_b"], "a.b", "a_b", "a_b"),
    ],
)
def test_two_columns_that_become_one_key_are_one_line_naming_both(header, first, second, key):
    with pytest.raises(ColumnNameError) as err:
        column_keys(header, "data.csv")
    message = str(err.value)
    assert message == (
        f"columns '{first}' and '{second}' of data.csv both become the feature key '{key}' "
        "(names are mapped to ASCII letters, digits and '_'); rename one of them"
    )
    assert "\n" not in message


@pytest.mark.parametrize("name", ["self", "class", "if"])
def test_a_reserved_name_becomes_a_key_a_saved_signature_takes(name, tmp_path):
    """The mortgage data's `self` column broke `tf.saved_model.save` in the Trainer: the keys are
    a signature function's argument names."""
    import tensorflow as tf

    key = feature_key(name)

    @tf.function(input_signature=[{key: tf.TensorSpec([None], tf.float32, name=key)}])
    def double(columns):
        return {"y": columns[key] * 2}

    tf.saved_model.save(tf.Module(), str(tmp_path), signatures={"s": double.get_concrete_function()})
    answer = tf.saved_model.load(str(tmp_path)).signatures["s"](**{key: tf.constant([1.5])})
    assert answer["y"].numpy().tolist() == [3.0]
