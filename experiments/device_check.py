"""A bring-up check for a machine: what a user needs to trust a new box, in one report to paste into a bug report.

  python experiments/device_check.py           # on whatever devices the machine has (under 10 min on one modern GPU)
  python experiments/device_check.py --quick   # small sizes: the whole check in under 2 minutes on a 2-core CPU

Writes experiments/results/device_check_<host>.md and .json (or into --out_dir):
1. the devices found (name, memory, compute capability), TensorFlow's build (CUDA, cuDNN), and the layout that
   `--gpus=0,1` gets here (two GPUs, one GPU split in two, or the CPU split in two);
2. placement as the runtime chose it: every gradient op of tower i's conv and fc layers on tower i's device;
3. equivalence on these devices: the towers on two devices, on one device, as grouped convolutions (Caffe's form)
   and collapsed into the merged net give the same logits within float32's tolerance; with TensorFloat-32 on, the
   difference is reported beside it;
4. the training step repeated on one batch of the shipped CIFAR-10 slice (64 images, 16 with --quick), whose loss
   must fall;
5. the benchmark (experiments/benchmark.py's measurement): the towers on two devices and on one device, the one-GPU
   net and the merged net, at batch 128 and 256, in each precision the device supports,
   with images/s, the fraction of the device's matmul rate in that precision, peak device memory, and the
   two-device / one-device ratio (with --quick: the towers' two layouts only, at batch 32).
It exits with code 1 when a check fails (placement, equivalence, the falling loss), after writing the report.
"""
import os
import platform
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402
from replica import errors  # noqa: E402

from experiments import report  # noqa: E402  (defines --out_dir)

from experiments import benchmark  # noqa: E402  (its flags: --steps, --warmup, --repeats, --jit)

FLAGS = flags.FLAGS
flags.DEFINE_bool("quick", False, "Small sizes (32x32 geometry, benchmark batch 32 on the towers' two layouts only, a "
                  "1024^3 reference matmul, training check batch 16): under 2 minutes on a 2-core CPU.")

TOLERANCE = 1e-4   # relative, on the logits: float32 sums in another order (the tests' tolerance)


def device_facts():
    """The physical devices, their details, TensorFlow's build, and the layout --gpus=0,1 gets."""
    import tensorflow as tf
    from replica.net import devices
    facts = {"tensorflow": tf.__version__, "build": {k: v for k, v in tf.sysconfig.get_build_info().items()
                                                     if k in ("cuda_version", "cudnn_version", "is_cuda_build")}}
    gpus = tf.config.list_physical_devices("GPU")
    facts["gpus"] = [{"name": g.name, **tf.config.experimental.get_device_details(g),
                      "memory_mb": devices.card_memory_mb(k)} for k, g in enumerate(gpus)]
    facts["cpu"] = platform.processor() or platform.machine()
    plan = devices.plan_devices(2, [0, 1], len(gpus))
    facts["layout_for_gpus_0_1"] = plan.describe()
    return facts


def supported_precisions(facts):
    """The precisions the devices have units for (replica.net.precision.modes_with_units; tf32 on GPUs of 8.0+ is
    checked in the equivalence section)."""
    from replica.net import precision
    return precision.modes_with_units([g.get("compute_capability", (0, 0)) for g in facts["gpus"]])


def check_placement(two, input_size):
    """{"checked": gradient ops of tower layers found, "misplaced": [...]} for one compiled training step."""
    import tensorflow as tf
    from replica.perf import profiling
    import replica
    from replica.net.collapse import lively_weights
    model = lively_weights(replica.build_model(2, num_classes=10, input_size=input_size, devices=two))

    @tf.function
    def step(x):
        loss = tf.reduce_sum(model(x, training=True, dropout_seed=tf.constant([1, 2], tf.int64)) ** 2)
        return tf.gradients(loss, model.trainable_variables)

    placed = profiling.node_devices(step, tf.zeros([2, input_size, input_size, 3]))
    short = [d.split("/device:")[1] for d in two]
    checked, misplaced = 0, []
    for name, device in placed.items():
        match = re.search(r"/(conv[1-5]|fc[67])_([01])(_\d+)?/", name)
        transfer = re.search(r"/_\d+$", name)   # the Send/Recv nodes the runtime adds at an exchange
        if name.startswith("gradients/") and match and not transfer:
            checked += 1
            if not device.endswith(short[int(match.group(2))]):
                misplaced.append(f"{name} on {device}")
    return {"checked": checked, "misplaced": misplaced[:10], "ok": checked > 0 and not misplaced}


def check_equivalence(two, input_size):
    """The largest relative difference of each layout's logits from the towers on two devices."""
    import numpy as np
    import tensorflow as tf
    import replica
    from replica.net.collapse import lively_weights
    from replica.inputs import cifar10
    towers = lively_weights(replica.build_model(2, num_classes=10, input_size=input_size, devices=two))
    one = replica.build_model(2, num_classes=10, input_size=input_size, devices=[two[0], two[0]])
    replica.copy_weights(towers, one)
    layouts = {"towers on one device": one, "grouped convolutions": replica.to_grouped(towers),
               "merged (collapsed)": replica.collapse_to_merged(towers)}
    images = cifar10.load_cifar10()[2][:8].astype(np.float32) - 120.0
    if input_size != 32:
        images = tf.image.resize(images, [input_size, input_size]).numpy()
    reference = towers(images, training=False).numpy()
    scale = np.abs(reference).max()
    out = {}
    for tf32 in (False, True):
        tf.config.experimental.enable_tensor_float_32_execution(tf32)
        for name, model in layouts.items():
            difference = float(np.abs(model(images, training=False).numpy() - reference).max() / scale)
            out[f"{name}{' (TensorFloat-32 on)' if tf32 else ''}"] = difference
    tf.config.experimental.enable_tensor_float_32_execution(False)
    out["ok"] = all(v <= TOLERANCE for k, v in out.items() if "TensorFloat" not in k)
    return out


def check_training(two, batch, steps=40):
    """The paper's training step (replica.training.train) on these devices, repeated on one batch of shipped CIFAR-10
    images: the mean loss of the last 5 steps must be 0.05 below that of the first 5 (chance is 2.30; on a working
    machine it falls by more than twice that margin at batch 64, and at batch 16, whose images the net learns by
    heart, by about 1). One batch, so that the check measures learning, not sampling noise."""
    import numpy as np
    import tensorflow as tf
    import replica
    from replica.inputs import input_pipeline
    from replica.training.optimizer import PaperSGD
    from replica.training.step import make_train_step
    tf.keras.utils.set_random_seed(0)
    model = replica.build_model(2, num_classes=10, input_size=32, devices=two, positive_bias=0.1)
    images, labels = next(iter(input_pipeline.load_data("cifar10").train_batches(batch, seed=0, epoch=0)))
    step = make_train_step(model, PaperSGD(model.trainable_variables))
    losses = [float(step(images, labels, tf.constant(k, tf.int64), tf.constant(0.01))[0]) for k in range(steps)]
    first, last = float(np.mean(losses[:5])), float(np.mean(losses[-5:]))
    return {"steps": steps, "batch": batch, "first": first, "last": last, "ok": last < first - 0.05}


def benchmark_rows(two, precisions, batches, input_size):
    """Images/s and the fraction of the matmul rate of each net, layout, batch and precision."""
    import replica
    from replica.net import precision as precision_lib
    rows = []
    layouts = [("towers, two devices", 2, two), ("towers, one device", 2, [two[0], two[0]]),
               ("one-GPU net", 1, [two[0]]), ("merged", "merged", [two[0]])]
    for mode in precisions:
        precision_lib.configure(mode)
        compute = precision_lib.compute_dtype(mode).name
        reference = benchmark.matmul_reference(two, n=1024 if FLAGS.quick else FLAGS.matmul_size, dtype=compute)
        measured = layouts[:2] if FLAGS.quick else layouts   # --quick: the towers on two devices and on one
        for batch in batches:
            by_layout = {}
            for name, towers, devices in measured:
                model = replica.build_model(towers, num_classes=1000, input_size=input_size, precision=mode,
                                            devices=devices if towers == 2 else None)
                flop = 3 * 2 * sum(r.macs for r in replica.layer_table(model))
                benchmark.reset_peak_device_memory(devices)   # each row's own peak, not the process's
                figures = benchmark.train_figures(model, benchmark.synthetic_batches(batch, input_size, 1000), batch,
                                                  flop, reference)
                by_layout[name] = figures["images_per_second"]
                rows.append({"precision": mode, "batch": batch, "net": name,
                             "images/s": figures["images_per_second"],
                             "fraction of matmul": figures["roofline_fraction"],
                             "matmul GFLOP/s": figures["matmul_gflops"],
                             **benchmark.peak_device_memory_mb(devices)})
            rows.append({"precision": mode, "batch": batch, "net": "two devices / one device",
                         "images/s": by_layout["towers, two devices"] / by_layout["towers, one device"]})
    precision_lib.configure("float32")
    return rows


def refuse_benchmark_flags():
    """The benchmark's flags this check sets itself (devices, sizes, repeats): one given is a UserError, not a
    setting silently ignored."""
    given = [f"--{f.name}" for f in FLAGS.get_flags_for_module(benchmark) if f.present and f.name != "matmul_size"]
    if given:
        raise errors.UserError(f"{', '.join(given)}: the check chooses its own devices, sizes and repeats (--quick "
                               "for small ones); run experiments/benchmark.py for a benchmark of your choice")


def main(argv):
    del argv
    refuse_benchmark_flags()
    from replica.net import devices
    two = devices.tower_devices(2, "0,1")          # carves logical devices when there are fewer than two GPUs
    FLAGS.steps, FLAGS.warmup, FLAGS.repeats = (2, 1, 1) if FLAGS.quick else (5, 2, 3)
    input_size = 32 if FLAGS.quick else 227
    facts = device_facts()
    facts["tower_devices"] = two
    precisions = supported_precisions(facts)
    placement = check_placement(two, input_size)
    equivalence = check_equivalence(two, input_size)
    training = check_training(two, batch=16 if FLAGS.quick else 64)
    batches = (32,) if FLAGS.quick else (128, 256)
    rows = benchmark_rows(two, precisions, batches, input_size)
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", platform.node() or "host")
    checks = {"placement": placement["ok"], "equivalence": equivalence["ok"], "loss falls": training["ok"]}
    notes = [f"devices: {facts['gpus'] or 'no GPU'}; CPU {report.machine()}; TensorFlow {facts['tensorflow']} "
             f"{facts['build']}",
             f"--gpus=0,1 here: {facts['layout_for_gpus_0_1']}; towers on {two}",
             f"placement: {placement['checked']} gradient ops of tower layers checked, misplaced: "
             f"{placement['misplaced'] or 'none'}",
             "equivalence (largest relative logit difference from the towers on two devices): " + ", ".join(
                 f"{k} {v:.2e}" for k, v in equivalence.items() if k != "ok") + f" (tolerance {TOLERANCE:g})",
             f"training on one batch of {training['batch']} images of the shipped slice: mean loss of the first 5 "
             f"steps {training['first']:.4f}, of the last 5 {training['last']:.4f}, over {training['steps']} steps",
             "checks: " + ", ".join(f"{k} {'passed' if ok else 'FAILED'}" for k, ok in checks.items()),
             f"input {input_size}x{input_size}; benchmark steps {FLAGS.steps}, warmup {FLAGS.warmup}, repeats "
             f"{FLAGS.repeats}" + ("; --quick: small sizes, not a measurement of the machine" if FLAGS.quick else "")]
    report.write_table(f"device_check_{host}", f"Device check of {platform.node() or 'this machine'}", rows,
                       ["precision", "batch", "net", "images/s", "fraction of matmul", "matmul GFLOP/s"] +
                       sorted({k for r in rows for k in r if k.startswith("peak_memory")}), notes=notes,
                       out_dir=FLAGS.out_dir, extra={"facts": facts, "placement": placement,
                                                     "equivalence": equivalence, "training": training,
                                                     "checks": checks, "precisions": precisions})
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    errors.run_main(main)
