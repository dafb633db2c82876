"""The convolution explorer of the CNN chapter: a 3x3 kernel, stride and padding on one image."""
from __future__ import annotations

import numpy as np

from ..backend import asarray
from ..conv import conv2d, conv_output_size

__all__ = ["KERNELS", "convolution_figure", "convolution_explorer"]

KERNELS = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "blur": [[1 / 9] * 3] * 3,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "edge-x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],       # Sobel: responds to vertical edges
    "edge-y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],       # Sobel: responds to horizontal edges
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
}


def convolution_figure(image, kernel="edge-x", stride=1, padding=0, fig=None):
    """Convolve one grey image (H, W) with a named 3x3 kernel and draw input, kernel, output.

    The callback of :func:`convolution_explorer`.  The title states the
    output-size formula with the numbers filled in.  Returns ``(fig, out)``,
    out of shape (Ho, Wo).
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415
    if kernel not in KERNELS:
        raise ValueError(f"kernel: expected one of {tuple(KERNELS)}, got {kernel!r}")
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"image: expected a 2-D grey image, got shape {img.shape}")
    k = np.array(KERNELS[kernel], dtype=np.float64)
    H, Wd = img.shape
    Ho = conv_output_size(H, 3, stride, padding)
    Wo = conv_output_size(Wd, 3, stride, padding)
    out = conv2d(asarray(img[None, None]), asarray(k[None, None]), None, stride, padding,
                 "im2col")
    out = np.asarray(out.get() if hasattr(out, "get") else out)[0, 0]
    if fig is None:
        fig = plt.figure(figsize=(10, 3.4))
    fig.clf()
    axs = fig.subplots(1, 3, gridspec_kw={"width_ratios": [3, 1.2, 3]})
    padded = np.pad(img, padding)
    axs[0].imshow(padded, cmap="gray")
    if padding:
        axs[0].add_patch(plt.Rectangle((padding - 0.5, padding - 0.5), Wd, H, fill=False,
                                       ec="tab:orange", lw=1.5))
    axs[0].add_patch(plt.Rectangle((-0.5, -0.5), 3, 3, fill=False, ec="tab:red", lw=2))
    if stride > 1 and Wo > 1:
        axs[0].add_patch(plt.Rectangle((stride - 0.5, -0.5), 3, 3, fill=False, ec="tab:red",
                                       lw=1, ls="--"))
    axs[0].set_title(f"input {H}x{Wd}, padded to {H + 2 * padding}x{Wd + 2 * padding}")
    axs[1].imshow(k, cmap="coolwarm", vmin=-np.abs(k).max(), vmax=np.abs(k).max())
    for (r, t), v in np.ndenumerate(k):
        axs[1].text(t, r, f"{v:.2g}", ha="center", va="center", fontsize=8)
    axs[1].set_title(f"kernel '{kernel}'")
    axs[2].imshow(out, cmap="gray")
    axs[2].set_title(f"output {Ho}x{Wo} = ({H}+2*{padding}-3)//{stride}+1")
    for a in axs:
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    return fig, out


def convolution_explorer(image):
    """Widgets (kernel, stride, padding) driving :func:`convolution_figure` on ``image``."""
    import ipywidgets as w  # noqa: PLC0415
    import matplotlib.pyplot as plt  # noqa: PLC0415

    def show(kernel, stride, padding):
        fig, _ = convolution_figure(image, kernel, stride, padding)
        plt.show()

    return w.interactive(show, kernel=w.Dropdown(options=list(KERNELS), value="edge-x"),
                         stride=w.IntSlider(value=1, min=1, max=4),
                         padding=w.IntSlider(value=0, min=0, max=3))
