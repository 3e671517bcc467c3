"""Serving the pushed models: a TF Serving client, and a stand-in server where TF Serving is absent."""
