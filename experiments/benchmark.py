"""How fast the towers train and infer on this machine, against the machine's own matmul limit.

  python experiments/benchmark.py                        # two towers, two devices, batch 128, 227x227
  python experiments/benchmark.py --towers=merged --gpus=0
  python experiments/benchmark.py --data=imagenet_folder --data_dir=../shared/data/tiny-imagenet-10
  python experiments/benchmark.py --sweep                # batch 32..256 x the nets: table + plot

Prints and writes (--json): images/s (median and spread over repeats), step time, FLOP per image (from the
per-layer table: a training step is 3 x 2 x multiply-adds), achieved GFLOP/s, the matmul GFLOP/s of the precision in
use measured in the same run right after each repeat of the steps, the median of their paired ratios
(roofline_fraction), peak RSS, and what real data adds over synthetic data.
"""
import os
import pathlib
import resource
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402
from replica import choices, errors, paper  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("towers", "2", choices.TOWERS, "2, 1, merged or grouped.")
flags.DEFINE_string("gpus", None, "Device indices (default 0,1 for two towers, 0 otherwise).")
flags.DEFINE_integer("batch_size", paper.BATCH_SIZE, "Images per step.", lower_bound=1)
flags.DEFINE_integer("input_size", None, "227 (default), 224, or 32 (default for --data=cifar10).")
flags.DEFINE_integer("steps", 5, "Timed steps per repeat.", lower_bound=1)
flags.DEFINE_integer("warmup", 2, "Untimed steps before timing (compilation, allocation).", lower_bound=0)
flags.DEFINE_integer("repeats", 3, "Repeats of the timed steps.", lower_bound=1)
flags.DEFINE_enum("data", "synthetic", ["synthetic", *choices.DATASETS], "Input.")

flags.DEFINE_string("data_dir", None, "Data folder for --data (cifar10: unset = the shipped slice).")
flags.DEFINE_bool("jit", False, "Compile the step with XLA (jit_compile=True).")
flags.DEFINE_enum("precision", "float32", choices.PRECISIONS,
                  "Arithmetic of the nets (weights float32; replica.net.precision).")
flags.DEFINE_bool("inference", True, "Also time inference at batch 1 and 128, and 10-crop evaluation.")
flags.DEFINE_bool("sweep", False, "Batch sizes 32..256 for the three nets (+ grouped and one-device towers).")
flags.DEFINE_integer("compare_layouts", 0, lower_bound=0,
                     help="Time the two towers on two devices and on one device this many times each, alternating, "
                     "each run in its own process; print the paired ratios.")
flags.DEFINE_bool("device_time", True, "Also profile two training steps: each device's busy time and the fraction "
                  "of the step it waited (replica.perf.profiling).")
flags.DEFINE_integer("profile_ops", 0, lower_bound=0,
                     help="Also profile two training steps op by op and print the N costliest ops (ms per step, "
                     "device, node, op type) and the total per op type; 0: off. Ops running side by side share the "
                     "cores: for times that add up to the step, run with TF_NUM_INTEROP_THREADS=1.")
flags.DEFINE_integer("cores_per_device", 0, lower_bound=0,
                     help="CPU only: simulate devices of this many cores each (0: a single device gets every core, "
                     "two logical devices share them). --towers=1 --cores_per_device=1 is the one-GPU net on one "
                     "device of the same size as each of the towers' two.")
flags.DEFINE_string("json", None, "Write the figures to this JSON file.")
errors.writable_file_flag("json")
flags.DEFINE_integer("matmul_size", 4096, lower_bound=1,
                     help="n of the reference n^3 matmul (a smaller one runs below the machine's rate: only for a "
                     "quick run that checks the script).")


def input_sizes(data):
    """The input sizes the nets take on `data` (synthetic data: any data set's)."""
    return sorted({size for name, spec in choices.DATASETS.items() if data in ("synthetic", name)
                   for size in spec["input_sizes"]})


flags.register_multi_flags_validator(
    ["input_size", "data"], lambda f: f["input_size"] is None or f["input_size"] in input_sizes(f["data"]),
    "--input_size does not fit --data: " + "; ".join(f"{' or '.join(map(str, spec['input_sizes']))} for {name}"
                                                     for name, spec in choices.DATASETS.items()))


def matmul_reference(devices, n=4096, dtype="float32"):
    """The machine's matmul rate in `dtype`, as a function that measures it now with the run's thread settings: one
    n^3 product on each of `devices` at once (every core busy), the roofline the training step is held against.
    train_figures measures it right after each repeat of the step, so that the machine's drift falls on both."""
    import tensorflow as tf
    devices = sorted(set(devices))
    operands = []
    for d in devices:
        with tf.device(d):
            operands.append((tf.cast(tf.random.normal([n, n]), dtype), tf.cast(tf.random.normal([n, n]), dtype)))

    @tf.function
    def matmuls():
        total = []
        for d, (a, b) in zip(devices, operands):
            with tf.device(d):
                total.append(tf.reduce_sum(tf.matmul(a, b)))
        return tf.add_n([tf.cast(t, tf.float32) for t in total])

    matmuls().numpy()

    def gflops(repeats=3):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            matmuls().numpy()
            times.append(time.perf_counter() - start)
        return len(devices) * 2 * n ** 3 / statistics.median(times) / 1e9
    return gflops


def matmul_gflops(devices, n=4096, repeats=10, dtype="float32"):
    """The matmul rate of matmul_reference, measured once."""
    return matmul_reference(devices, n, dtype)(repeats)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gpu_names(devices):
    """The GPU devices among `devices`, as TensorFlow's memory functions name them ("GPU:0")."""
    return [d.split("/device:")[-1] for d in sorted(set(devices)) if "GPU" in d]


def reset_peak_device_memory(devices):
    """Start the GPU devices' peak memory afresh, for a process that measures one net after another."""
    import tensorflow as tf
    for name in gpu_names(devices):
        tf.config.experimental.reset_memory_stats(name)


def peak_device_memory_mb(devices):
    """Peak memory of each GPU device since the process started or reset_peak_device_memory (nothing on a CPU-only
    machine, where peak RSS says it all)."""
    import tensorflow as tf
    return {f"peak_memory_mb_{name}": tf.config.experimental.get_memory_info(name)["peak"] / 2 ** 20
            for name in gpu_names(devices)}


def synthetic_batches(batch_size, input_size, num_classes):
    import tensorflow as tf
    images = tf.random.normal([batch_size, input_size, input_size, 3], stddev=50.0)
    labels = tf.random.uniform([batch_size], maxval=num_classes, dtype=tf.int64)
    while True:
        yield images, labels


def data_batches(data, batch_size):
    epoch = 0
    while True:
        yield from data.train_batches(batch_size, seed=0, epoch=epoch)
        epoch += 1


def time_steps(step_fn, batches, steps, warmup, repeats):
    """Seconds per step of each repeat (the batches are drawn inside the timing: input costs count)."""
    for _ in range(warmup):
        step_fn(*next(batches))
    per_step = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            out = step_fn(*next(batches))
        out[0].numpy()   # wait for the last step
        per_step.append((time.perf_counter() - start) / steps)
    return per_step


def train_figures(model, batches, batch_size, flop_per_image, reference, network_input=None):
    """Images/s of training steps on `batches` (network_input: the data's, for batches of a real input pipeline), and
    their fraction of the matmul rate `reference()` measured right after each repeat: the median of the paired
    ratios, so that a drift of the machine's speed moves the step and its roofline together."""
    import tensorflow as tf
    from replica.training.optimizer import PaperSGD
    from replica.training.step import make_train_step
    optimizer = PaperSGD(model.trainable_variables)
    step = make_train_step(model, optimizer, jit_compile=FLAGS.jit, network_input=network_input)
    counter = tf.Variable(0, dtype=tf.int64)
    lr = tf.constant(1e-5)
    per_step, peaks = [], []
    for k in range(FLAGS.repeats):
        per_step += time_steps(lambda x, y: step(x, y, counter.read_value(), lr), batches, FLAGS.steps,
                               FLAGS.warmup if k == 0 else 0, 1)
        peaks.append(reference())
    rates = [batch_size / s for s in per_step]
    median = statistics.median(rates)
    return {"images_per_second": median, "images_per_second_min": min(rates), "images_per_second_max": max(rates),
            "step_seconds": statistics.median(per_step),
            "achieved_gflops": median * flop_per_image / 1e9, "matmul_gflops": statistics.median(peaks),
            "roofline_fraction": statistics.median(r * flop_per_image / 1e9 / p for r, p in zip(rates, peaks))}


def fresh_step(model, batches):
    """A training step not yet run (the profiler reads its partition graphs on its first call: see
    replica.perf.profiling.node_devices) and the function that draws each call's arguments."""
    import tensorflow as tf
    from replica.training.optimizer import PaperSGD
    from replica.training.step import make_train_step
    step = make_train_step(model, PaperSGD(model.trainable_variables))
    lr, counter = tf.constant(1e-5), tf.constant(0, tf.int64)
    return step, lambda: (*next(batches), counter, lr)


def device_time_figures(model, batches):
    """Each device's busy seconds per training step and the fraction of the step it waited, from the profiler
    (replica.perf.profiling): the measured side of the per-device cost model."""
    from replica.perf import profiling
    times = profiling.device_times(*fresh_step(model, batches), calls=2)
    out = {"profiled_step_seconds": times["wall_seconds"]}
    for device, figures in times["devices"].items():
        out[f"busy_seconds_{device}"] = figures["busy_seconds"]
        out[f"idle_fraction_{device}"] = figures["idle_fraction"]
    return out


def op_profile(model, batches, count):
    """The `count` costliest ops of a training step and the time per op type (replica.perf.profiling.op_seconds),
    printed as a table; returned for the JSON."""
    import collections
    from replica.perf import profiling
    ops = profiling.op_seconds(*fresh_step(model, batches), calls=2)
    by_type = collections.Counter()
    for seconds, _, _, kind in ops:
        by_type[kind] += seconds
    print(f"\nops of a training step: {1000 * sum(by_type.values()):.1f} ms in all; the {count} costliest:")
    for seconds, device, node, kind in ops[:count]:
        print(f"{1000 * seconds:9.1f} ms  {device:7} {kind:34} {node}")
    print("by op type:")
    for kind, seconds in by_type.most_common():
        print(f"{1000 * seconds:9.1f} ms  {kind}")
    return {"op_profile_ms": [[1000 * s, d, n, k] for s, d, n, k in ops[:count]],
            "op_type_ms": {kind: 1000 * seconds for kind, seconds in by_type.most_common()}}


def inference_figures(model, input_size):
    import tensorflow as tf
    from replica.training import evaluate
    predict = evaluate.make_predict(model)
    out = {}
    for batch in (1, 128):
        x = tf.random.normal([batch, input_size, input_size, 3], stddev=50.0)
        per = time_steps(lambda x: (predict(x),), iter(lambda: (x,), None), FLAGS.steps, FLAGS.warmup, FLAGS.repeats)
        out[f"inference_batch{batch}_images_per_second"] = batch / statistics.median(per)
    crops = tf.random.normal([16, 10, input_size, input_size, 3], stddev=50.0)
    per = time_steps(lambda x: (predict(x),), iter(lambda: (crops,), None), 2, 1, FLAGS.repeats)
    out["ten_crop_eval_images_per_second"] = 16 / statistics.median(per)
    return out


def benchmark(towers, gpus, batch_size, input_size, reference, data=None, inference=False):
    import replica
    from replica.net import devices as devices_lib
    tower_devices = devices_lib.tower_devices(towers, gpus)
    num_classes = data.num_classes if data else 1000
    model = replica.build_model(towers, num_classes=num_classes, devices=tower_devices, input_size=input_size,
                                precision=FLAGS.precision)
    macs = sum(r.macs for r in replica.layer_table(model))
    flop_per_image = 3 * 2 * macs
    row = {"towers": str(towers), "gpus": gpus, "devices": tower_devices, "batch_size": batch_size,
           "input_size": input_size, "train_gflop_per_image": flop_per_image / 1e9, "jit": FLAGS.jit,
           "precision": FLAGS.precision}
    row.update(train_figures(model, synthetic_batches(batch_size, input_size, num_classes), batch_size,
                             flop_per_image, reference))
    if data is not None:
        real = train_figures(model, data_batches(data, batch_size), batch_size, flop_per_image, reference,
                             data.network_input)
        row["real_data_images_per_second"] = real["images_per_second"]
        row["input_pipeline_overhead"] = row["images_per_second"] / real["images_per_second"] - 1
    if inference:
        row.update(inference_figures(model, input_size))
    row["peak_rss_mb"] = peak_rss_mb()
    row.update(peak_device_memory_mb(tower_devices))
    if FLAGS.profile_ops:
        row.update(op_profile(model, synthetic_batches(batch_size, input_size, num_classes), FLAGS.profile_ops))
    if FLAGS.device_time:   # last: its second optimizer (fresh velocities) must not count in the peak memory
        row.update(device_time_figures(model, synthetic_batches(batch_size, input_size, num_classes)))
    return row


def default_gpus(towers):
    """--gpus, or one device per tower (replica.choices.default_gpus)."""
    return FLAGS.gpus or choices.default_gpus(towers)


def run_in_process(towers, gpus, batch, device_time=False):
    """One configuration's figures, measured in a process of its own: TensorFlow fixes devices and threads
    when it starts."""
    import json
    import subprocess
    import tempfile
    out = pathlib.Path(tempfile.mkdtemp()) / "row.json"
    subprocess.run([sys.executable, __file__, f"--towers={towers}", f"--gpus={gpus}", f"--batch_size={batch}",
                    f"--input_size={FLAGS.input_size or 227}", f"--steps={FLAGS.steps}",
                    f"--repeats={FLAGS.repeats}", f"--warmup={FLAGS.warmup}", f"--precision={FLAGS.precision}",
                    "--noinference", f"--device_time={device_time}", f"--json={out}"],
                   check=True, stdout=subprocess.DEVNULL)
    row = json.loads(out.read_text())
    print({k: row[k] for k in ("towers", "gpus", "batch_size", "images_per_second", "roofline_fraction")},
          flush=True)
    return row


def compare_layouts(pairs):
    """The two towers on two devices against the same towers on one device, alternating so that any drift of
    the machine falls on both: images/s of each run and the ratio of each pair."""
    from experiments import report
    rows = []
    for k in range(pairs):
        two, one = (run_in_process("2", gpus, FLAGS.batch_size, FLAGS.device_time) for gpus in ("0,1", "0"))
        rows.append({"pair": k + 1, "two devices images/s": two["images_per_second"],
                     "one device images/s": one["images_per_second"],
                     "ratio two / one": two["images_per_second"] / one["images_per_second"],
                     "two devices roofline": two["roofline_fraction"], "one device roofline": one["roofline_fraction"],
                     **{f"two devices: {key.replace('_', ' ')}": value for key, value in two.items()
                        if key.startswith(("busy_seconds", "idle_fraction"))}})
    ratios = [r["ratio two / one"] for r in rows]
    summary = (f"ratio two devices / one device: median {statistics.median(ratios):.3f}, range {min(ratios):.3f}-"
               f"{max(ratios):.3f} over {pairs} pairs, {sum(r >= 1 for r in ratios)} of them >= 1")
    if pairs > 1:
        mean, low, high = report.ratio_interval(ratios)
        summary += f"; geometric mean {mean:.3f}, 95% interval {low:.3f}-{high:.3f} (t on the log ratios)"
    report.write_table("benchmark_layouts", f"Two towers on two logical devices vs on one device, batch "
                       f"{FLAGS.batch_size}, {FLAGS.input_size or 227}x{FLAGS.input_size or 227}, {FLAGS.precision}",
                       rows, list(rows[0]), notes=[summary, f"each run: {FLAGS.warmup} warm-up steps, then "
                                                   f"{FLAGS.repeats} repeats of {FLAGS.steps} steps (median)"])


def sweep():
    from experiments import report
    input_size = FLAGS.input_size or paper.INPUT_SIZE
    nets = [("2", "0,1"), ("2", "0"), ("1", "0"), ("merged", "0")]
    configs = [(t, g, b) for t, g in nets for b in (32, 64, 128, 256)] + [("grouped", "0", 128)]
    rows = [run_in_process(towers, gpus, batch) for towers, gpus, batch in configs]
    columns = ["towers", "gpus", "batch_size", "images_per_second", "images_per_second_min",
               "images_per_second_max", "step_seconds", "train_gflop_per_image", "achieved_gflops", "matmul_gflops",
               "roofline_fraction", "peak_rss_mb"]
    report.write_table("benchmark_sweep", f"Training throughput against batch size, {input_size}x{input_size}, "
                       "float32, this machine", rows, columns,
                       notes=["matmul_gflops: one 4096^3 float32 product per device at once, measured in the same "
                              "process with its thread settings right after each repeat of the step; "
                              "roofline_fraction is the median of the paired ratios",
                              "a training step counts as 3 x 2 x the forward multiply-adds of the per-layer table",
                              f"each row: {FLAGS.warmup} warm-up steps, then {FLAGS.repeats} repeats of "
                              f"{FLAGS.steps} timed steps; images/s is the median, min and max over the repeats"])
    series = {}
    for towers, gpus in nets:
        sel = [r for r in rows if r["towers"] == towers and r["gpus"] == gpus]
        series[f"--towers={towers} --gpus={gpus}"] = ([r["batch_size"] for r in sel],
                                                      [r["images_per_second"] for r in sel])
    report.line_figure("benchmark_sweep", series, "batch size", "training images/s",
                       f"AlexNet training on this machine ({input_size}x{input_size}, float32)", logx=True)


def main(argv):
    del argv
    import json
    from replica.net import devices as devices_lib
    from replica.inputs import input_pipeline
    if FLAGS.sweep:
        return sweep()
    if FLAGS.compare_layouts:
        return compare_layouts(FLAGS.compare_layouts)
    from replica.choices import towers_value
    if FLAGS.cores_per_device:   # before TensorFlow starts; one thread pool per simulated device
        count = len(set(default_gpus(FLAGS.towers).split(",")))
        devices_lib.share_cores(count, cores=FLAGS.cores_per_device * count)
    towers_devices = devices_lib.tower_devices(towers_value(FLAGS.towers), default_gpus(FLAGS.towers))
    from replica.net import precision
    in_force = precision.configure(FLAGS.precision)
    compute = precision.compute_dtype(FLAGS.precision).name
    reference = matmul_reference(towers_devices, n=FLAGS.matmul_size, dtype=compute)
    print(f"{compute} matmul: {reference():.1f} GFLOP/s", flush=True)
    data = None
    dataset = "imagenet_folder" if FLAGS.data == "synthetic" else FLAGS.data
    input_size = FLAGS.input_size or choices.dataset_default(dataset, "input_size")
    if FLAGS.data != "synthetic":
        data = input_pipeline.load_data(FLAGS.data, FLAGS.data_dir, input_size=input_size, cache_decoded=True)
    row = benchmark(towers_value(FLAGS.towers), default_gpus(FLAGS.towers), FLAGS.batch_size, input_size, reference,
                    data=data, inference=FLAGS.inference)
    if compute != "float32":   # the step is held against the matmul of the precision in use; float32's kept beside
        row[f"matmul_gflops_{compute}"] = row["matmul_gflops"]
        row["matmul_gflops"] = matmul_gflops(towers_devices, n=FLAGS.matmul_size)
        row["roofline_fraction_float32"] = row["achieved_gflops"] / row["matmul_gflops"]
    row["precision_in_force"] = in_force
    row["cores_per_device"] = FLAGS.cores_per_device or None
    import datetime
    from experiments import report
    row["machine"] = report.machine()
    row["command"] = report.command_line()
    row["date"] = f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
    for key, value in row.items():
        print(f"{key:>36}: {value}")
    if FLAGS.json:
        report.save_text(pathlib.Path(FLAGS.json), json.dumps(row, indent=2), remedy="free space and rerun")


if __name__ == "__main__":
    errors.run_main(main)
