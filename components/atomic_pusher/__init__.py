"""The Pusher's executor that publishes a version atomically (see executor.py)."""
