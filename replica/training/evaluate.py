"""Top-1 and top-5 error the paper's way: the centre crop, or the softmax averaged over 10 crops (paper 4.1)."""
import numpy as np
import tensorflow as tf

from replica.training.recipe import TrainConfig


def batch_errors(logits_or_probs, labels):
    """(top-1 errors, top-5 errors) counted over a batch."""
    labels = tf.cast(labels, tf.int32)
    k5 = min(5, logits_or_probs.shape[-1])
    top1 = tf.reduce_sum(1.0 - tf.cast(tf.math.in_top_k(labels, logits_or_probs, 1), tf.float32))
    top5 = tf.reduce_sum(1.0 - tf.cast(tf.math.in_top_k(labels, logits_or_probs, k5), tf.float32))
    return top1, top5


def make_predict(model):
    """A compiled function: images [B, S, S, 3] or crops [B, 10, S, S, 3] -> class probabilities [B, C]."""
    @tf.function(autograph=False)
    def predict(images):
        if images.shape.rank == 5:   # the 10 crops of each image: average their softmax
            crops = images.shape[1]
            probs = tf.nn.softmax(model(tf.reshape(images, [-1, *images.shape[2:]]), training=False))
            return tf.reduce_mean(tf.reshape(probs, [-1, crops, probs.shape[-1]]), axis=1)
        return tf.nn.softmax(model(images, training=False))
    return predict


def evaluate(model, data, batch_size=TrainConfig.eval_batch_size, ten_crop=False, limit=None, predict=None,
             split="eval", label_map=None):
    """{"top1_error", "top5_error", "images"} over a split of the data set ("eval", or "val": the held-out
    validation split; its first `limit` images, 0 or None: all), fractions in [0, 1]. label_map: the net's output
    index of each of the data's labels (a 1,000-class net on a folder of some ILSVRC classes), or None."""
    predict = predict or make_predict(model)
    top1 = top5 = count = 0
    for images, labels in data.eval_batches(batch_size, ten_crop=ten_crop, limit=limit, split=split):
        if label_map is not None:
            labels = tf.gather(label_map, tf.cast(labels, tf.int32))
        e1, e5 = batch_errors(predict(images), labels)
        top1, top5, count = top1 + float(e1), top5 + float(e5), count + int(labels.shape[0])
    if not count:
        raise ValueError("the evaluation split is empty")
    return {"top1_error": top1 / count, "top5_error": top5 / count, "images": count}


def features(model, images, layer="fc7"):
    """The last hidden layer's activations (both towers concatenated, 4096-d) for Fig. 4's retrieval."""
    ends = model.endpoints(images, training=False)
    parts = [ends[model.layer_name(layer, t)] for t in model.towers]
    return np.concatenate([p.numpy() for p in parts], axis=-1)


def squared_distances(a, b):
    """The squared Euclidean distance of every row of `a` to every row of `b` (each flattened: fc7 features or
    photos), in float64, as |a|^2 - 2ab + |b|^2: Fig. 4's neighbours without a (len(a), len(b), size) array."""
    a, b = (np.asarray(x, np.float64).reshape(len(x), -1) for x in (a, b))
    return (a ** 2).sum(1)[:, None] - 2 * a @ b.T + (b ** 2).sum(1)[None, :]
