"""Using a net once it is trained: classify image files, evaluate imported weights, export a SavedModel.

A `Classifier` is a net with what its inputs need: the mean it was trained with (a trained run's per-pixel mean
image, or bvlc_alexnet's per-channel mean), the names of its classes and, for ImageNet nets, their wnids. The
preprocessing is the paper's test-time one (PAPER.md 3): shorter side to 256, the central 256x256, minus the mean,
then the centre input_size crop or the 10 crops (paper 4.1); a CIFAR-10 net takes the whole image at 32x32.
"""
import dataclasses
import os
import pathlib
import shutil

import numpy as np
import tensorflow as tf

from replica.training import evaluate as evaluate_lib
from replica.inputs import cifar10, ilsvrc, input_pipeline, photos, transforms
from replica import files, paper
from replica.trained import pretrained
from replica.training import runs
from replica.errors import UserError


@dataclasses.dataclass
class Classifier:
    model: object            # an AlexNet
    mean: np.ndarray         # subtracted from the 256x256 (or 32x32) image: [H, W, 3] per pixel, or [3] per channel
    class_names: list        # one per fc8 output
    wnids: list = None       # the ILSVRC wnid of each output, when the net classifies ImageNet classes
    source: str = ""

    @property
    def input_size(self):
        return self.model.geometry.input_size

    @property
    def stored_size(self):
        """The side of the image the mean is subtracted from: 256 (ImageNet, PAPER.md 3) or 32 (CIFAR-10)."""
        return paper.RESIZE_SHORTER_SIDE if self.input_size > 100 else self.input_size


def from_onnx(path, towers=2, devices=None):
    """bvlc_alexnet from an ONNX file (replica.trained.pretrained), its 1,000 classes named, at 227."""
    imported = pretrained.read(path)
    wnids = list(ilsvrc.class_table())
    if imported.num_classes != len(wnids):
        raise UserError(f"{path} has {imported.num_classes} classes; bvlc_alexnet has ILSVRC-2012's {len(wnids)}")
    model = pretrained.build_model(imported, towers, devices=devices)
    return Classifier(model, np.array(pretrained.MEAN_BGR[::-1], np.float32), ilsvrc.class_names(wnids), wnids,
                      pretrained.describe(imported))


def from_run(path, devices=None):
    """A trained run (folder or checkpoint path): its weights, its data set's mean image and class names."""
    model, config = runs.load_trained(path, devices)
    data = input_pipeline.load_data(config["dataset"], config["data_dir"], input_size=config["input_size"],
                                    train_limit=config.get("train_limit") or None,
                                    validation_images=config.get("validation_images", 0))
    wnids = getattr(data, "classes", None)
    names = getattr(data, "class_names", None) or cifar10.cifar10_class_names(config["data_dir"])
    return Classifier(model, data.stats.mean_image, names, wnids, f"the run {path}")


def prepare(classifier, image, ten_crop=False):
    """One uint8 RGB image of any size -> the net's input: [S, S, 3], or [10, S, S, 3] with `ten_crop`."""
    size = classifier.stored_size
    if size == classifier.input_size:   # CIFAR-10: the whole image at 32x32
        image = tf.image.resize(image, [size, size], antialias=True)
    else:
        image = transforms.resize_and_centre_crop(image, size)
    image = tf.cast(image, tf.float32) - tf.constant(classifier.mean, tf.float32)
    if ten_crop:
        return transforms.ten_crops(image, classifier.input_size)
    return transforms.centre_crop(image, classifier.input_size)


def classify(classifier, paths, ten_crop=False, top=5):
    """[(path, [(class name, probability)] * top)] for image files, the softmax averaged over 10 crops if asked."""
    predict = evaluate_lib.make_predict(classifier.model)
    results = []
    for path in paths:
        probs = predict(prepare(classifier, photos.read_image(path), ten_crop)[None])[0].numpy()
        best = np.argsort(-probs)[:top]
        results.append((str(path), [(classifier.class_names[k], float(probs[k])) for k in best]))
    return results


def ilsvrc_label_map(classifier, data):
    """For a 1,000-class net evaluated on an image folder of ILSVRC classes: each of the folder's labels as the
    net's output index (so the errors are the 1,000-way ones); None when the labels already agree."""
    if classifier.wnids is None or getattr(data, "classes", None) == classifier.wnids:
        return None
    missing = [w for w in getattr(data, "classes", ["(CIFAR-10 classes)"]) if w not in classifier.wnids]
    if missing:
        raise UserError(f"{data.source}: class {missing[0]} is not one of the net's ILSVRC-2012 classes; evaluate "
                        "it on ILSVRC classes (wnid-named folders)")
    index = {w: k for k, w in enumerate(classifier.wnids)}
    return tf.constant([index[w] for w in data.classes], tf.int32)


def use_mean_of(classifier, data):
    """Have the data pipeline subtract the classifier's mean (imported weights bring their own) instead of the
    mean of the data's training images."""
    shape = data.stats.mean_image.shape
    mean = np.broadcast_to(classifier.mean, shape).astype(np.float32) if classifier.mean.ndim == 1 else classifier.mean
    data.stats = dataclasses.replace(data.stats, mean_image=mean)


# --- export -----------------------------------------------------------------------------------------------------
class Exported(tf.Module):
    """What the SavedModel holds: the net, its mean and class names, and the serving function."""

    def __init__(self, classifier):
        super().__init__()
        self.model = classifier.model
        self.classifier = classifier
        self.class_names = tf.Variable(classifier.class_names, trainable=False, dtype=tf.string)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    def serve(self, images):
        """uint8 RGB images [N, H, W, 3] of any size -> class probabilities and the top 5 classes with names."""
        crops = tf.map_fn(lambda image: prepare(self.classifier, image), images,
                          fn_output_signature=tf.TensorSpec([self.classifier.input_size] * 2 + [3], tf.float32))
        probabilities = tf.nn.softmax(self.model(crops, training=False))
        top = tf.math.top_k(probabilities, k=min(5, probabilities.shape[-1]))
        return {"probabilities": probabilities, "top5_classes": top.indices,
                "top5_names": tf.gather(self.class_names, top.indices), "top5_probabilities": top.values}


def export(classifier, out_dir):
    """Write a SavedModel to `out_dir` whose "serving_default" signature is `Exported.serve`. A two-device net keeps
    its towers' devices in the saved graph (loading it needs those devices, or soft placement); export the
    single-device form (`towers="grouped"`) for a portable file."""
    out = pathlib.Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"--export={out} is not empty; name a new folder")
    module = Exported(classifier)
    two_devices = classifier.model.devices is not None and len(set(classifier.model.devices)) > 1
    policy = (tf.saved_model.experimental.VariablePolicy.SAVE_VARIABLE_DEVICES if two_devices else
              tf.saved_model.experimental.VariablePolicy.NONE)
    partial = out.with_name(f"{out.name}.{os.getpid()}.tmp")   # renamed to `out` when whole
    try:
        tf.saved_model.save(module, str(partial), signatures={"serving_default": module.serve},
                            options=tf.saved_model.SaveOptions(experimental_variable_policy=policy))
        os.replace(partial, out)
    except (OSError, tf.errors.OpError) as e:   # a folder that cannot be written, a full disk
        shutil.rmtree(partial, ignore_errors=True)
        raise UserError(f"could not write the SavedModel to {out} ({files.failure_reason(e)}); free space or name a "
                        "folder you can write to") from None
    return out
