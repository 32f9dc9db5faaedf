"""TensorSketch (Pham & Pagh, KDD 2013) for (gamma <x, y> + coef0) ** degree.

TS(x) = IFFT(FFT(C_1 x) * ... * FFT(C_p x)) is a count sketch of the p-fold tensor power of x, so
<TS(x), TS(y)> is unbiased for <x, y>^p; like scikit-learn's ``PolynomialCountSketch`` the inhomogeneous kernel is
the homogeneous one on [sqrt(gamma) x, sqrt(coef0)], and there is no 1/sqrt(D) scaling. Each count sketch is a
single ``index_add`` (O(d) per row) and the FFTs are real (rfft), so nothing loops over features.
"""

import math

import torch

from hf_eff.random_features.base import RandomFeatureMap, random_signs, scaled_input, seeded_generator
from hf_eff.random_features.kernels import PolynomialKernel


class TensorSketch(RandomFeatureMap):
    """TensorSketch map to ``n_components`` features for ``kernel``."""

    def __init__(
        self,
        n_features_in: int,
        n_components: int,
        kernel: PolynomialKernel,
        seed: int = 0,
        batch_size: int | None = None,
    ):
        super().__init__(n_features_in, n_components, seed, batch_size)
        if not isinstance(kernel, PolynomialKernel):
            raise TypeError(f"kernel must be a PolynomialKernel, got {type(kernel).__name__}")
        self.kernel = kernel
        self.sketched_features = n_features_in + (0 if kernel.homogeneous else 1)
        self._register_sampled_buffers()

    def sample_buffers(self) -> dict[str, torch.Tensor]:
        generator = seeded_generator(self.seed)
        shape = (self.kernel.degree, self.sketched_features)
        index_hash = torch.randint(0, self.n_components, shape, generator=generator, device="cpu")
        # one flat index per (factor, feature) into the (degree * n_components) concatenated sketches
        offsets = torch.arange(self.kernel.degree, device="cpu").unsqueeze(1) * self.n_components
        return {"index_hash": (index_hash + offsets).flatten(), "sign_hash": random_signs(shape, generator).flatten()}

    def workspace_width(self) -> int:
        return 2 * self.kernel.degree * self.n_components  # the count sketches plus their complex spectra

    def transform_batch(self, x: torch.Tensor) -> torch.Tensor:
        x = scaled_input(x, self.kernel.gamma)
        if not self.kernel.homogeneous:
            x = torch.cat([x, x.new_full((x.shape[0], 1), math.sqrt(self.kernel.coef0))], dim=1)
        p, width = self.kernel.degree, self.n_components
        values = x.repeat(1, p) * self.sign_hash.to(x.dtype)
        sketches = x.new_zeros(x.shape[0], p * width).index_add_(1, self.index_hash, values)
        if p == 1:
            return sketches
        spectra = torch.fft.rfft(sketches.view(-1, p, width), dim=-1)
        return torch.fft.irfft(spectra.prod(dim=1), n=width, dim=-1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kernel={self.kernel}"
