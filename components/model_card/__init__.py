"""The model card written into each pushed version (card.py: gathered from the run's artifacts,
rendered as Markdown and HTML)."""
