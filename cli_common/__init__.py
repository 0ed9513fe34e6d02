"""Option builders, input errors and tables shared by the ``gaitid`` command line and the benchmarks.

``service.cli`` runs the ``bench`` stages as ``gaitid bench STAGE``, and the stages take the same
options and raise the same errors as the other commands. Both depend on this package and neither on
the other, so the benchmarks never import the command line and the command line imports a stage
only when it runs. Each module imports only what its options need: a command that uses the tables
does not load the gait models.
"""
