"""dlib's face recognition ResNet, run with numpy.

The identity check's 128-d descriptor comes from dlib's ResNet
(``dlib_face_recognition_resnet_model_v1.dat`` from face-recognition-models).
The dlib-bin wheel is built without BLAS, so dlib multiplies its matrices with
its own portable code and one descriptor costs 115-140 ms of CPU, most of the
identity check. This module reads the same weights from the same file and runs
the same forward pass as numpy matrix products, which go to OpenBLAS: the
descriptor agrees with dlib's to float32 rounding, in a fraction of the time.

The network takes the aligned 150x150 RGB face chip that
``dlib.get_face_chip(image, shape, size=150, padding=0.25)`` cuts, the very chip
``compute_face_descriptor`` makes internally.

The file is dlib's own uncompressed serialization: for each layer a version
string, its parameters as raw little-endian float32 tensors, and its settings
as dlib's variable-length integers and (mantissa, exponent) floats. Layers
are written outermost first, so all the wrapper versions come first and then
each layer's details from the input upwards.

Nearly all the time goes to OpenBLAS, so its kernels matter: numpy 1.26's
OpenBLAS 0.3.23 does not recognise some newer or virtualised CPUs and falls
back to SSE3 ("Prescott") kernels. On an AVX-512 machine, setting
OPENBLAS_CORETYPE=SkylakeX before numpy is imported makes this 2-3x faster:
the scoring processes are started with it (``openblas_env``).

A FaceNet is never changed after loading, so threads may share one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

Float32 = npt.NDArray[np.float32]
Pixels = npt.NDArray[np.uint8]

CHIP_SIZE = 150
DESCRIPTOR_SIZE = 128

# float_details marks infinities and NaN with these exponents.
_INF, _NINF, _NAN = 32000, 32001, 32002
# dlib's layer_mode: an affine layer in CONV_MODE has one gamma per channel.
_CONV_MODE = 0
# fc_bias_mode FC_HAS_BIAS.
_FC_HAS_BIAS = 0
# Convolutions with at most this many output pixels (over the whole batch)
# multiply weights by patches; larger ones go in bands of about _BAND pixels.
_FEW_PIXELS = 64
_BAND = 384


# The instruction sets OpenBLAS's SkylakeX kernels use.
_AVX512 = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}


def openblas_env(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """OpenBLAS settings for a process that computes descriptors, to set before numpy loads.

    One thread: there is one scoring process per core already. The AVX-512
    kernels where the CPU has them, since OpenBLAS may not recognise it
    (see above); an operator's own settings are kept.
    """
    settings = {"OPENBLAS_NUM_THREADS": "1"}
    try:
        text = cpuinfo.read_text()
    except OSError:
        text = ""
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    if set(flags.split()) >= _AVX512:
        settings["OPENBLAS_CORETYPE"] = "SkylakeX"
    return {name: value for name, value in settings.items() if name not in os.environ}


@dataclass(frozen=True)
class Layer:
    """One layer as the file stores it.

    ``kind`` is "input", "con", "affine", "relu", "max_pool", "avg_pool",
    "add_prev" or "fc". ``window`` is (rows, columns, stride y, stride x,
    padding y, padding x) for convolutions and pooling (a pool of 0 rows and
    columns covers the whole image), (rows, columns) for the input. ``arrays`` holds
    float32 parameters: "filters" (out, in, rows, columns) and "bias" for
    "con", "gamma" and "beta" for "affine", "weights" (in, out) and "bias"
    for "fc", and "means" (red, green, blue) for "input".
    """

    kind: str
    window: tuple[int, ...] = ()
    arrays: dict[str, Float32] = field(default_factory=dict)


class _Reader:
    """dlib's serialization primitives over one file's bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def fail(self, what: str) -> ValueError:
        return ValueError(f"Not a dlib network file this reader knows: {what} at byte {self.pos}.")

    def integer(self) -> int:
        # A control byte (sign in the top bit, byte count in the low four),
        # then the magnitude in little-endian order.
        if self.pos >= len(self.data):
            raise self.fail("unexpected end of file")
        control = self.data[self.pos]
        size = control & 0x0F
        if not 1 <= size <= 8:
            raise self.fail("bad integer")
        start = self.pos + 1
        value = int.from_bytes(self.data[start : start + size], "little")
        self.pos = start + size
        return -value if control & 0x80 else value

    def real(self) -> float:
        mantissa = self.integer()
        exponent = self.integer()
        if exponent == _INF:
            return math.inf
        if exponent == _NINF:
            return -math.inf
        if exponent == _NAN:
            return math.nan
        return math.ldexp(mantissa, exponent)

    def flag(self) -> bool:
        byte = self.data[self.pos : self.pos + 1]
        if byte not in (b"0", b"1"):
            raise self.fail("bad bool")
        self.pos += 1
        return byte == b"1"

    def text(self) -> str:
        size = self.integer()
        raw = self.data[self.pos : self.pos + size]
        self.pos += size
        return raw.decode("latin-1")

    def tensor(self) -> Float32:
        if self.integer() != 2:
            raise self.fail("unknown tensor version")
        shape = tuple(self.integer() for _ in range(4))
        count = math.prod(shape)
        if self.pos + 4 * count > len(self.data):
            raise self.fail("tensor past the end of file")
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
        self.pos += 4 * count
        # A native-order copy: nothing keeps the file's bytes alive.
        return values.astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, ...]:
        """The shape of a view into a layer's parameter tensor."""
        if self.integer() != 1:
            raise self.fail("unknown alias_tensor version")
        return tuple(self.integer() for _ in range(4))


def _read_layer(reader: _Reader) -> Layer:
    name = reader.text()
    if name in ("con_4", "con_5", "con_6"):
        params = reader.tensor().ravel()
        count = reader.integer()
        window = tuple(reader.integer() for _ in range(6))
        filters = reader.alias()
        reader.alias()  # the bias shape: one per filter
        for _ in range(4):
            reader.real()  # learning-rate and weight-decay multipliers
        has_bias = reader.flag() if name != "con_4" else True
        if name == "con_6" and reader.flag():
            raise reader.fail("convolution with a fused relu")
        if filters[0] != count or filters[2:] != window[:2]:
            raise reader.fail("convolution shape")
        size = math.prod(filters)
        bias = params[size : size + count] if has_bias else np.zeros(count, np.float32)
        return Layer("con", window, {"filters": params[:size].reshape(filters), "bias": bias})
    if name in ("affine_", "affine_2"):
        params = reader.tensor().ravel()
        gamma = math.prod(reader.alias())
        reader.alias()  # beta has gamma's shape
        mode = reader.integer()
        if name == "affine_2" and reader.flag():
            raise reader.fail("disabled affine layer")
        if mode != _CONV_MODE:
            raise reader.fail("affine layer in fc mode")
        return Layer("affine", (), {"gamma": params[:gamma], "beta": params[gamma : 2 * gamma]})
    if name in ("relu_", "relu_2"):
        if name == "relu_2" and reader.flag():
            raise reader.fail("disabled relu layer")
        return Layer("relu")
    if name in ("max_pool_2", "avg_pool_2"):
        return Layer(name[:-2], tuple(reader.integer() for _ in range(6)))
    if name == "add_prev_":
        return Layer("add_prev")
    if name in ("fc_2", "fc_3"):
        outputs = reader.integer()
        inputs = reader.integer()
        params = reader.tensor().ravel()
        reader.alias()
        reader.alias()
        bias_mode = reader.integer()
        for _ in range(4):
            reader.real()
        use_bias = reader.flag() if name == "fc_3" else True
        has_bias = bias_mode == _FC_HAS_BIAS and use_bias
        size = inputs * outputs
        bias = params[size : size + outputs] if has_bias else np.zeros(outputs, np.float32)
        return Layer("fc", (), {"weights": params[:size].reshape(inputs, outputs), "bias": bias})
    if name == "input_rgb_image_sized":
        means = np.array([reader.real() for _ in range(3)], dtype=np.float32)
        rows, columns = reader.integer(), reader.integer()
        return Layer("input", (rows, columns), {"means": means})
    raise reader.fail(f"layer {name!r}")


def read_dlib_net(path: Path | str) -> list[Layer]:
    """The layers of a dlib network file, input first."""
    reader = _Reader(Path(path).read_bytes())
    if reader.integer() != 1:
        raise reader.fail("unknown loss layer version")
    loss = reader.text()
    if loss == "loss_metric_2":
        reader.real()  # margin
        reader.real()  # distance threshold
    elif loss != "loss_metric_":
        raise reader.fail(f"loss {loss!r}")
    # Wrapper versions, outermost first: 1 for tag and skip layers, which
    # carry nothing else; 2 (3 for the innermost) for layers with details.
    versions: list[int] = []
    while True:
        mark = reader.pos
        version = reader.integer()
        if version > 3:
            reader.pos = mark
            break
        versions.append(version)
    computing = [version for version in versions if version > 1]
    if not computing:
        raise reader.fail("no layers")
    layers = [_read_layer(reader)]
    for number in range(len(computing)):
        layers.append(_read_layer(reader))
        for _ in range(3):
            reader.flag()  # setup called, gradient stale, output disabled
        for _ in range(3):
            reader.tensor()  # gradient and output caches, empty in a saved model
        if number == 0 and computing[-1] == 3:
            reader.integer()  # sample expansion factor
    if reader.pos != len(reader.data):
        raise reader.fail("trailing bytes")
    return layers


@dataclass(frozen=True)
class Conv:
    """A convolution with the following affine layer folded in.

    ``weights`` is (channels out, rows * columns * channels in), each filter
    laid out as _convolve lays out a patch: row, then column, then channel.
    """

    weights: Float32
    bias: Float32
    size: int
    stride: int
    padding: int


@dataclass(frozen=True)
class Residual:
    """relu(second(relu(first(x))) + shortcut(x)); the shortcut is x or its average pool."""

    first: Conv
    second: Conv
    pool: int  # the shortcut's average pool window and stride; 0 for none


def _fold(con: Layer, affine: Layer) -> Conv:
    rows, columns, stride_y, stride_x, padding_y, padding_x = con.window
    if rows != columns or stride_y != stride_x or padding_y != padding_x:
        raise ValueError("Only square convolutions are supported.")
    gamma, beta = affine.arrays["gamma"], affine.arrays["beta"]
    filters = con.arrays["filters"] * gamma[:, None, None, None]
    weights = filters.transpose(0, 2, 3, 1).reshape(filters.shape[0], -1)
    bias = con.arrays["bias"] * gamma + beta
    return Conv(np.ascontiguousarray(weights), bias, rows, stride_y, padding_y)


class _Layers:
    """The file's layer list, taken in order."""

    def __init__(self, layers: list[Layer]) -> None:
        self.layers = layers
        self.pos = 0

    def peek(self) -> str:
        return self.layers[self.pos].kind if self.pos < len(self.layers) else ""

    def take(self, kind: str) -> Layer:
        if self.peek() != kind:
            raise ValueError(f"Unexpected network layout: {kind} expected at layer {self.pos}.")
        self.pos += 1
        return self.layers[self.pos - 1]

    def conv(self) -> Conv:
        return _fold(self.take("con"), self.take("affine"))


def _pool_geometry(layer: Layer) -> tuple[int, int]:
    """(window, stride) of a square pool; dlib's padded pools are not needed here."""
    rows, columns, stride_y, stride_x, padding_y, padding_x = layer.window
    if rows != columns or stride_y != stride_x or padding_y or padding_x:
        raise ValueError("Only square pools without padding are supported.")
    return rows, stride_y


class FaceNet:
    """dlib_face_recognition_resnet_model_v1 as numpy arrays; see the module docstring."""

    def __init__(
        self,
        means: Float32,
        stem: Conv,
        stem_pool: tuple[int, int],
        blocks: Sequence[Residual],
        projection: Float32,
        projection_bias: Float32,
    ) -> None:
        self.means = means
        self.stem = stem
        self.stem_pool = stem_pool
        self.blocks = tuple(blocks)
        self.projection = projection
        self.projection_bias = projection_bias

    @classmethod
    def load(cls, path: Path | str) -> FaceNet:
        """Read dlib's model file; the layout must be the face ResNet's."""
        layers = _Layers(read_dlib_net(path))
        source = layers.take("input")
        if source.window != (CHIP_SIZE, CHIP_SIZE):
            raise ValueError("The network does not take 150x150 chips.")
        stem = layers.conv()
        layers.take("relu")
        stem_pool = _pool_geometry(layers.take("max_pool"))
        blocks = []
        while layers.peek() == "con":
            first = layers.conv()
            layers.take("relu")
            second = layers.conv()
            shortcut = 0
            if layers.peek() == "avg_pool":
                shortcut, stride = _pool_geometry(layers.take("avg_pool"))
                if stride != shortcut:
                    raise ValueError("Unexpected shortcut pool.")
            layers.take("add_prev")
            layers.take("relu")
            blocks.append(Residual(first, second, shortcut))
        # avg_pool_everything: a window of 0 means the whole image.
        if layers.take("avg_pool").window[:2] != (0, 0):
            raise ValueError("Unexpected final pool.")
        fc = layers.take("fc")
        if layers.peek():
            raise ValueError("Unexpected layers after the descriptor.")
        return cls(
            source.arrays["means"],
            stem,
            stem_pool,
            blocks,
            fc.arrays["weights"],
            fc.arrays["bias"],
        )

    def descriptor(self, chip: Pixels) -> npt.NDArray[np.float64]:
        """The 128-d descriptor of one 150x150x3 uint8 RGB chip."""
        result: npt.NDArray[np.float64] = self.descriptors(chip[None])[0]
        return result

    def descriptors(self, chips: Sequence[Pixels] | Pixels) -> npt.NDArray[np.float64]:
        """Descriptors (n, 128) of n chips, given as a list or an (n, 150, 150, 3) array."""
        batch = np.asarray(chips)
        if batch.size == 0:
            return np.zeros((0, DESCRIPTOR_SIZE))
        if batch.ndim != 4 or batch.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"Expected (n, 150, 150, 3) RGB chips, got {batch.shape}.")
        if batch.dtype != np.uint8:
            raise ValueError(f"Expected uint8 chips, got {batch.dtype}.")
        # As dlib's input layer: (pixel - channel mean) / 256, in float32.
        x = (batch.astype(np.float32) - self.means) * np.float32(1 / 256)
        x = _convolve(x, self.stem, relu=True)
        x = _max_pool(x, *self.stem_pool)
        for block in self.blocks:
            branch = _convolve(_convolve(x, block.first, relu=True), block.second)
            shortcut = _average_pool(x, block.pool, block.pool) if block.pool else x
            x = _relu(_add_prev(branch, shortcut))
        pooled = x.mean(axis=(1, 2), dtype=np.float32)
        out: Float32 = pooled @ self.projection + self.projection_bias
        return out.astype(np.float64)


def _relu(x: Float32) -> Float32:
    return np.maximum(x, 0, out=x)


def _convolve(x: Float32, conv: Conv, relu: bool = False) -> Float32:
    """A convolution as im2col and matrix products, optionally followed by relu."""
    if conv.padding:
        x = _pad(x, conv.padding)
    n, height, width, channels = x.shape
    size, stride = conv.size, conv.stride
    out_h = (height - size) // stride + 1
    out_w = (width - size) // stride + 1
    depth = size * size * channels
    # Viewing each image as (rows, columns * channels) makes each row of a
    # patch one contiguous run of size * channels floats, so the copy into
    # the im2col matrix is fast. Patches are (row, column, channel) ordered.
    flat = x.reshape(n, height, width * channels)
    windows = sliding_window_view(flat, size, axis=1)
    windows = sliding_window_view(windows, size * channels, axis=2)
    windows = windows[:, ::stride, :: stride * channels]
    if n * out_h * out_w <= _FEW_PIXELS:
        # Few output pixels and large weights: this operand order makes
        # OpenBLAS stream the weights once instead of packing them.
        out: Float32 = (conv.weights @ windows.reshape(-1, depth).T).T + conv.bias
        if relu:
            np.maximum(out, 0, out=out)
        return out.reshape(n, out_h, out_w, -1)
    out = np.empty((n, out_h, out_w, conv.bias.shape[0]), np.float32)
    # In bands of output rows, so the im2col matrix and the product stay in cache.
    step = max(1, _BAND // (n * out_w))
    for top in range(0, out_h, step):
        band = windows[:, top : top + step].reshape(-1, depth) @ conv.weights.T
        band += conv.bias
        if relu:
            np.maximum(band, 0, out=band)
        out[:, top : top + step] = band.reshape(n, -1, out_w, band.shape[1])
    return out


def _pad(x: Float32, padding: int) -> Float32:
    n, height, width, channels = x.shape
    out = np.zeros((n, height + 2 * padding, width + 2 * padding, channels), np.float32)
    out[:, padding : padding + height, padding : padding + width] = x
    return out


def _windows(x: Float32, size: int, stride: int) -> list[Float32]:
    """Each window offset's strided view: pooling is a reduction over these."""
    out_h = (x.shape[1] - size) // stride + 1
    out_w = (x.shape[2] - size) // stride + 1
    rows, columns = stride * (out_h - 1) + 1, stride * (out_w - 1) + 1
    return [
        x[:, dy : dy + rows : stride, dx : dx + columns : stride]
        for dy in range(size)
        for dx in range(size)
    ]


def _max_pool(x: Float32, size: int, stride: int) -> Float32:
    views = _windows(x, size, stride)
    out = views[0].copy()
    for view in views[1:]:
        np.maximum(out, view, out=out)
    return out


def _average_pool(x: Float32, size: int, stride: int) -> Float32:
    views = _windows(x, size, stride)
    out = views[0].copy()
    for view in views[1:]:
        out += view
    out *= np.float32(1 / len(views))
    return out


def _add_prev(a: Float32, b: Float32) -> Float32:
    """a + b as dlib's add_prev: the smaller is zero-padded at the far ends; may reuse a."""
    if a.shape == b.shape:
        a += b
        return a
    shape = tuple(max(i, j) for i, j in zip(a.shape, b.shape, strict=True))
    out = np.zeros(shape, np.float32)
    out[: a.shape[0], : a.shape[1], : a.shape[2], : a.shape[3]] += a
    out[: b.shape[0], : b.shape[1], : b.shape[2], : b.shape[3]] += b
    return out
