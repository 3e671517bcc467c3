"""The commands that operate the pipeline: they read what runs recorded and act on it.

`runs`, `lineage`, `rollback`, `export-schema`, `doctor` and monitoring (`feedback`, `monitor`,
`report`) read ML Metadata, the pipeline root and the serving directory. The pipeline itself
(the factory in pipeline/pipeline.py and its runners) is wired in pipeline/; ops imports
pipeline's config and metadata connection, never the other way round.
"""
