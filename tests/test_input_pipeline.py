"""The data the paper's way, on real images: the shipped CIFAR-10 slice, ../shared/data when present."""
import shutil

import numpy as np
import pytest
import tensorflow as tf

from replica.inputs import cifar10, data_set, image_folder, photos, transforms
from replica.inputs import input_pipeline as ip
from tests.conftest import SHARED_DATA

CIFAR_FULL = SHARED_DATA / "cifar-10-batches-py"
TINY = SHARED_DATA / "tiny-imagenet-10"
FULLSIZE = SHARED_DATA / "imagenet-sample-10-fullsize"


@pytest.fixture(scope="module")
def cifar():
    return ip.load_data("cifar10")


def test_shipped_slice_is_real_cifar10():
    x_train, y_train, x_test, y_test = cifar10.load_cifar10()
    assert x_train.shape == (2000, 32, 32, 3) and x_test.shape == (500, 32, 32, 3)
    assert list(y_train[:10]) == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3] and list(y_test[:10]) == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    if CIFAR_FULL.is_dir():
        full = cifar10.read_cifar_batch(CIFAR_FULL / "data_batch_1")
        np.testing.assert_array_equal(full[0][:2000], x_train)


@pytest.mark.skipif(not CIFAR_FULL.is_dir(), reason="../shared/data is not beside the repo")
def test_full_cifar10_means_are_the_published_ones():
    x_train, _, x_test, _ = cifar10.load_cifar10(CIFAR_FULL)
    assert len(x_train) == 50_000 and len(x_test) == 10_000
    np.testing.assert_allclose(x_train.reshape(-1, 3).mean(0), [125.306918046875, 122.950394140625,
                                                                113.86538318359375], rtol=1e-9)


def test_missing_or_corrupt_data_is_a_clear_error(tmp_path):
    with pytest.raises(data_set.DataError, match="does not exist"):
        cifar10.load_cifar10(tmp_path / "nowhere")
    with pytest.raises(data_set.DataError, match="no data_batch"):
        cifar10.load_cifar10(tmp_path)
    (tmp_path / "data_batch_1").write_bytes(b"not a pickle")
    (tmp_path / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(data_set.DataError, match="not a readable CIFAR-10 batch"):
        cifar10.load_cifar10(tmp_path)
    (tmp_path / "train").mkdir()
    with pytest.raises(data_set.DataError, match="holds no images"):
        image_folder.list_class_folders(tmp_path / "train")


def test_mean_image_and_pca_statistics(cifar):
    x = cifar10.load_cifar10()[0]
    np.testing.assert_allclose(cifar.stats.mean_image, x.mean(0), rtol=1e-5)
    rgb = x.reshape(-1, 3) / 255.0
    covariance = np.cov(rgb, rowvar=False, bias=True)
    p, lam = cifar.stats.eigenvectors, cifar.stats.eigenvalues
    np.testing.assert_allclose(p @ np.diag(lam) @ p.T, covariance, rtol=1e-4, atol=1e-7)


def test_ten_crops_are_the_corners_the_centre_and_their_mirrors():
    image = tf.reshape(tf.range(8 * 8 * 3, dtype=tf.float32), [8, 8, 3])
    crops = transforms.ten_crops(image, 6).numpy()
    np.testing.assert_array_equal(crops[0], image[:6, :6])
    np.testing.assert_array_equal(crops[3], image[2:, 2:])
    np.testing.assert_array_equal(crops[4], image[1:7, 1:7])
    np.testing.assert_array_equal(crops[5], crops[0][:, ::-1])


def test_pca_colour_adds_the_papers_shift():
    eigenvectors = np.eye(3, dtype=np.float32)
    eigenvalues = np.array([0.1, 0.2, 0.3], np.float32)
    seed = tf.constant([1, 2], tf.int64)
    shifted = transforms.pca_colour(tf.zeros([2, 2, 3]), eigenvalues, eigenvectors, seed).numpy()
    alpha = tf.random.stateless_normal([3], seed=seed, stddev=0.1).numpy()
    np.testing.assert_allclose(shifted[0, 0], alpha * eigenvalues * 255.0, rtol=1e-6)
    np.testing.assert_allclose(shifted[1, 1], shifted[0, 0])   # the same shift on every pixel of an image


def test_epochs_are_reproducible_and_resume_mid_epoch(cifar):
    def batches(epoch, start=0):
        return [(x.numpy(), y.numpy()) for x, y in cifar.train_batches(100, seed=3, epoch=epoch, start_step=start)]
    first, again, resumed = batches(0), batches(0), batches(0, start=12)
    assert len(first) == 20
    for (xa, ya), (xb, yb) in zip(first, again):
        np.testing.assert_array_equal(xa, xb)
    for (xa, ya), (xb, yb) in zip(first[12:], resumed):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(first[0][1], batches(1)[0][1])   # another epoch, another order
    labels = np.concatenate([y for _, y in first])
    assert len(np.unique(labels)) == 10 and len(labels) == 2000


def test_training_crops_move_and_mirror(cifar):
    x, y = next(iter(cifar.train_batches(64, seed=0, epoch=0)))
    plain = cifar10.Cifar10(augment=False)          # the same images in the same order, centre crops only
    centre, y_plain = next(iter(plain.train_batches(64, seed=0, epoch=0)))
    np.testing.assert_array_equal(y, y_plain)
    assert x.shape == (64, 32, 32, 3) and centre.shape == (64, 32, 32, 3)
    assert abs(float(tf.reduce_mean(centre))) < 10   # the mean image was subtracted
    moved = [not np.allclose(a, b) for a, b in zip(x.numpy(), centre.numpy())]
    assert sum(moved) > 48   # most crops moved or were mirrored (a centred, unmirrored draw is 1 in 162)


@pytest.mark.skipif(not FULLSIZE.is_dir(), reason="../shared/data is not beside the repo")
def test_full_size_photos_become_256_squares():
    for path in sorted(FULLSIZE.rglob("*.JPEG")):
        image = photos.decode_and_resize(str(path))
        assert image.shape == (256, 256, 3) and image.dtype == tf.uint8


@pytest.mark.skipif(not TINY.is_dir(), reason="../shared/data is not beside the repo")
def test_image_folder_skips_corrupt_images_and_counts_them(tmp_path):
    root = tmp_path / "tiny"
    for split in ("train", "val"):
        for wnid in ("n01641577", "n02124075"):
            target = root / split / wnid
            target.mkdir(parents=True)
            for f in sorted((TINY / split / wnid).iterdir())[:12]:
                shutil.copy(f, target)
    (root / "train" / "n01641577" / "broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    data = image_folder.ImageFolder(root, input_size=227, cache_dir=tmp_path / "cache", cache_decoded=True,
                          pca_colour_augment=True)
    assert data.num_classes == 2 and data.train_size() == 24   # the broken file is left out of the split
    assert [p.rsplit("/", 1)[1] for p, _ in data.skipped_files["train"]] == ["broken.JPEG"]
    assert len(list((tmp_path / "cache").rglob("stats.npz"))) == 1
    x, y = next(iter(data.train_batches(8, seed=0, epoch=0)))
    assert x["pixels"].shape == (8, 256, 256, 3) and x["pixels"].dtype == tf.uint8   # uint8 until the device
    assert data.network_input(x).shape == (8, 227, 227, 3)
    crops, _ = next(iter(data.eval_batches(4, ten_crop=True)))
    assert crops.shape == (4, 10, 227, 227, 3)
    cached = image_folder.ImageFolder(root, input_size=224, cache_dir=tmp_path / "cache")   # statistics from the cache
    np.testing.assert_array_equal(cached.stats.mean_image, data.stats.mean_image)


@pytest.mark.skipif(not FULLSIZE.is_dir(), reason="../shared/data is not beside the repo")
def test_a_photo_finished_on_the_device_is_a_window_of_the_mean_subtracted_image(tmp_path):
    """The host sends uint8 photos; the step's network_input must turn each into a 227 window of the prepared
    (mean-subtracted) 256 image, mirrored or not, at an offset that moves with the seed, plus its PCA shift."""
    root = tmp_path / "photos"
    for split in ("train", "val"):
        for path in sorted(FULLSIZE.rglob("*.JPEG"))[:2]:
            (root / split / path.stem).mkdir(parents=True)
            shutil.copy(path, root / split / path.stem)
    plain = image_folder.ImageFolder(root, input_size=227, cache_dir=tmp_path / "cache")
    coloured = image_folder.ImageFolder(root, input_size=227, cache_dir=tmp_path / "cache", pca_colour_augment=True)
    image = photos.decode_and_resize(str(sorted(root.rglob("*.JPEG"))[0]))
    prepared = plain._prepare(image).numpy()
    seeds = [tf.constant([seed, 7], tf.int64) for seed in range(8)]

    def finished(data):
        windows = [data._train_transform(image, s) for s in seeds]
        return data.network_input({k: tf.stack([w[k] for w in windows]) for k in windows[0]}).numpy()
    found = set()
    for crop in finished(plain):
        hits = [(t, l, m) for t in range(30) for l in range(30) for m in (False, True)
                if np.array_equal((prepared[t:t + 227, l:l + 227])[:, ::-1 if m else 1], crop)]
        assert len(hits) == 1, "not a window of the prepared image"
        found.add(hits[0])
    assert len({(t, l) for t, l, _ in found}) > 1 and {m for _, _, m in found} == {False, True}
    for seed, with_colour, without in zip(seeds, finished(coloured), finished(plain)):   # a shift per image
        np.testing.assert_allclose(with_colour - without, np.broadcast_to(transforms.pca_shift(
            coloured.stats.eigenvalues, coloured.stats.eigenvectors, seed + 2), without.shape), atol=1e-3)
