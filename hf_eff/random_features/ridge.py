"""The single-pass multi-class learner of CRAFTMaps: ridge regression onto error-correcting output codes.

Each class c gets a codeword M[c] in {-1, +1}^L (one-vs-rest: L = K; random dense codes: L ~ 10 log2 K). One pass
over the data accumulates the normal equations G = Z^T Z and B = Z^T M[y]; both are sums over samples, so chunks,
shards and workers can be merged by adding them (map-reduce). Then W = (G + alpha I)^-1 B in one Cholesky solve, and
a sample is assigned to the class whose codeword is nearest to its prediction W^T z. Memory is O(E^2 + E L),
whatever the number of samples.
"""

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from hf_eff.random_features.base import check_positive_int, seeded_generator


CODES = ("ovr", "random")


def default_code_size(num_classes: int) -> int:
    """ceil(10 log2 K) for random codes (the lower end of the usual range), never fewer than K."""
    return max(num_classes, math.ceil(10 * math.log2(num_classes)))


def make_code_matrix(num_classes: int, code: str = "ovr", code_size: int | None = None, seed: int = 0) -> torch.Tensor:
    """A (K, L) matrix of +-1 codewords, one row per class.

    ``"ovr"``: +1 on the diagonal, -1 elsewhere (L = K). ``"random"``: i.i.d. signs, constant columns (which
    separate nothing) redrawn, best of 32 draws by the smallest Hamming distance between two codewords.
    """
    check_positive_int(num_classes, "num_classes")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if code == "ovr":
        if code_size not in (None, num_classes):
            raise ValueError(f"code_size must be None or num_classes={num_classes} for code='ovr', got {code_size}")
        return 2 * torch.eye(num_classes, dtype=torch.float64, device="cpu") - 1
    if code != "random":
        raise ValueError(f"code must be one of {CODES}, got {code!r}")
    length = default_code_size(num_classes) if code_size is None else check_positive_int(code_size, "code_size")
    generator = seeded_generator(seed)
    best, best_distance = None, -1
    for _ in range(32):
        candidate = torch.randint(0, 2, (num_classes, length), generator=generator, device="cpu").double() * 2 - 1
        constant = candidate.sum(0).abs() == num_classes
        while constant.any():  # redraw columns that separate nothing
            fresh = torch.randint(0, 2, (num_classes, int(constant.sum())), generator=generator, device="cpu")
            candidate[:, constant] = fresh.double() * 2 - 1
            constant = candidate.sum(0).abs() == num_classes
        distance = int(((length - candidate @ candidate.T) / 2).fill_diagonal_(length + 1).min())
        if distance > best_distance:
            best, best_distance = candidate, distance
    if best is None or best_distance == 0:
        raise ValueError(f"code_size={length} is too short to give {num_classes} classes distinct codewords")
    return best


class NormalEquations:
    """Running sums G = Z^T Z, B = Z^T Y (float64) of a ridge problem; add batches, merge shards, then solve.

    With ``fit_intercept`` a constant column is appended to Z (its coefficient is the bias, not penalised).
    """

    def __init__(self, n_features: int, n_targets: int, fit_intercept: bool = True):
        self.n_features = check_positive_int(n_features, "n_features")
        self.n_targets = check_positive_int(n_targets, "n_targets")
        self.fit_intercept = bool(fit_intercept)
        width = n_features + int(self.fit_intercept)
        self.gram = torch.zeros(width, width, dtype=torch.float64)
        self.cross = torch.zeros(width, n_targets, dtype=torch.float64)
        self.n_samples = 0

    def update(self, features: torch.Tensor, targets: torch.Tensor) -> "NormalEquations":
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ValueError(f"features must have shape (n, {self.n_features}), got {tuple(features.shape)}")
        if targets.shape != (features.shape[0], self.n_targets):
            raise ValueError(
                f"targets must have shape ({features.shape[0]}, {self.n_targets}), got {tuple(targets.shape)}"
            )
        z = features.detach().to(device="cpu", dtype=torch.float64)
        if self.fit_intercept:
            z = torch.cat([z, z.new_ones(z.shape[0], 1)], dim=1)
        self.gram += z.T @ z
        self.cross += z.T @ targets.detach().to(device="cpu", dtype=torch.float64)
        self.n_samples += z.shape[0]
        return self

    def merge(self, other: "NormalEquations") -> "NormalEquations":
        """Add another shard's sums (same shapes): the map-reduce step."""
        if (other.gram.shape, other.cross.shape) != (self.gram.shape, self.cross.shape):
            raise ValueError("cannot merge normal equations of different shapes")
        self.gram += other.gram
        self.cross += other.cross
        self.n_samples += other.n_samples
        return self

    def solve(self, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(weights (n_features, n_targets), bias (n_targets,)) minimising ||Z W + b - Y||^2 + alpha ||W||^2."""
        if not (math.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
        if self.n_samples == 0:
            raise ValueError("no samples were accumulated; call update() with data before solve()")
        penalty = torch.full((self.gram.shape[0],), float(alpha), dtype=torch.float64)
        if self.fit_intercept:
            penalty[-1] = 0.0
        system = self.gram + torch.diag(penalty)
        factor, info = torch.linalg.cholesky_ex(system)
        if int(info) == 0:
            solution = torch.cholesky_solve(self.cross, factor)
        else:  # singular (alpha = 0 with rank-deficient features): minimum-norm least squares
            solution = torch.linalg.lstsq(system, self.cross, driver="gelsd").solution
        if self.fit_intercept:
            return solution[:-1], solution[-1]
        return solution, torch.zeros(self.n_targets, dtype=torch.float64)

    def map_targets(self, matrix: torch.Tensor) -> "NormalEquations":
        """Replace the targets Y by Y @ ``matrix`` (n_targets, m), in place; returns self.

        Targets enter the sums linearly (B = Z^T Y), so one pass can accumulate class indicators and project them
        onto codewords afterwards (``matrix`` = the code matrix), or reorder classes named only once the pass is
        over (``matrix`` = a permutation)."""
        if matrix.ndim != 2 or matrix.shape[0] != self.n_targets:
            raise ValueError(f"matrix must have shape ({self.n_targets}, m), got {tuple(matrix.shape)}")
        self.cross = self.cross @ matrix.to(device="cpu", dtype=torch.float64)
        self.n_targets = matrix.shape[1]
        return self

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"gram": self.gram, "cross": self.cross, "n_samples": torch.tensor(self.n_samples)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state["gram"].shape != self.gram.shape or state["cross"].shape != self.cross.shape:
            raise ValueError("saved normal equations do not match this problem's shapes")
        self.gram, self.cross = state["gram"].double().clone(), state["cross"].double().clone()
        self.n_samples = int(state["n_samples"])


def iter_batches(
    data: Any,
    batch_size: int = 1024,
    features_column: str | None = None,
    label_column: str = "label",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (features (n, ...), labels (n,)) tensor pairs from any of:

    - a ``(features, labels)`` pair of arrays / tensors (cut into ``batch_size`` rows);
    - a ``datasets.Dataset`` (or anything with ``.iter(batch_size)`` and ``.column_names``), read batch by batch;
      the features column defaults to the first of "features", "pixel_values", "input_features" present;
    - an iterable of ``(features, labels)`` batches (a generator, a DataLoader, ...): streamed as is.

    Numeric labels come as tensors; label names (strings) as a list, for the caller to map to class indices.
    """
    check_positive_int(batch_size, "batch_size")
    if isinstance(data, tuple) and len(data) == 2:
        features = data[0] if isinstance(data[0], torch.Tensor) else torch.as_tensor(np.asarray(data[0]))
        labels = _as_labels(data[1])
        if features.shape[0] != len(labels):
            raise ValueError(f"features and labels have different lengths: {features.shape[0]} != {len(labels)}")
        for start in range(0, features.shape[0], batch_size):
            yield features[start : start + batch_size], labels[start : start + batch_size]
        return
    if hasattr(data, "iter") and hasattr(data, "column_names"):
        column = features_column or next(
            (c for c in ("features", "pixel_values", "input_features") if c in data.column_names), None
        )
        if column is None or column not in data.column_names or label_column not in data.column_names:
            raise ValueError(
                f"the dataset needs a features column ({features_column or 'features/pixel_values'}) and a "
                f"{label_column!r} column; it has {data.column_names}"
            )
        for batch in data.with_format("torch", columns=[column, label_column]).iter(batch_size=batch_size):
            yield batch[column], _as_labels(batch[label_column])
        return
    if isinstance(data, Iterable):
        for item in data:
            if isinstance(item, dict):
                item = (item[features_column or "features"], item[label_column])
            features, labels = item
            yield torch.as_tensor(features), _as_labels(labels)
        return
    raise TypeError(
        f"data must be a (features, labels) pair, a datasets.Dataset or an iterable of batches; got {type(data).__name__}"
    )


def _as_labels(labels: Any) -> torch.Tensor | list:
    """A batch of labels as a tensor, or as a list when they are names (strings), which no tensor can hold."""
    if isinstance(labels, torch.Tensor):
        return labels
    array = np.asarray(labels)
    return array.tolist() if array.dtype.kind in "USO" else torch.as_tensor(array)


class OnePassClassifier:
    """ECOC ridge classifier over precomputed features: ``partial_fit`` any number of batches, then ``solve``.

    Labels are integers 0..K-1. ``decision_function`` returns, per class, -||W^T z + b - M[c]||^2 / 2: its argmax is
    the nearest codeword, and a softmax over it reads as a Gaussian likelihood of the code prediction.
    """

    def __init__(
        self,
        n_features: int,
        num_classes: int,
        code: str = "ovr",
        code_size: int | None = None,
        alpha: float = 1e-3,
        fit_intercept: bool = True,
        seed: int = 0,
    ):
        self.code_matrix = make_code_matrix(num_classes, code, code_size, seed)
        self.num_classes = num_classes
        self.alpha = alpha
        self.equations = NormalEquations(n_features, self.code_matrix.shape[1], fit_intercept)
        self.weights: torch.Tensor | None = None
        self.bias: torch.Tensor | None = None

    def partial_fit(self, features: torch.Tensor, labels: torch.Tensor) -> "OnePassClassifier":
        labels = torch.as_tensor(labels).reshape(-1)
        if labels.dtype.is_floating_point and not torch.equal(labels, labels.round()):
            raise ValueError("labels must be integer class indices")
        labels = labels.long()
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(
                f"labels must be in [0, {self.num_classes - 1}], got values in [{labels.min()}, {labels.max()}]"
            )
        self.equations.update(features, self.code_matrix[labels])
        return self

    def solve(self) -> "OnePassClassifier":
        self.weights, self.bias = self.equations.solve(self.alpha)
        return self

    def code_predictions(self, features: torch.Tensor) -> torch.Tensor:
        if self.weights is None:
            raise ValueError("the classifier is not solved yet; call solve() after partial_fit()")
        return features.to(self.weights.dtype) @ self.weights + self.bias

    def decision_function(self, features: torch.Tensor) -> torch.Tensor:
        return code_logits(self.code_predictions(features), self.code_matrix)

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        return self.decision_function(features).argmax(dim=1)


def code_logits(code_predictions: torch.Tensor, code_matrix: torch.Tensor) -> torch.Tensor:
    """-||y_hat - M[c]||^2 / 2 for every class c: (n, L) predictions and (K, L) codewords -> (n, K)."""
    code_matrix = code_matrix.to(code_predictions.dtype)
    return -0.5 * torch.cdist(code_predictions, code_matrix).square()
