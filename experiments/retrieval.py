"""Experiment 11 (Fig. 4, paper 6.1): the training images nearest to a test image by Euclidean distance of the
last 4096-d hidden layer (fc7 of both towers), and how often they share the test image's class.

  python experiments/retrieval.py --checkpoint=runs/cifar10-full-towers2       (a trained run; ~2 min)
  python experiments/retrieval.py --quick                                     (shipped slice, 8 steps)

Arithmetic: fc7 features cost one forward pass, 0.49 GFLOP per 32x32 image; 10,000 training images + 500
queries = 5.2 TFLOP, under a minute at ~100 GFLOP/s.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from experiments import report  # noqa: E402  (defines --out_dir)

flags.DEFINE_string("checkpoint", None, "A trained run folder (run_experiment.py); required without --quick.")
flags.DEFINE_bool("quick", False, "Train the towers for 8 steps on the shipped slice and use that (under 1 min).")
flags.DEFINE_integer("train_images", 10000, "Training images searched.")
flags.DEFINE_integer("queries", 500, "Test images whose neighbours are scored.")
flags.DEFINE_integer("shown", 6, "Test images shown in the figure.")
flags.DEFINE_integer("neighbours", 5, "Neighbours per test image.")
FLAGS = flags.FLAGS

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def quick_model(devices, run_dir):
    import replica
    from replica.inputs import input_pipeline
    from replica.training import train
    from replica.training.recipe import TrainConfig
    data = input_pipeline.load_data("cifar10", eval_limit=100)
    model = replica.build_model(2, num_classes=10, input_size=32, devices=devices, positive_bias=0.1)
    train.Trainer(model, data, run_dir, TrainConfig(batch_size=32, epochs=1, max_steps=8, log_every=4,
                                                          eval_limit=64, final_ten_crop=False)).train()
    return model, {"dataset": "cifar10", "data_dir": None}


def features_of(model, data, split, count, batch=250):
    import numpy as np
    from replica.training import evaluate
    images, labels = data.splits[split]
    count = min(count, len(labels))
    feats = [evaluate.features(model, data._prepare_batch(images[i:i + batch])) for i in range(0, count, batch)]
    return np.concatenate(feats), labels[:count], images[:count]


def main(argv):
    del argv
    import numpy as np
    import replica
    from replica.inputs import input_pipeline
    from replica.training import evaluate, runs
    devices = replica.split_cpu(2)
    if FLAGS.quick:
        model, config = quick_model(devices, report.scratch_dir())
        train_count, queries = 2000, 100
    else:
        if not FLAGS.checkpoint:
            raise SystemExit("error: pass --checkpoint=<trained run folder> (or --quick)")
        model, config = runs.load_trained(FLAGS.checkpoint, devices)
        train_count, queries = FLAGS.train_images, FLAGS.queries
    data = input_pipeline.load_data(config["dataset"], config["data_dir"], eval_limit=queries)
    train_f, train_y, train_x = features_of(model, data, "train", train_count)
    test_f, test_y, test_x = features_of(model, data, "eval", queries)
    d = evaluate.squared_distances(test_f, train_f)
    nearest = np.argsort(d, axis=1)[:, :FLAGS.neighbours]
    same = (train_y[nearest] == test_y[:, None]).mean()
    chance = float(np.mean([(train_y == y).mean() for y in test_y]))
    pixel_d = evaluate.squared_distances(test_x, train_x) if queries <= 100 else None
    rows = [{"measure": f"neighbours sharing the query's class (of {FLAGS.neighbours})", "fc7 (ours)": same,
             "chance": chance, "paper": "semantically similar (Fig. 4, by eye)"}]
    if pixel_d is not None:
        pixel_same = (train_y[np.argsort(pixel_d, 1)[:, :FLAGS.neighbours]] == test_y[:, None]).mean()
        rows.append({"measure": "same, by raw-pixel distance", "fc7 (ours)": pixel_same, "chance": chance})
    source = "an 8-step run on the shipped slice (--quick)" if FLAGS.quick else FLAGS.checkpoint
    report.write_table("retrieval", "Fig. 4: nearest training images by fc7 (4096-d) distance", rows,
                       ["measure", "fc7 (ours)", "chance", "paper"],
                       notes=[f"model: {source}; {len(train_y)} training images searched, {len(test_y)} test queries",
                              "the paper shows the neighbours by eye; we also count how many share the query's label"],
                       out_dir=FLAGS.out_dir)
    shown = min(FLAGS.shown, len(test_y))
    images, titles = [], []
    for q in range(shown):
        images.append(test_x[q] / 255.0)
        titles.append(f"test: {CIFAR10_CLASSES[test_y[q]]}")
        for n in nearest[q]:
            images.append(train_x[n] / 255.0)
            titles.append(CIFAR10_CLASSES[train_y[n]])
    report.image_figure("retrieval", images, titles, "Fig. 4 replica: a test image (left) and its nearest "
                        "training images by fc7 distance", rows=shown, out_dir=FLAGS.out_dir)


if __name__ == "__main__":
    app.run(main)
