"""TensorSketch (Pham & Pagh, KDD 2013) for (gamma <x, y> + coef0) ** degree.

TS(x) = IFFT(FFT(C_1 x) * ... * FFT(C_p x)) is a count sketch of the p-fold tensor power of x, so
<TS(x), TS(y)> is unbiased for <x, y>^p; like scikit-learn's ``PolynomialCountSketch`` the inhomogeneous kernel is
the homogeneous one on [sqrt(gamma) x, sqrt(coef0)], and there is no 1/sqrt(D) scaling.

Two exact ways to get the spectra FFT(C_j x), chosen by cost: for wide inputs, a count sketch by ``index_add``
(O(d) per row) and a real FFT (O(D log D)); for narrow inputs, the count sketch's DFT written as one dense
(d, degree * (D/2 + 1)) complex matrix, so all spectra come from a single matrix product, which on CPU beats the
FFT route several times over while d is small against D log D. Nothing loops over features either way.
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

    def uses_dense_dft(self) -> bool:
        """Matrix-product route when d stays below ~16 log2(D) (measured crossover on CPU, d=64..256, D=2^11)."""
        return self.sketched_features <= 16 * max(1, math.log2(self.n_components))

    def _dense_dft(self, dtype: torch.dtype) -> torch.Tensor:
        """(d, degree * (D/2 + 1) * 2) real matrix: x @ it, viewed as complex, is rfft(C_j x) for every j."""

        def build():
            p, width, bins = self.kernel.degree, self.n_components, self.n_components // 2 + 1
            buckets = (self.index_hash.view(p, -1) % width).cpu().to(torch.float64)  # (p, d)
            frequencies = torch.arange(bins, dtype=torch.float64)
            # exact angles: reduce bucket * frequency modulo D before scaling by 2 pi / D
            angles = -2 * math.pi * torch.remainder(buckets.unsqueeze(-1) * frequencies, width) / width  # (p, d, bins)
            signs = self.sign_hash.view(p, -1, 1).cpu().to(torch.float64)
            dft = torch.stack([signs * torch.cos(angles), signs * torch.sin(angles)], dim=-1)  # (p, d, bins, 2)
            return dft.permute(1, 0, 2, 3).reshape(self.sketched_features, p * bins * 2)

        return self.derived("dense_dft", build, dtype)  # rebuilt after in-place writes to the hashes or .to()

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
        if p > 1 and self.uses_dense_dft():
            spectra = torch.view_as_complex((x @ self._dense_dft(x.dtype)).view(x.shape[0], p, -1, 2))
        else:
            values = x.repeat(1, p) * self.sign_hash.to(x.dtype)
            sketches = x.new_zeros(x.shape[0], p * width).index_add_(1, self.index_hash, values)
            if p == 1:
                return sketches
            spectra = torch.fft.rfft(sketches.view(-1, p, width), dim=-1)
        product = spectra[:, 0]
        for j in range(1, p):  # explicit products: torch's complex prod() first fills a tensor of ones
            product = product * spectra[:, j]
        return torch.fft.irfft(product, n=width, dim=-1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kernel={self.kernel}"
