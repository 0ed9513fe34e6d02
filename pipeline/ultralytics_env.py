"""Import ultralytics with its run-time network features turned off.

ultralytics tries to pip-install missing extras and to reach its hub at run time; a service
must do neither. The environment is set before the first import, and its settings file goes
under the GaitID cache instead of the user's home.
"""

import os

from pipeline.defaults import cache_dir


def offline_ultralytics() -> None:
    """Call before importing ultralytics anywhere in the process."""
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_OFFLINE", "true")
    os.environ.setdefault("YOLO_VERBOSE", "false")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(cache_dir() / "ultralytics"))
