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

FLAGS = flags.FLAGS
flags.DEFINE_string("towers", "2", "2 (the paper's two towers), 1 (the one-GPU baseline), merged (dense "
                    "single-device net) or grouped (the towers as grouped convolutions on one device).")
flags.DEFINE_string("gpus", None, "Device indices, one per tower (default 0,1 for two towers, 0 otherwise). "
                    "With fewer GPUs than named, logical devices are carved out of one GPU or the CPU.")
flags.DEFINE_integer("gpu_memory_mb", None, "Memory of each logical device when one GPU is split in two.")
flags.DEFINE_bool("summary", False, "Print the per-layer table of the network and exit.")
flags.DEFINE_integer("input_size", None, "227 (default for ImageNet), 224 (+3 zero pixels, PAPER.md 4), or 32 "
                     "(the small-image geometry, default for CIFAR-10).")
flags.DEFINE_integer("num_classes", None, "Classes of fc8 (default: the data set's, 1000 for --summary).")
flags.DEFINE_enum("lrn", "paper", ["paper", "cuda-convnet", "none"], "LRN constants (PAPER.md 3).")
flags.DEFINE_enum("pooling", "overlapping", ["overlapping", "non-overlapping"], "3/2 or 2/2 max pooling.")
flags.DEFINE_enum("activation", "relu", ["relu", "tanh"], "Non-linearity after every layer but fc8.")
flags.DEFINE_float("dropout", 0.5, "Dropout rate on fc6 and fc7 outputs (PAPER.md 3).")


def towers_value(text):
    return int(text) if text in ("1", "2") else text


def fail(message):
    """One line on stderr and exit code 2: bad input never ends in a traceback."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def validate_flags():
    if FLAGS.towers not in ("1", "2", "merged", "grouped"):
        fail(f"--towers={FLAGS.towers} is not one of 2, 1, merged, grouped")


def resolve_devices():
    import replica
    gpus = FLAGS.gpus or ("0,1" if FLAGS.towers == "2" else "0")
    try:
        return replica.tower_devices(towers_value(FLAGS.towers), gpus, FLAGS.gpu_memory_mb)
    except replica.DeviceError as e:
        fail(str(e))


def model_options():
    return dict(lrn=FLAGS.lrn, pooling=FLAGS.pooling, activation=FLAGS.activation, dropout_rate=FLAGS.dropout)


def print_summary(devices):
    import replica
    towers = towers_value(FLAGS.towers)
    model = replica.build_model(towers, num_classes=FLAGS.num_classes or 1000, devices=devices,
                                input_size=FLAGS.input_size or 227, **model_options())
    print(f"AlexNet, --towers={FLAGS.towers}, input {model.geometry.input_size}x{model.geometry.input_size}x3, "
          f"devices {devices}")
    print(replica.format_table(replica.layer_table(model), towers))


def main(argv):
    if len(argv) > 1:
        fail(f"unexpected arguments {argv[1:]}; flags take the form --name=value")
    validate_flags()
    devices = resolve_devices()
    if FLAGS.summary:
        print_summary(devices)
        return 0
    fail("training arrives with issue 3; use --summary")


if __name__ == "__main__":
    app.run(main)
