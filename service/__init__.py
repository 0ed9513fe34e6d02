"""The GaitID service: REST API, storage, gallery, jobs, and the ``gaitid`` command line."""
