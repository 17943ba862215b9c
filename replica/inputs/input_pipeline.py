"""Data the paper's way (PAPER.md 3, paper 2 and 4.1), in tf.data pipelines that overlap with training.

Three sources share one set of transforms (`transforms`) and one form of data set (`data_set.ImageData`):
- CIFAR-10 from the canonical `cifar-10-batches-py` pickles (the shipped slice by default), held in memory
  (`cifar10`);
- ImageNet as a class-folder tree, `train/<wnid>/*.JPEG` with `val/<wnid>/*.JPEG` or ILSVRC-2012's flat `val/`,
  decoded in parallel, shorter side to 256, centre 256x256 crop, optionally cached decoded (`image_folder`);
- ImageNet as TFRecord shards, official, TFDS or prepared once by `prepare` (`image_shards`, `records`).

All subtract the training set's per-pixel mean image and train on random crops and their mirrors (plus PCA
colour noise when asked); evaluation takes the centre crop or the 10 crops (4 corners + centre, and mirrors).
Photos travel to the device as uint8 and the training step's first pass finishes them (`photos`). The order of an
epoch and every random draw are functions of (seed, epoch, position), so a resumed run sees the batches an
uninterrupted one would. `load_data` picks the source a run names.
"""
import pathlib

from replica import paper
from replica.inputs import records, tars
from replica.inputs.cifar10 import Cifar10
from replica.inputs.data_set import DataError
from replica.inputs.image_folder import ImageFolder
from replica.inputs.image_shards import ImageShards


def load_data(dataset, data_dir=None, input_size=None, pca_colour_augment=False, augment=True, cache_dir=None,
              cache_decoded=False, train_limit=None, eval_limit=None, validation_images=0):
    """The data set a run names: "cifar10" (data_dir None: the shipped slice; "download": Keras) or
    "imagenet_folder" (data_dir: train/ and val/ class folders; its val/ is the validation split, as the
    paper's ILSVRC-2012 numbers are)."""
    if dataset == "cifar10":
        return Cifar10(data_dir, train_limit=train_limit, eval_limit=eval_limit, crop_size=input_size or 32,
                       pca_colour_augment=pca_colour_augment, augment=augment, validation_images=validation_images)
    if validation_images:
        raise DataError("--validation_images holds out CIFAR-10 training images; an image folder's val/ is its "
                        "validation split")
    if dataset == "imagenet_folder":
        if not data_dir:
            raise DataError("--dataset=imagenet_folder needs --data_dir pointing at a folder with train/ and val/")
        if tars.found(data_dir) and not (pathlib.Path(data_dir) / "train").is_dir():
            raise DataError(f"{data_dir} holds ILSVRC-2012's downloaded tars: prepare them once with python -m "
                            f"replica.inputs.prepare --data_dir={data_dir} --out_dir=DIR, then train on "
                            "--data_dir=DIR")
        shards = records.detect(data_dir)
        if shards:   # TFRecord shards: the official, TFDS or prepared layout
            return ImageShards(data_dir, *shards, input_size=input_size or paper.INPUT_SIZE, cache_dir=cache_dir,
                               train_limit=train_limit, pca_colour_augment=pca_colour_augment, augment=augment)
        return ImageFolder(data_dir, input_size=input_size or paper.INPUT_SIZE, cache_dir=cache_dir,
                           cache_decoded=cache_decoded, train_limit=train_limit,
                           pca_colour_augment=pca_colour_augment, augment=augment)
    raise DataError(f"unknown data set {dataset!r}; use cifar10 or imagenet_folder")
