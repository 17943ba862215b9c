"""The paper's transforms of an image (PAPER.md 3, paper 2 and 4.1) and the training set's statistics they use.

- the per-pixel mean image and the RGB covariance's principal components (`ImageStats`, summed by `StatsSums`);
- the shorter side to 256 and the central square (`resize_and_centre_crop`), the centre crop and the 10 crops;
- the PCA colour shift (`pca_shift`);
- the order of an epoch and the per-example seeds of its random draws, functions of (seed, epoch, position), so
  that a resumed run sees the batches an uninterrupted one would.
"""
import dataclasses

import numpy as np
import tensorflow as tf

from replica import paper


@dataclasses.dataclass
class ImageStats:
    """Per-pixel mean image (0-255) and the RGB covariance's eigenvalues/vectors (pixels scaled to [0, 1])."""
    mean_image: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray   # columns are p_1..p_3


def stats_from_sums(pixel_sum, outer_sum, rgb_sum, num_images, num_pixels):
    mean_image = (pixel_sum / num_images).astype(np.float32)
    rgb_mean = rgb_sum / num_pixels
    covariance = outer_sum / num_pixels - np.outer(rgb_mean, rgb_mean)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    return ImageStats(mean_image, eigenvalues.astype(np.float32), eigenvectors.astype(np.float32))


class StatsSums:
    """Running sums over images of one size for ImageStats: the per-pixel sum and the RGB values' sums and outer
    products (pixels scaled to [0, 1]); added batch by batch, merged across shards, saved and loaded."""

    def __init__(self, size=paper.RESIZE_SHORTER_SIDE):
        self.pixel_sum, self.outer_sum, self.rgb_sum, self.count = np.zeros((size, size, 3)), np.zeros((3, 3)), \
            np.zeros(3), 0

    def add(self, images):
        """Add uint8 images [N, S, S, 3] (or one [S, S, 3])."""
        x = np.asarray(images, np.float64).reshape(-1, *self.pixel_sum.shape)
        self.pixel_sum += x.sum(0)
        rgb = x.reshape(-1, 3) / 255.0
        self.outer_sum += rgb.T @ rgb
        self.rgb_sum += rgb.sum(0)
        self.count += len(x)
        return self

    def merge(self, other):
        for name in ("pixel_sum", "outer_sum", "rgb_sum", "count"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def stats(self):
        pixels = self.count * self.pixel_sum.shape[0] * self.pixel_sum.shape[1]
        return stats_from_sums(self.pixel_sum, self.outer_sum, self.rgb_sum, self.count, pixels)

    def save(self, path):
        np.savez(path, pixel_sum=self.pixel_sum, outer_sum=self.outer_sum, rgb_sum=self.rgb_sum, count=self.count)

    @classmethod
    def load(cls, path):
        sums, saved = cls(), np.load(path)
        sums.pixel_sum, sums.outer_sum, sums.rgb_sum = saved["pixel_sum"], saved["outer_sum"], saved["rgb_sum"]
        sums.count = int(saved["count"])
        return sums


def save_stats(stats, path):
    """Write ImageStats to an .npz file (through replica.files.write_whole, which makes it whole or absent)."""
    np.savez(path, mean_image=stats.mean_image, eigenvalues=stats.eigenvalues, eigenvectors=stats.eigenvectors)


def load_stats(path):
    saved = np.load(path)
    return ImageStats(saved["mean_image"], saved["eigenvalues"], saved["eigenvectors"])


def image_stats(images):
    """ImageStats of an in-memory uint8 array N x H x W x 3."""
    return StatsSums(images.shape[1]).add(images).stats()


def pca_shift(eigenvalues, eigenvectors, seed):
    """[p1 p2 p3][a1 l1, a2 l2, a3 l3]^T, a_i ~ N(0, 0.1) drawn once per image, added to every pixel (paper 4.1).

    lambda_i and p_i are of the covariance of RGB values scaled to [0, 1]; the shift is returned on the 0-255 scale.
    """
    alpha = tf.random.stateless_normal([3], seed=seed, stddev=paper.PCA_ALPHA_STDDEV)
    return tf.linalg.matvec(eigenvectors, alpha * eigenvalues) * 255.0


def pca_colour(image, eigenvalues, eigenvectors, seed):
    """The image with its PCA colour shift (`pca_shift`) added to every pixel."""
    return image + pca_shift(eigenvalues, eigenvectors, seed)


def centre_crop(image, size):
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    top, left = (height - size) // 2, (width - size) // 2
    return image[top:top + size, left:left + size]


def ten_crops(image, size):
    """The 4 corner crops, the centre crop, and their mirrors: [10, size, size, 3] (paper 4.1)."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    crops = [image[:size, :size], image[:size, width - size:], image[height - size:, :size],
             image[height - size:, width - size:], centre_crop(image, size)]
    crops = tf.stack(crops)
    return tf.concat([crops, tf.reverse(crops, axis=[2])], axis=0)


def resize_and_centre_crop(image, size=paper.RESIZE_SHORTER_SIDE):
    """uint8 [H, W, 3] -> size x size uint8: shorter side to `size` (antialiased), then the central square."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = size / tf.reduce_min(shape)
    new_shape = tf.cast(tf.round(shape * scale), tf.int32)
    new_shape = tf.maximum(new_shape, size)
    image = tf.image.resize(image, new_shape, method="bilinear", antialias=True)
    image = centre_crop(image, size)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def epoch_order(num_examples, seed, epoch):
    """The permutation of one epoch: a function of (seed, epoch) only."""
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def example_seeds(seed, epoch, positions):
    """A stateless seed per example: [seed, epoch * 2^32 + position]."""
    positions = np.asarray(positions, dtype=np.int64)
    return np.stack([np.full_like(positions, seed), (np.int64(epoch) << 32) + positions], axis=1)
