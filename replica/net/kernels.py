"""The conv1 kernels of each tower (Fig. 3, paper 6.1): as an image grid, and how colour-specific they are."""
import numpy as np


def tower_conv1_kernels(model):
    """[(kh, kw, 3, n) kernel of tower 0, of tower 1]; a one-tower net gives one entry."""
    return [model.paper_layer("conv1", t).kernel.numpy() for t in model.towers]


def kernel_grid(kernel, columns=8, border=1):
    """An HWIO conv1 kernel as one RGB image in [0, 1]: each kernel scaled on its own, laid out in rows."""
    kh, kw, _, n = kernel.shape
    rows = -(-n // columns)
    grid = np.ones((rows * (kh + border) + border, columns * (kw + border) + border, 3), np.float32)
    for i in range(n):
        k = kernel[..., i]
        k = (k - k.min()) / max(k.max() - k.min(), 1e-12)
        r, c = divmod(i, columns)
        top, left = border + r * (kh + border), border + c * (kw + border)
        grid[top:top + kh, left:left + kw] = k
    return grid


def colour_specificity(kernel):
    """Per kernel: the fraction of its energy outside its mean-over-channels (grey) component, in [0, 1].

    0 for a kernel that weights R, G and B alike (colour-agnostic), towards 2/3 and above for kernels whose
    channels differ (colour-specific).
    """
    grey = kernel.mean(axis=2, keepdims=True)
    energy = (kernel ** 2).sum(axis=(0, 1, 2))
    return ((kernel - grey) ** 2).sum(axis=(0, 1, 2)) / np.maximum(energy, 1e-12)


def tower_split_p_value(specificity_0, specificity_1, permutations=10000, seed=0):
    """How often a random split of the two towers' kernels into groups of the towers' sizes separates their mean
    colour specificity as much as the towers do: a permutation p-value for Fig. 3's claim that the two towers
    specialise (one colour-agnostic, one colour-specific), against kernels that fall to either tower at random."""
    both = np.concatenate([specificity_0, specificity_1])
    n0 = len(specificity_0)
    observed = abs(specificity_0.mean() - specificity_1.mean())
    rng = np.random.default_rng(seed)
    splits = np.argsort(rng.random((permutations, len(both))), axis=1)
    group_0 = both[splits[:, :n0]].mean(axis=1)
    group_1 = both[splits[:, n0:]].mean(axis=1)
    return float((1 + np.sum(np.abs(group_0 - group_1) >= observed - 1e-12)) / (1 + permutations))
