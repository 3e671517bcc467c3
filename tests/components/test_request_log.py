"""Request logs: written as TF Serving PredictionLogs, read back as the requests' tf.Examples."""

from components.drift_check.request_log import RequestLogger, read_examples


def test_logged_requests_read_back_in_order(tmp_path):
    logger = RequestLogger(str(tmp_path / "requests"))
    logger.log("taxi", "serving_default", [b"first", b"second"])
    logger.log("taxi", "classify", [b"third"])
    # Read while the server still runs: every record is flushed as it is written.
    assert read_examples(str(tmp_path / "requests")) == [b"first", b"second", b"third"]
    logger.close()


def test_no_log_directory_means_no_requests(tmp_path):
    assert read_examples(str(tmp_path / "nothing")) == []
