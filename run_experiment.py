"""Train, evaluate or describe the paper's networks.

  python run_experiment.py --towers=2 --gpus=0,1 --summary     # the per-layer table
  python run_experiment.py                                     # train the two towers on the shipped CIFAR-10 slice
  python run_experiment.py --towers=merged --dataset=cifar10 --data_dir=../shared/data/cifar-10-batches-py
  python run_experiment.py --eval_only --checkpoint=runs/default

Every flag defaults to the paper's constant (replica/paper.py cites PAPER.md for each).
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from replica import choices, paper  # noqa: E402
from replica.errors import UserError  # noqa: E402
from replica.train import TrainConfig  # noqa: E402

FLAGS = flags.FLAGS
RECIPE = TrainConfig()   # the recipe's defaults: the paper's constants (replica/paper.py) and ours (TrainConfig)
flags.DEFINE_string("towers", "2", "2 (the paper's two towers), 1 (the one-GPU baseline), merged (dense "
                    "single-device net) or grouped (the towers as grouped convolutions on one device).")
flags.DEFINE_string("gpus", None, "Device indices, one per tower (default 0,1 for two towers, 0 otherwise). "
                    "With fewer GPUs than named, logical devices are carved out of one GPU or the CPU.")
flags.DEFINE_integer("gpu_memory_mb", None, "Memory of each logical device when one GPU is split in two (default: "
                     "the card's memory less 1 GB or a tenth, shared evenly; 5120 when it cannot be read).")
flags.DEFINE_bool("summary", False, "Print the per-layer table of the network and exit.")
flags.DEFINE_integer("input_size", None, "227 (default for ImageNet), 224 (+3 zero pixels, PAPER.md 4), or 32 "
                     "(the small-image geometry, default for CIFAR-10).")
flags.DEFINE_integer("num_classes", None, "Classes of fc8 (default: the data set's, 1000 for --summary).")
flags.DEFINE_enum("lrn", "paper", ["paper", "cuda-convnet", "caffe", "none"], "LRN constants (PAPER.md 3); caffe "
                  "normalises across both towers' maps, as bvlc_alexnet does.")
flags.DEFINE_enum("pooling", "overlapping", ["overlapping", "non-overlapping"], "3/2 or 2/2 max pooling.")
flags.DEFINE_enum("activation", "relu", ["relu", "tanh"], "Non-linearity after every layer but fc8.")
flags.DEFINE_float("dropout", paper.DROPOUT_RATE, "Dropout rate on fc6 and fc7 outputs (PAPER.md 3).")
flags.DEFINE_enum("drop_layer", "none", ["none", "conv3", "conv4"], "Build the net without this middle conv layer "
                  "(paper 7; experiments/drop_layer.py).")
flags.DEFINE_enum("precision", "float32", ["float32", "tf32", "mixed_bfloat16", "mixed_float16"],
                  "float32 (the paper; TensorFloat-32 off), tf32, mixed_bfloat16 or mixed_float16 (float16 maps with "
                  "dynamic loss scaling): float32 weights, LRN, softmax and loss in every mode (replica/precision.py).")
flags.DEFINE_float("positive_bias", None, "Initial bias of conv2, conv4, conv5, fc6, fc7: the paper's 1 (default "
                   "for ImageNet), Caffe's 0.1 (default for CIFAR-10, where bias 1 diverges: README).")

# data (PAPER.md 3)
flags.DEFINE_enum("dataset", "cifar10", ["cifar10", "imagenet_folder"], "cifar10 (canonical python batches) or "
                  "imagenet_folder (train/<class>/*.JPEG and val/<class>/*.JPEG).")
flags.DEFINE_string("data_dir", None, "The data folder. cifar10: a cifar-10-batches-py folder; unset uses the "
                    "shipped 2,000/500-image slice; 'download' fetches the full set through Keras.")
flags.DEFINE_bool("pca_colour", False, "PCA colour augmentation (paper 4.1).")
flags.DEFINE_bool("augment", True, "Random crops and mirrors for training (off: centre crops).")
flags.DEFINE_string("cache_dir", None, "Where the mean image and PCA statistics of an image folder are cached "
                    "(default ~/.cache/alexnet-replica).")
flags.DEFINE_bool("cache_decoded", False, "Keep the decoded 256x256 training images in memory.")
flags.DEFINE_integer("validation_images", 0, "CIFAR-10: hold out the last N training images as the validation split "
                     "the learning-rate schedule watches, so the test batch is only reported (0: the schedule "
                     "watches the test batch, as before).")
flags.DEFINE_integer("train_limit", 0, "Train on N training images only (0: all): CIFAR-10's first N, N spread "
                     "evenly over an image folder's sorted files.")

# the recipe (PAPER.md 3)
flags.DEFINE_integer("batch_size", RECIPE.batch_size, "Images per step.")
flags.DEFINE_float("learning_rate", RECIPE.learning_rate, "Initial learning rate.")
flags.DEFINE_float("momentum", RECIPE.momentum, "Momentum.")
flags.DEFINE_float("weight_decay", RECIPE.weight_decay, "Weight decay, coupled through the momentum.")
flags.DEFINE_bool("decay_biases", RECIPE.decay_biases, "Apply weight decay to the biases too.")
flags.DEFINE_integer("epochs", None, "Epochs at most (default 90 for ImageNet, 10 for CIFAR-10).")
flags.DEFINE_integer("lr_patience", RECIPE.lr_patience, "Epochs without a lower validation error before the "
                     "learning rate drops.")
flags.DEFINE_integer("lr_drops", RECIPE.lr_drops, "How many times the learning rate is divided before the run ends.")
flags.DEFINE_float("lr_drop_factor", RECIPE.lr_drop_factor, "What each drop divides the learning rate by.")
flags.DEFINE_list("lr_drop_epochs", [], "A fixed schedule instead of the plateau rule: divide the learning rate by "
                  "--lr_drop_factor at the end of each of these epochs (e.g. 20,30).")
flags.DEFINE_integer("max_steps", RECIPE.max_steps, "Stop after this many steps in all (0: no limit).")

# the run
flags.DEFINE_string("run_dir", None, "Run folder: checkpoints, TensorBoard logs, results.json "
                    "(default runs/<dataset>-towers<towers>).")
flags.DEFINE_bool("resume", True, "Resume when the run folder has a checkpoint (--noresume refuses to touch one).")
flags.DEFINE_integer("seed", RECIPE.seed, "Seed of the weights, the data order, the crops and the dropout masks.")
flags.DEFINE_bool("deterministic", False, "Op determinism (TensorFlow's enable_op_determinism): two runs with one "
                  "seed give the same losses on the same hardware, drivers and TensorFlow, CPU or GPU; not across GPU "
                  "models, CUDA/cuDNN versions or device layouts. On a GPU some ops run slower, and an op with no "
                  "deterministic kernel raises an error.")
flags.DEFINE_integer("checkpoint_every", RECIPE.checkpoint_every, "Steps between checkpoints (one is also written at "
                     "each epoch's end).")
flags.DEFINE_integer("log_every", RECIPE.log_every, "Steps between progress lines and TensorBoard points.")
flags.DEFINE_integer("eval_limit", RECIPE.eval_limit, "Evaluate on at most N images at each epoch's end (0: all).")
flags.DEFINE_bool("ten_crop", True, "Also evaluate with the 10 crops at the end.")
flags.DEFINE_bool("eval_only", False, "Evaluate --checkpoint (or --weights) and exit.")
flags.DEFINE_string("checkpoint", None, "With --eval_only, --classify or --export: a run folder or a checkpoint path.")

# a trained net: ImageNet-trained weights, classification, export (replica.pretrained, replica.serving)
flags.DEFINE_string("weights", None, "bvlc_alexnet as an ONNX file (the model zoo's bvlcalexnet-*.onnx), for "
                    "--eval_only (on ILSVRC classes), --classify or --export, in --towers=2, grouped or merged.")
flags.DEFINE_list("classify", [], "Image files: print each one's top-5 classes (--weights or --checkpoint), the "
                  "centre crop, or the 10 crops with --ten_crop.")
flags.DEFINE_string("export", None, "Write the net of --weights or --checkpoint to this folder as a SavedModel whose "
                    "signature takes uint8 images of any size and returns class probabilities.")

# several machines (tf.distribute, TF_CONFIG)
flags.DEFINE_integer("workers", 1, "Data-parallel workers; above 1 the cluster is read from TF_CONFIG (or from "
                     "--worker_hosts and --task_index). Each worker runs the towers on its own --gpus.")
flags.DEFINE_string("worker_hosts", None, "host:port of every worker, comma-separated (writes TF_CONFIG).")
flags.DEFINE_integer("task_index", 0, "This worker's index in --worker_hosts (0 is the chief).")
flags.DEFINE_integer("peer_timeout", 60, "Seconds a worker waits for its peers (start-up and each all-reduce).")


def fail(message):
    """One line on stderr and exit code 2: bad input never ends in a traceback."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def parse_flags(argv):
    """absl's parsing, with an unknown flag or a bad value as a one-line error and exit code 2 (not 1)."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        fail(f"{e}; python run_experiment.py --helpfull lists the flags")


def flag_problems():
    """Every flag's range and every combination that cannot work, checked before any work starts."""
    f = FLAGS
    checks = [
        (f.towers in choices.TOWERS, f"--towers={f.towers} is not one of {', '.join(choices.TOWERS)}"),
        (f.gpus is None or f.gpus.strip() != "", "--gpus is empty: name one device index per tower, e.g. --gpus=0,1"),
        (f.gpu_memory_mb is None or f.gpu_memory_mb > 0, f"--gpu_memory_mb={f.gpu_memory_mb} must be positive"),
        (f.input_size is None or f.input_size in choices.DATASETS[f.dataset]["input_sizes"],
         f"--input_size={f.input_size} does not fit --dataset={f.dataset}: use one of "
         f"{', '.join(map(str, choices.DATASETS[f.dataset]['input_sizes']))}"),
        (f.num_classes is None or f.num_classes >= 2, f"--num_classes={f.num_classes} must be at least 2"),
        (0 <= f.dropout < 1, f"--dropout={f.dropout:g} must be in [0, 1)"),
        (f.positive_bias is None or abs(f.positive_bias) < 1e3, f"--positive_bias={f.positive_bias} is not a bias"),
        (f.train_limit >= 0, f"--train_limit={f.train_limit} must be 0 (all) or positive"),
        (f.validation_images >= 0, f"--validation_images={f.validation_images} must be 0 or positive"),
        (f.validation_images == 0 or f.dataset == "cifar10",
         "--validation_images holds out CIFAR-10 training images; an image folder's val/ is its validation split"),
        (all(e.isdigit() and int(e) > 0 for e in f.lr_drop_epochs),
         f"--lr_drop_epochs={','.join(f.lr_drop_epochs)} must list epochs, e.g. 20,30"),
        (0 <= f.momentum < 1, f"--momentum={f.momentum:g} must be in [0, 1)"),
        (f.weight_decay >= 0, f"--weight_decay={f.weight_decay:g} must be 0 or positive"),
        (f.epochs is None or f.epochs >= 1, f"--epochs={f.epochs} must be at least 1"),
        (f.lr_patience >= 1, f"--lr_patience={f.lr_patience} must be at least 1"),
        (f.lr_drops >= 0, f"--lr_drops={f.lr_drops} must be 0 or positive"),
        (f.lr_drop_factor > 1, f"--lr_drop_factor={f.lr_drop_factor:g} must be above 1"),
        (f.max_steps >= 0, f"--max_steps={f.max_steps} must be 0 (no limit) or positive"),
        (f.eval_limit >= 0, f"--eval_limit={f.eval_limit} must be 0 (all) or positive"),
        (f.workers >= 1, f"--workers={f.workers} must be at least 1"),
        (f.task_index >= 0 and (f.workers == 1 or f.task_index < f.workers),
         f"--task_index={f.task_index} must name one of the {f.workers} worker(s)"),
        (f.peer_timeout > 0, f"--peer_timeout={f.peer_timeout} must be positive"),
        (f.checkpoint is None or f.eval_only or f.classify or f.export,
         "--checkpoint goes with --eval_only, --classify or --export"),
        (not (f.weights and f.checkpoint), "--weights and --checkpoint both name a net: give one"),
        (not (f.classify or f.export) or f.weights or f.checkpoint,
         "--classify and --export need a net: --weights=FILE.onnx or --checkpoint=RUN"),
        (not f.weights or f.towers in ("2", "grouped", "merged"),
         f"--weights holds the two towers' widths: --towers=2, grouped or merged, not {f.towers}"),
        (not (f.weights and f.eval_only) or f.dataset == "imagenet_folder",
         "--weights with --eval_only evaluates on ILSVRC classes: --dataset=imagenet_folder --data_dir=..."),
    ]
    for name in ("batch_size", "learning_rate", "checkpoint_every", "log_every"):
        checks.append((f[name].value > 0, f"--{name}={f[name].value} must be positive"))
    return [message for ok, message in checks if not ok]


def validate_flags():
    problems = flag_problems()
    if problems:
        fail(problems[0] + (f" (and {len(problems) - 1} more flag problem(s))" if len(problems) > 1 else ""))


def resolve_devices():
    import replica
    gpus = FLAGS.gpus or choices.default_gpus(FLAGS.towers)
    try:
        # not verified here: a multi-worker run must create its strategy before TensorFlow's runtime starts
        return replica.tower_devices(choices.towers_value(FLAGS.towers), gpus, FLAGS.gpu_memory_mb, verify=False)
    except replica.DeviceError as e:
        fail(str(e))


def model_options():
    from replica.runs import drop_layer_value
    return dict(lrn=FLAGS.lrn, pooling=FLAGS.pooling, activation=FLAGS.activation, dropout_rate=FLAGS.dropout,
                drop_layer=drop_layer_value(FLAGS.drop_layer), precision=FLAGS.precision)


def dataset_defaults():
    """The flags whose defaults depend on the data set (replica.choices.DATASETS), resolved."""
    return {name: choices.dataset_default(FLAGS.dataset, name, FLAGS[name].value)
            for name in ("input_size", "positive_bias", "epochs")}


def print_summary(devices):
    import replica
    towers = choices.towers_value(FLAGS.towers)
    model = replica.build_model(towers, num_classes=FLAGS.num_classes or 1000, devices=devices,
                                input_size=FLAGS.input_size or 227, **model_options())
    from replica import precision
    print(f"AlexNet, --towers={FLAGS.towers}, input {model.geometry.input_size}x{model.geometry.input_size}x3, "
          f"devices {devices}, precision {precision.in_force(FLAGS.precision)}")
    print(replica.format_table(replica.layer_table(model), towers))


def load_data(input_size):
    from replica import input_pipeline
    try:
        return input_pipeline.load_data(FLAGS.dataset, FLAGS.data_dir, input_size=input_size,
                                        pca_colour_augment=FLAGS.pca_colour, augment=FLAGS.augment,
                                        cache_dir=FLAGS.cache_dir, cache_decoded=FLAGS.cache_decoded,
                                        train_limit=FLAGS.train_limit or None,
                                        validation_images=FLAGS.validation_images)
    except UserError as e:
        fail(str(e))


def run_config(defaults, data):
    from replica.runs import RUN_DEFINING
    values = {name: FLAGS[name].value for name in RUN_DEFINING}
    values.update(input_size=defaults["input_size"], positive_bias=defaults["positive_bias"],
                  num_classes=FLAGS.num_classes or data.num_classes)
    if values["num_classes"] < data.num_classes:
        fail(f"--num_classes={FLAGS.num_classes} but {data.source} has {data.num_classes} classes; drop the flag or "
             f"raise it to {data.num_classes}")
    return values


def prepare_run_dir(run_dir, config):
    """Lock the run folder, refuse one that holds another run, then (and only then) write its run_config.json."""
    from replica import runs
    runs.lock(run_dir)
    runs.check_resumable(run_dir, config, FLAGS.resume, defaults={k: FLAGS[k].default for k in config if k in FLAGS})
    runs.write_config(run_dir, config)


def join_workers():
    """The Workers of a multi-worker run (after the devices are configured), or None for one process."""
    if FLAGS.workers <= 1:
        return None
    from replica import distributed
    if FLAGS.worker_hosts:
        try:
            os.environ["TF_CONFIG"] = distributed.tf_config_for(FLAGS.worker_hosts, FLAGS.task_index)
        except ValueError as e:
            fail(str(e))
    if distributed.cluster_size() != FLAGS.workers:
        fail(f"--workers={FLAGS.workers} but TF_CONFIG names {distributed.cluster_size()} worker(s); set TF_CONFIG "
             "or --worker_hosts with one host:port per worker")
    try:
        workers = distributed.join(FLAGS.peer_timeout)
    except distributed.PeerUnreachable as e:
        fail(str(e))
    logging.info("worker %d of %d joined its peers", workers.index, workers.count)
    return workers


def train(devices):
    import tensorflow as tf
    from replica import runs
    from replica import train as train_lib
    defaults = dataset_defaults()
    workers = join_workers()
    train_lib.set_determinism(FLAGS.seed, FLAGS.deterministic)
    data = load_data(defaults["input_size"])
    config = run_config(defaults, data)
    run_dir = FLAGS.run_dir or f"runs/{FLAGS.dataset}-towers{FLAGS.towers}"
    model = runs.build_from_config(config, devices)
    from replica import memory
    try:
        memory.check_batch_fits(model, FLAGS.batch_size // (workers.count if workers else 1))
    except UserError as e:
        fail(str(e))
    if workers is None or workers.is_chief:
        prepare_run_dir(run_dir, config)
    recipe = train_lib.TrainConfig(
        batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate, momentum=FLAGS.momentum,
        weight_decay=FLAGS.weight_decay, decay_biases=FLAGS.decay_biases, epochs=defaults["epochs"],
        lr_drop_factor=FLAGS.lr_drop_factor, lr_drops=FLAGS.lr_drops, lr_patience=FLAGS.lr_patience,
        seed=FLAGS.seed, max_steps=FLAGS.max_steps,
        lr_drop_epochs=tuple(sorted(int(e) for e in FLAGS.lr_drop_epochs)),
        checkpoint_every=FLAGS.checkpoint_every, log_every=FLAGS.log_every, eval_limit=FLAGS.eval_limit,
        final_ten_crop=FLAGS.ten_crop)
    flag_values = {f.name: f.value for f in FLAGS.get_key_flags_for_module(sys.modules[__name__])}
    trainer = train_lib.Trainer(model, data, run_dir, recipe, workers=workers,
                                run_info={"flags": flag_values, "run_config": config})
    logging.info("training --towers=%s on %s (%d train / %d eval images) in %s, devices %s", FLAGS.towers,
                 data.source, data.train_size(), data.eval_size(), run_dir, devices)
    try:
        results = trainer.train()
    except UserError as e:
        fail(str(e))
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
            tf.errors.InternalError) as e:
        if workers is None:
            raise
        fail(f"worker {workers.index} lost its peers ({str(e).splitlines()[0][:160]}); restart every worker: "
             f"they resume from the last checkpoint in {run_dir}")
    final = results["final"]
    print(f"run {run_dir}: {results['steps']} steps, {results['epochs_completed']} epochs; test top-1 error "
          f"{final['centre_top1_error']:.4f} (centre)" + (f", {final['ten_crop_top1_error']:.4f} (10 crops)"
                                                        if "ten_crop_top1_error" in final else "")
          + f"; top-5 {final['centre_top5_error']:.4f}; results in {run_dir}/results.json")
    return 0


def evaluate_only(devices):
    from replica import evaluate as evaluate_lib
    from replica import runs
    if not FLAGS.checkpoint:
        fail("--eval_only needs --checkpoint=<run folder or checkpoint path>")
    try:
        _, checkpoint, config = runs.find_run(FLAGS.checkpoint)
        if FLAGS["towers"].present and choices.towers_value(config["towers"]) != choices.towers_value(
                FLAGS.towers):
            fail(f"the checkpoint holds --towers={config['towers']}, not --towers={FLAGS.towers}")
        # the data as the run saw it: the mean image comes from the same training images
        FLAGS.dataset, FLAGS.data_dir = config["dataset"], config["data_dir"]
        FLAGS.train_limit, FLAGS.validation_images = config.get("train_limit", 0), config.get("validation_images", 0)
        data = load_data(config["input_size"])
        model, _ = runs.load_trained(checkpoint, devices)
    except UserError as e:
        fail(str(e))
    for ten_crop in (False, True):
        result = evaluate_lib.evaluate(model, data, ten_crop=ten_crop)
        print(f"{'10 crops' if ten_crop else 'centre  '}: top-1 error {result['top1_error']:.4f}  top-5 error "
              f"{result['top5_error']:.4f}  ({result['images']} images, {checkpoint})")
    return 0


def use_trained(devices):
    """--classify, --export, or --eval_only with --weights: a trained net used, nothing trained."""
    from replica import serving
    try:
        if FLAGS.weights:
            classifier = serving.from_onnx(FLAGS.weights, choices.towers_value(FLAGS.towers), devices)
        else:
            classifier = serving.from_run(FLAGS.checkpoint, devices)
        print(f"net: {classifier.source}")
        for path, best in serving.classify(classifier, FLAGS.classify, FLAGS.ten_crop and FLAGS["ten_crop"].present):
            print(f"{path}:\n" + "\n".join(f"  {p:7.2%}  {name}" for name, p in best))
        if FLAGS.export:
            print(f"SavedModel written to {serving.export(classifier, FLAGS.export)}")
        if FLAGS.eval_only:
            evaluate_weights(classifier)
    except UserError as e:
        fail(str(e))
    return 0


def evaluate_weights(classifier):
    """Top-1 / top-5 error of imported weights on an image folder of ILSVRC classes, beside the published figures."""
    from replica import evaluate as evaluate_lib
    from replica import pretrained, serving
    data = load_data(classifier.input_size)
    serving.use_mean_of(classifier, data)
    label_map = serving.ilsvrc_label_map(classifier, data)
    published = pretrained.PUBLISHED_ACCURACY
    for ten_crop in (False, True):
        result = evaluate_lib.evaluate(classifier.model, data, ten_crop=ten_crop, label_map=label_map)
        print(f"{'10 crops' if ten_crop else 'centre  '}: top-1 error {result['top1_error']:.4f}  top-5 error "
              f"{result['top5_error']:.4f}  ({result['images']} images of {data.num_classes} classes, 1000-way)")
    print(f"published for bvlc_alexnet on ILSVRC-2012 val (centre): top-1 error {1 - published['top1']:.3f}, top-5 "
          f"{1 - published['top5']:.3f}; the paper's one net: 0.407 / 0.182 (10 crops, PAPER.md 5)")


def main(argv):
    if len(argv) > 1:
        fail(f"unexpected arguments {argv[1:]}; flags take the form --name=value")
    validate_flags()
    if FLAGS.checkpoint and not FLAGS["towers"].present:
        from replica import runs
        try:   # evaluate on the devices of the net the checkpoint holds
            FLAGS.towers = str(runs.find_run(FLAGS.checkpoint)[2]["towers"])
        except UserError as e:
            fail(str(e))
    devices = resolve_devices()
    from replica import precision
    try:
        precision.configure(FLAGS.precision)
    except UserError as e:
        fail(str(e))
    if FLAGS.summary:
        print_summary(devices)
        return 0
    if FLAGS.classify or FLAGS.export or FLAGS.weights:
        return use_trained(devices)
    if FLAGS.eval_only:
        return evaluate_only(devices)
    return train(devices)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
