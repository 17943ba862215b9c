"""Photos: image files read and decoded, and the data sets of photos stored at 256x256 (image folders and TFRecord
shards), whose training stream stays uint8 until the device (`Photos`, `finish_windows`)."""
import tensorflow as tf

from replica import paper
from replica.inputs.data_set import DataError, ImageData
from replica.inputs.transforms import pca_shift, resize_and_centre_crop

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".gif")


def is_image_file(path):
    """An image by its extension; hidden files (a name starting with a dot, such as macOS' ._x.JPEG) are not."""
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()


def read_image(path):
    """An image file as uint8 RGB [H, W, 3] (any format TensorFlow decodes, grey to RGB); a DataError naming the
    file when it is missing or not an image."""
    try:
        return tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
    except tf.errors.OpError as e:   # missing, a folder, unreadable, not an image
        raise DataError(f"{path}: not a readable image ({e.message.splitlines()[0][:120]})") from None


def decode_and_resize(path, size=paper.RESIZE_SHORTER_SIDE):
    """File -> size x size uint8: decode (any format, grey to RGB), shorter side to `size`, centre crop (paper 2)."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return resize_and_centre_crop(image, size)


class Photos(ImageData):
    """Photos stored at 256x256 (image folders and TFRecord shards), whose training stream stays uint8 until the
    device.

    The host decodes each photo and draws its crop, mirror and PCA colour shift; `network_input`, run inside the
    training step on the device, finishes the batch in one compiled pass: the crop_size window, mirrored or not,
    to float, minus the mean image's same window, plus the shift. The numbers are those of finishing each image
    on the host (tests/test_input_pipeline.py), without the host's per-image copies and float passes, which would
    otherwise cost it about as much as the decoding (docs/performance.md).
    """

    def _train_transform(self, image, seed):
        """{pixels: the stored uint8 photo, top, left (its window), mirrored, colour (the PCA shift)}."""
        size, stored = self.crop_size, paper.RESIZE_SHORTER_SIDE
        if self.augment:
            top, left = tf.unstack(tf.random.stateless_uniform([2], seed, maxval=stored - size + 1, dtype=tf.int32))
            mirrored = tf.random.stateless_uniform([], seed=seed + 1) < 0.5   # the draw of stateless_random_flip
        else:
            top = left = tf.constant((stored - size) // 2)
            mirrored = tf.constant(False)
        colour = pca_shift(self.stats.eigenvalues, self.stats.eigenvectors, seed + 2) \
            if self.augment and self.pca_colour_augment else tf.zeros([3])
        return {"pixels": image, "top": top, "left": left, "mirrored": mirrored, "colour": colour}

    def network_input(self, images):
        """The batch `train_batches` yields -> float32 [B, S, S, 3]: each photo's window, mirrored or not, minus
        the mean image's same window, plus its colour shift (on the device, inside the step)."""
        return finish_windows(images["pixels"], images["top"], images["left"], images["mirrored"],
                              images["colour"], tf.constant(self.stats.mean_image), self.crop_size)


@tf.function(jit_compile=True, reduce_retracing=True, autograph=False)
def finish_windows(pixels, top, left, mirrored, colour, mean_image, size):
    """float32(pixels[top:top+S, left:left+S]) - mean_image[top:top+S, left:left+S], mirrored where asked, plus
    colour, per image: one compiled pass over the batch (XLA fuses the gathers, the cast and the arithmetic)."""
    offsets = tf.range(size)
    rows = top[:, None] + offsets
    cols = left[:, None] + tf.where(mirrored[:, None], size - 1 - offsets, offsets)

    def window(images):   # [B, 256, 256, 3] or [256, 256, 3] -> [B, S, S, 3]
        if images.shape.rank == 3:
            return tf.gather(tf.gather(images, rows), cols, axis=2, batch_dims=1)
        return tf.gather(tf.gather(images, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)
    return tf.cast(window(pixels), tf.float32) - window(mean_image) + colour[:, None, None, :]
