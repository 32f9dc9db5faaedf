"""``CraftMapsSampler``: CRAFTMaps as a scikit-learn transformer, a drop-in for ``PolynomialCountSketch``.

Parameter names and meanings follow ``sklearn.kernel_approximation.PolynomialCountSketch`` (gamma, degree, coef0,
n_components, random_state); ``n_components_up``, ``up``, ``down``, ``h01`` and ``batch_size`` are CRAFTMaps' own.
Like every random-feature sampler, ``fit`` only reads the number of features: the map is data-independent.
"""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from hf_eff.random_features.craftmaps import DOWN_PROJECTIONS, UP_PROJECTIONS, CraftMap
from hf_eff.random_features.kernels import PolynomialKernel


class CraftMapsSampler(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Approximate the polynomial kernel (gamma <x, y> + coef0) ** degree with a compact random feature map.

    By default each Maclaurin term of the kernel gets its own block of outputs, sized by closed-form variances: the
    constant exactly, the exact monomials where they fit (error 0 once ``n_components`` reaches the explicit
    dimension), the exact monomials compressed by a balanced count sketch where they fit in the up-projection,
    else complex-to-real TensorSRHT features up-projected to ``n_components_up`` and compressed (CRAFTMaps, Hamid et
    al., ICML 2014, with the variance analysis of Wacker, Kanagawa & Filippone, JMLR 2024). Every block is unbiased,
    so the inner products of the features estimate the kernel without bias.
    As for ``PolynomialCountSketch``, scale features to [0, 1] and l2-normalise rows first
    (``make_pipeline(MinMaxScaler(), Normalizer(), CraftMapsSampler(...))``): the error grows with ||x||^(2 degree).

    Parameters
    ----------
    gamma : float, default=1.0
        Kernel scale, > 0.
    degree : int, default=2
        Kernel degree, >= 1.
    coef0 : float, default=0.0
        Kernel constant, >= 0 (0 gives the homogeneous kernel).
    n_components : int, default=100
        Output dimension E.
    n_components_up : int or None, default=None
        Up-projection width D > E; None means 4 * n_components (per block: D_n / E_n = D / E). The speed knob:
        the TensorSRHT blocks cost about D matrix-product columns per row, so ``2 * n_components`` transforms up to
        about twice as fast for a somewhat higher error (``hf-eff bench craftmaps`` measures both).
    up : {"auto", "ctr", "ts", "rm"}, default="auto"
        "auto": per degree, exact monomials or TensorSRHT, as above; "ctr": always the TensorSRHT up-projection
        for degrees >= 2; "ts" / "rm": the original CRAFTMaps with one TensorSketch / Random Maclaurin
        up-projection of the whole kernel.
    down : {"auto", "countsketch", "srht", "gaussian"}, default="auto"
        Down-projection: "auto" is the balanced count sketch for "auto"/"ctr" and the SRHT for "ts"/"rm".
    h01 : bool, default=True
        coef0 > 0 only. "auto"/"ctr": split the kernel into its Maclaurin terms (False: one homogeneous term in
        [x, sqrt(coef0)]); "rm": emit the degree-0/1 terms exactly instead of sampling them.
    random_state : int, RandomState instance or None, default=None
        Seeds the random map; pass an int for reproducible features.
    batch_size : int or None, default=None
        Rows transformed at once (bounds memory); None picks it from the intermediate width.

    Attributes
    ----------
    feature_map_ : CraftMap
        The fitted torch module (its buffers hold all the randomness).
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when X had string feature names.
    """

    _parameter_constraints: dict = {
        "gamma": [Interval(Real, 0, None, closed="neither")],
        "degree": [Interval(Integral, 1, None, closed="left")],
        "coef0": [Interval(Real, 0, None, closed="left")],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "n_components_up": [Interval(Integral, 2, None, closed="left"), None],
        "up": [StrOptions(set(UP_PROJECTIONS))],
        "down": [StrOptions(set(DOWN_PROJECTIONS))],
        "h01": ["boolean"],
        "random_state": ["random_state"],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        *,
        gamma=1.0,
        degree=2,
        coef0=0.0,
        n_components=100,
        n_components_up=None,
        up="auto",
        down="auto",
        h01=True,
        random_state=None,
        batch_size=None,
    ):
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.n_components = n_components
        self.n_components_up = n_components_up
        self.up = up
        self.down = down
        self.h01 = h01
        self.random_state = random_state
        self.batch_size = batch_size

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Draw the random map for X's number of features (the values of X are not used)."""
        X = validate_data(self, X, accept_sparse="csr")
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        kernel = PolynomialKernel(int(self.degree), float(self.gamma), float(self.coef0))
        self.feature_map_ = CraftMap(
            X.shape[1],
            int(self.n_components),
            kernel,
            n_components_up=None if self.n_components_up is None else int(self.n_components_up),
            up=self.up,
            down=self.down,
            h01=bool(self.h01),
            seed=seed,
            batch_size=self.batch_size,
        )
        self._n_features_out = int(self.n_components)
        return self

    def transform(self, X):
        """Map X (n_samples, n_features) to (n_samples, n_components); float32 input stays float32."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", reset=False, dtype=[np.float64, np.float32])
        feature_map = self.feature_map_
        rows = feature_map.rows_per_batch()
        out = np.empty((X.shape[0], self.n_components), dtype=X.dtype)
        with torch.no_grad():
            for start in range(0, X.shape[0], rows):
                block = X[start : start + rows]
                block = block.toarray() if sp.issparse(block) else np.ascontiguousarray(block)
                if not block.flags.writeable:  # torch refuses read-only memory (e.g. memory-mapped input)
                    block = block.copy()
                out[start : start + rows] = feature_map.transform_batch(torch.from_numpy(block)).numpy()
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
