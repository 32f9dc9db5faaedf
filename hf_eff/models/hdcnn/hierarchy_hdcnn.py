"""Learn HD-CNN's coarse categories from the building block's confusion on held-out images.

The official notebook (``cifar100_NIN_raw.ipynb``), step by step:

1. ``F``: the building block's mean softmax on held-out images of each class (row = true class).
   ``D = 1 - F`` with a zero diagonal, symmetrised: classes the block confuses are close.
2. Laplacian eigenmap: a k-nearest-neighbour graph on D (k = 5 for CIFAR-100's 100 classes) with heat-kernel
   weights ``exp(-D/t)`` (t = 0.9); solve ``L v = lambda Dg v``.
3. Clustering: affinity propagation on eigenvectors 2 .. dim+1 (dim = 4) picks K itself (official, K = 9 on
   CIFAR-100). With ``num_coarse`` given: spectral clustering, k-means on the row-normalised first K
   eigenvectors (Shi-Malik / Ng-Jordan-Weiss), as the paper's text and the peer PyTorch code describe [U: which
   one the paper means; both are offered]. The first K eigenvectors, not 2 .. dim+1, keep it right when the k-NN
   graph falls apart into one piece per group (the zero eigenvalue is then repeated, and "drop the first
   eigenvector" drops a group indicator while keeping within-group noise).
4. Overlap: class j joins coarse category k if the block puts on average at least ``u_t = 1/(gamma K)`` of its
   probability for images of j on S_k (gamma = 5), the highest first, up to ``max_size`` classes per category.
5. Target proportions t_k: the share of (overlap-counted) images in category k, ``sum_{j in S_k} n_j`` normalised;
   for balanced classes this is ``|S_k| / sum_k' |S_k'|`` (the official CIFAR-100 values).

The official k = 5 neighbours were chosen for 100 classes; with few classes it links every class to most of the
others, so the default ``knn=None`` takes ``clip(C // 10, 2, 5)`` (5 for CIFAR-100, 2 for 10 classes) [D].
Everything is deterministic under ``seed`` (clusters are numbered by their smallest class).
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class CategoryHierarchy:
    """The learned hierarchy. ``coarse_members`` (overlapping S_k) and ``coarse_targets`` (t_k) are what the model
    needs: ``HDCNNConfig(..., **hierarchy.config_kwargs())``."""

    coarse_members: list[list[int]]
    disjoint_members: list[list[int]]
    coarse_targets: list[float]
    confusion: np.ndarray
    embedding: np.ndarray
    class_names: list[str] | None = None

    @property
    def num_coarse(self) -> int:
        return len(self.coarse_members)

    @property
    def coarse_names(self) -> list[str] | None:
        """One name per coarse category, from its disjoint core (None without class names)."""
        if self.class_names is None:
            return None
        return [" + ".join(self.class_names[j] for j in core) for core in self.disjoint_members]

    def member_names(self, expanded: bool = True) -> list[list[str]] | None:
        """The class names of every coarse category (None without class names)."""
        if self.class_names is None:
            return None
        groups = self.coarse_members if expanded else self.disjoint_members
        return [[self.class_names[j] for j in group] for group in groups]

    def disjoint_labels(self) -> np.ndarray:
        """Coarse category of each class in the disjoint partition (for comparison with a known grouping)."""
        labels = np.empty(sum(len(g) for g in self.disjoint_members), dtype=np.int64)
        for k, group in enumerate(self.disjoint_members):
            labels[group] = k
        return labels

    def config_kwargs(self) -> dict:
        kwargs = {"coarse_members": self.coarse_members, "coarse_targets": self.coarse_targets}
        if self.class_names is not None:
            kwargs["coarse_names"] = self.coarse_names
        return kwargs


def confusion_from_probs(probs: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Row-normalised confusion ``F[j, l]``: mean predicted probability of class l over images of class j."""
    counts = np.bincount(labels, minlength=num_classes)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise ValueError(f"classes {missing.tolist()} have no held-out sample; every class needs at least one")
    sums = np.zeros((num_classes, num_classes))
    np.add.at(sums, labels, probs)
    return sums / counts[:, None]


def laplacian_eigenmap(distance: np.ndarray, knn: int, heat: float) -> np.ndarray:
    """Generalised eigenvectors of ``(Dg - W) v = lambda Dg v`` on the k-NN heat-kernel graph of a symmetric distance
    matrix, by increasing eigenvalue (one column per eigenvector)."""
    from scipy.linalg import eigh

    n = distance.shape[0]
    order = np.argsort(distance + np.diag(np.full(n, np.inf)), axis=1, kind="stable")[:, :knn]
    adjacency = np.zeros((n, n), dtype=bool)
    adjacency[np.repeat(np.arange(n), knn), order.ravel()] = True
    adjacency |= adjacency.T
    weights = np.where(adjacency, np.exp(-distance / heat), 0.0)
    degree = np.diag(weights.sum(axis=1))
    _, vectors = eigh(degree - weights, degree)
    return vectors


def _cluster(eigenvectors: np.ndarray, num_coarse: int | None, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(assignment of each class, the embedding clustered)."""
    if num_coarse is None:
        from sklearn.cluster import AffinityPropagation

        embedding = eigenvectors[:, 1 : dim + 1]
        model = AffinityPropagation(damping=0.75, max_iter=15000, convergence_iter=50, random_state=seed)
        return model.fit_predict(embedding), embedding
    embedding = eigenvectors[:, :num_coarse]
    embedding = embedding / np.linalg.norm(embedding, axis=1, keepdims=True).clip(min=1e-12)
    if num_coarse == 1:
        return np.zeros(len(embedding), dtype=np.int64), embedding
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=num_coarse, n_init=20, random_state=seed).fit_predict(embedding), embedding


def build_category_hierarchy(
    probs: np.ndarray,
    labels: np.ndarray,
    *,
    num_coarse: int | None = None,
    knn: int | None = None,
    heat: float = 0.9,
    embedding_dim: int = 4,
    gamma: float | None = 5.0,
    max_size: int | None = 80,
    class_names: list[str] | None = None,
    class_counts: np.ndarray | None = None,
    seed: int = 0,
) -> CategoryHierarchy:
    """Coarse categories from the building block's softmax on held-out images (see the module docstring).

    Args:
        probs: ``(n, C)`` softmax probabilities of the building block on held-out images (not its training data).
        labels: ``(n,)`` their true classes.
        num_coarse: K for spectral clustering (k-means on the eigenmap); ``None``: affinity propagation picks K
            (the official choice).
        knn: neighbours in the class graph (official 5 for 100 classes; ``None``: ``clip(C // 10, 2, 5)``).
        heat: heat-kernel temperature (official 0.9).
        embedding_dim: eigenvectors used by affinity propagation (official 4).
        gamma: overlap threshold ``1/(gamma K)``; ``None`` keeps the categories disjoint.
        max_size: most classes per expanded coarse category (official 80); the disjoint core always stays.
        class_names: names of the C classes, to name the coarse categories.
        class_counts: training images per class, for the targets t_k (default: the held-out counts).
        seed: for the clustering.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"probs must be (num_samples, num_classes >= 2), got shape {probs.shape}")
    if labels.shape != (probs.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {probs.shape[0]} integer classes, got shape {labels.shape} ({labels.dtype})")
    num_classes = probs.shape[1]
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must be in [0, {num_classes}), got [{labels.min()}, {labels.max()}]")
    if probs.min() < 0 or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("probs must be probabilities (non-negative rows summing to 1): apply softmax to logits")
    if num_coarse is not None and not 1 <= num_coarse <= num_classes:
        raise ValueError(f"num_coarse must be in [1, {num_classes}] or None, got {num_coarse}")
    if knn is None:
        knn = int(np.clip(num_classes // 10, 2, 5))
    if knn < 1 or heat <= 0 or embedding_dim < 1:
        raise ValueError(f"knn, heat and embedding_dim must be positive, got {knn}, {heat}, {embedding_dim}")
    if gamma is not None and gamma <= 0:
        raise ValueError(f"gamma must be positive or None, got {gamma}")
    if max_size is not None and max_size < 1:
        raise ValueError(f"max_size must be >= 1 or None, got {max_size}")
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"class_names has {len(class_names)} names for {num_classes} classes")
    counts = np.bincount(labels, minlength=num_classes) if class_counts is None else np.asarray(class_counts)
    if counts.shape != (num_classes,) or counts.min() < 0:
        raise ValueError(f"class_counts must be {num_classes} non-negative counts, got {counts}")

    confusion = confusion_from_probs(probs, labels, num_classes)
    distance = 1.0 - confusion
    np.fill_diagonal(distance, 0.0)
    distance = (distance + distance.T) / 2
    eigenvectors = laplacian_eigenmap(distance, min(knn, num_classes - 1), heat)
    assignment, embedding = _cluster(eigenvectors, num_coarse, min(embedding_dim, num_classes - 1), seed)
    cores = sorted(
        (np.flatnonzero(assignment == c).tolist() for c in np.unique(assignment)), key=lambda group: group[0]
    )
    members = [list(core) for core in cores]
    if gamma is not None and len(cores) > 1:
        threshold = 1.0 / (gamma * len(cores))
        for group, core in zip(members, cores):
            share = confusion[:, core].sum(axis=1)  # u_k(j)
            candidates = [j for j in np.argsort(-share, kind="stable") if j not in core and share[j] >= threshold]
            room = len(candidates) if max_size is None else max(max_size - len(core), 0)
            group.extend(int(j) for j in candidates[:room])
            group.sort()
    weights = np.array([counts[group].sum() for group in members], dtype=np.float64)
    targets = (weights / weights.sum()).tolist()
    return CategoryHierarchy(
        coarse_members=members,
        disjoint_members=cores,
        coarse_targets=targets,
        confusion=confusion,
        embedding=embedding,
        class_names=None if class_names is None else [str(n) for n in class_names],
    )


__all__ = ["CategoryHierarchy", "build_category_hierarchy", "confusion_from_probs", "laplacian_eigenmap"]
