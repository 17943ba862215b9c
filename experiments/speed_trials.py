"""The speed trials behind docs/performance.md: each alternative the replica was measured against, timed
against what the replica does now, so the figures there can be reproduced.

  python experiments/speed_trials.py --trial=update              # unfused update vs PaperSGD (XLA)
  python experiments/speed_trials.py --trial=fc_input_gradient   # dy w^T three ways, alone and in the step
  python experiments/speed_trials.py --trial=lrn                 # band matmuls (earlier form), variants; XLA
  python experiments/speed_trials.py --trial=lrn_casts --step_precision=mixed_bfloat16   # casts around the LRN or in it
  python experiments/speed_trials.py --trial=relu_in_lrn         # a ReLU op before the LRN vs inside its passes
  python experiments/speed_trials.py --trial=gradient_order      # input gradient first vs in any order
  python experiments/speed_trials.py --trial=exchange_gradient --towers=2   # kernel gradient after each tower's part
  python experiments/speed_trials.py --trial=lrn_bound --intra_op_threads=1   # the LRN against a plain pass
  python experiments/speed_trials.py --trial=lrn_band --step_precision=mixed_bfloat16 --towers=2   # bf16 band sums
  python experiments/speed_trials.py --trial=conv1_kernel_gradient
  python experiments/speed_trials.py --trial=bias_gradient --step_precision=mixed_bfloat16   # a matmul, cast + sum
  python experiments/speed_trials.py --trial=onednn --towers=2 --rounds=3   # oneDNN's kernels vs Eigen's
  python experiments/speed_trials.py --trial=all --towers=2      # everything, on the two towers' two devices

A step trial is paired: the variants are built in one process and timed in alternating rounds of a few steps, so
the machine's drift (on this shared 2-core host, the same benchmark command moves 158-176 images/s for the one-GPU
net between processes) falls on each variant alike. An op trial times single ops, median of 15 calls.
"""
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402
from replica import choices, errors, paper  # noqa: E402

from experiments import report  # noqa: E402  (defines --out_dir)

FLAGS = flags.FLAGS
flags.DEFINE_enum("trial", "all", ["update", "fc_input_gradient", "lrn", "lrn_casts", "relu_in_lrn", "gradient_order",
                                   "exchange_gradient", "lrn_bound", "lrn_band", "conv1_kernel_gradient",
                                   "bias_gradient", "onednn", "all"],
                  "Which trial.")
flags.DEFINE_enum("towers", "1", ["1", "2"],
                  "The net of the step trials: 1 (one device) or 2 (two towers, two devices).")
flags.DEFINE_string("gpus", None, "The devices of the towers (default 0,1 for --towers=2, else 0; 0 puts both "
                    "towers on one device).")
flags.DEFINE_integer("batch_size", paper.BATCH_SIZE, "Images per step.", lower_bound=1)
flags.DEFINE_enum("step_precision", "float32", choices.PRECISIONS,
                  "The step trials' precision (replica.net.precision).")
flags.DEFINE_integer("rounds", 6, "Alternating rounds of the step trials.", lower_bound=1)
flags.DEFINE_integer("steps", 3, "Steps per variant per round.", lower_bound=1)
flags.DEFINE_integer("matmul_size", None, lower_bound=1,
                     help="The onednn trial's benchmark.py --matmul_size (default: benchmark.py's).")
flags.DEFINE_integer("intra_op_threads", 0, lower_bound=0,
                     help="Threads per op for the op trials (0: every core).")


# ---- the alternatives (what the replica did before, or tried and did not keep) ----

def unfused_update(optimizer, grads, learning_rate):
    """The earlier update: decay * w and + grad as two ops, then Keras' fused momentum kernel."""
    import tensorflow as tf
    learning_rate = tf.convert_to_tensor(learning_rate, tf.float32)
    momentum = tf.constant(optimizer.momentum, tf.float32)
    for var, velocity, grad, decay in zip(optimizer.variables, optimizer.velocities, grads, optimizer.decays):
        with tf.device(var.value.device):
            decayed = grad + decay * var.value if decay else grad
            tf.raw_ops.ResourceApplyKerasMomentum(var=var.value.handle, accum=velocity.handle, lr=learning_rate,
                                                  grad=decayed, momentum=momentum)


def fc_input_gradient_forms():
    """dy @ w^T, the fc input gradient, as the replica has computed it: {name: f(dy, w)}."""
    import tensorflow as tf
    return {
        "dy w^T by MatMul": lambda dy, w: tf.matmul(dy, w, transpose_b=True),
        "(w dy^T)^T by MatMul (earlier form)": lambda dy, w: tf.transpose(tf.matmul(w, tf.transpose(dy))),
        "dy w^T by BatchMatMul (now)": lambda dy, w: tf.linalg.matmul(dy[None], w[None], transpose_b=True)[0],
    }


def lrn_by_band_matmuls(x, size, k, alpha, beta, groups=1, band_product=None, elementwise=None):
    """speed_forms.cross_map_norm in its earlier form: the sums over adjacent maps as matmuls with a banded 0/1
    matrix (oneDNN), the rest TensorFlow's elementwise ops, one pass each.
    band_product(maps, band): the band matmul (default tf.linalg.matmul of the rows); elementwise: a decorator
    for the elementwise groups (default none: XLA's was tried, `lrn_elementwise_by_xla`)."""
    import tensorflow as tf
    from replica.net import speed_forms
    dtype, x = x.dtype, tf.cast(x, tf.float32)   # float32 arithmetic, as the replica's LRN
    maps = x.shape[-1]
    band = speed_forms.adjacent_maps(maps, size, groups)
    band_product = band_product or (lambda rows, matrix: tf.linalg.matmul(rows, matrix))
    compiled = elementwise or (lambda f: f)
    k_per_map = tf.fill([maps], tf.constant(k, tf.float32))

    @compiled
    def scale_and_output(a, u):
        scale = speed_forms.inverse_power(u, beta)
        return scale, a * scale
    gradient_parts = compiled(lambda g, scale, b, u: (g * scale, g * b / u))
    combine = compiled(lambda t, a, m: t - a * m)

    @tf.custom_gradient
    def normalise(x):
        a = tf.reshape(x, [-1, maps])
        u = tf.nn.bias_add(band_product(tf.square(a), alpha * band), k_per_map)
        scale, b = scale_and_output(a, u)

        def gradient(g):
            t, q = gradient_parts(tf.reshape(g, [-1, maps]), scale, b, u)
            return tf.reshape(combine(t, a, band_product(q, (2.0 * alpha * beta) * band)), tf.shape(x))
        return tf.reshape(b, tf.shape(x)), gradient
    return tf.cast(normalise(x), dtype)


def lrn_band_sum_as_convolution(x, size, k, alpha, beta, groups=1):
    """The band-matmul LRN with its two band matmuls as 1x1 convolutions of the rows (a tried alternative)."""
    import tensorflow as tf
    return lrn_by_band_matmuls(x, size, k, alpha, beta, groups, band_product=lambda rows, band: tf.nn.conv2d(
        rows[None, None], band[None, None], 1, "VALID")[0, 0])


def lrn_elementwise_by_xla(x, size, k, alpha, beta, groups=1):
    """The band-matmul LRN with its elementwise passes compiled by XLA, the band matmuls left to oneDNN (tried
    as an alternative)."""
    import tensorflow as tf
    return lrn_by_band_matmuls(x, size, k, alpha, beta, groups,
                               elementwise=lambda f: tf.function(f, jit_compile=True))


def summed_in_float32(dy):
    """The bias gradient's earlier form: dy cast to float32 and summed over all but its last axis by Sum."""
    import tensorflow as tf
    return tf.reduce_sum(tf.cast(dy, tf.float32), list(range(len(dy.shape) - 1)))


def bias_add_summed_in_float32(x, bias, summed=summed_in_float32):
    """speed_forms.bias_add whose bias gradient is summed(dy) (default `summed_in_float32`, the earlier form)."""
    import tensorflow as tf

    @tf.custom_gradient
    def add(x, bias):
        return tf.nn.bias_add(x, bias), lambda dy: (dy, tf.cast(summed(dy), bias.dtype))
    return add(x, bias)


def bias_add_summed_by_xla(x, bias):
    """The float32 cast and sum of the bias gradient as one XLA-compiled pass: the cast is fused into the sum
    instead of writing a float32 copy of dy (tried)."""
    import tensorflow as tf
    return bias_add_summed_in_float32(x, bias, tf.function(summed_in_float32, jit_compile=True, autograph=False))


# ---- timing ----

def time_call(function, calls=15):
    """Median seconds of an eager call of `function` (no arguments), until every device has finished it."""
    import tensorflow as tf
    function()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        function()
        tf.test.experimental.sync_devices()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_op(function, calls=15):
    """Median seconds of a tf.function of no arguments (its result summed, so nothing is optimised away)."""
    import tensorflow as tf
    summed = tf.function(lambda: tf.reduce_sum(function()))
    summed().numpy()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        summed().numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_arguments():
    """One batch of synthetic 227x227 images and labels, a step number and a learning rate: a step's arguments."""
    import tensorflow as tf
    size = paper.INPUT_SIZE
    return (tf.random.normal([FLAGS.batch_size, size, size, 3], stddev=50.0),
            tf.random.uniform([FLAGS.batch_size], maxval=paper.NUM_CLASSES, dtype=tf.int64), tf.constant(0, tf.int64),
            tf.constant(1e-5))


def with_variant(build, use):
    """use(step): a variant's training step, built inside its `patched` context (build: () -> the context) and
    handed to `use` while the context is in force, so that the step's first call traces the variant's code."""
    import replica
    from replica.training.optimizer import PaperSGD
    from replica.training.step import make_train_step
    from replica.choices import towers_value
    with build() as apply:
        model = replica.build_model(towers_value(FLAGS.towers), num_classes=1000, devices=DEVICES, input_size=227,
                                    precision=FLAGS.step_precision)
        optimizer = PaperSGD(model.trainable_variables)
        if apply is not None:
            optimizer.apply = lambda grads, lr, optimizer=optimizer: apply(optimizer, grads, lr)
        return use(make_train_step(model, optimizer))


def paired_steps(variants):
    """variants: {name: () -> a `patched` context}; each variant's step is built and traced inside its context.
    Returns {name: [images/s of each round]}: the variants' training steps timed in alternating rounds."""
    args = step_arguments()

    def warmed_up(step):
        for _ in range(2):   # trace and warm up
            step(*args)[0].numpy()
        return step
    steps = {name: with_variant(build, warmed_up) for name, build in variants.items()}
    rates = {name: [] for name in steps}
    for _ in range(FLAGS.rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(FLAGS.steps):
                out = step(*args)
            out[0].numpy()
            rates[name].append(FLAGS.batch_size * FLAGS.steps / (time.perf_counter() - start))
    return rates


def report_waiting(variants):
    """Each variant's devices' waiting: the fraction of a step each device was idle (replica.perf.profiling), from
    two profiled steps of a fresh step function per variant."""
    from replica.perf import profiling
    args = step_arguments()
    for name, build in variants.items():
        times = with_variant(build, lambda step: profiling.device_times(step, lambda: args, calls=2))
        say(f"  {name:44} idle: " + ", ".join(f"{device} {100 * figures['idle_fraction']:.1f}%"
                                               for device, figures in times["devices"].items()))


class patched:
    """Context: replace `module.<name>` (or `module[name]`, for replica.net.speed_forms.FORMS) by each
    `replacements[name]` while a variant is built; yields the variant's replacement for `PaperSGD.apply`
    (None: PaperSGD's own)."""

    def __init__(self, module=None, optimizer_apply=None, **replacements):
        self.module, self.replacements, self.apply = module, replacements, optimizer_apply

    def _get(self, name):
        return self.module[name] if isinstance(self.module, dict) else getattr(self.module, name)

    def _set(self, name, value):
        if isinstance(self.module, dict):
            self.module[name] = value
        else:
            setattr(self.module, name, value)

    def __enter__(self):
        self.saved = {name: self._get(name) for name in self.replacements}
        for name, value in self.replacements.items():
            self._set(name, value)
        return self.apply

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            self._set(name, value)


def report_steps(title, rates):
    say(f"\n{title} (--towers={FLAGS.towers} on {', '.join(DEVICES)}, {FLAGS.step_precision}, "
        f"batch {FLAGS.batch_size}, {FLAGS.rounds} alternating rounds of {FLAGS.steps} steps):")
    names = list(rates)
    for name in names:
        say(f"  {name:44} median {statistics.median(rates[name]):6.1f} images/s  rounds: "
              + " ".join(f"{r:.1f}" for r in rates[name]))
    base, *others = names
    for other in others:
        faster = sum(o > b for o, b in zip(rates[other], rates[base]))
        say(f"  {other} faster than {base} in {faster} of {FLAGS.rounds} rounds")


# ---- the trials ----

def onednn_trial():
    """oneDNN's CPU kernels (what replica/__init__.py asks for) against Eigen's. TensorFlow reads
    TF_ENABLE_ONEDNN_OPTS once, when it loads, so the two cannot share a process: each round runs
    experiments/benchmark.py once with each, alternating, and the rates and matmul fractions are its."""
    import json
    import subprocess
    import sys
    import tempfile
    forms = {"Eigen (TF_ENABLE_ONEDNN_OPTS=0)": "0", "oneDNN (TF_ENABLE_ONEDNN_OPTS=1, the replica's)": "1"}
    rates, fractions, in_force = {name: [] for name in forms}, {name: [] for name in forms}, {}
    for _ in range(FLAGS.rounds):
        for name, value in forms.items():
            with tempfile.TemporaryDirectory() as folder:
                figures_file = os.path.join(folder, "figures.json")
                command = [sys.executable, os.path.join(os.path.dirname(__file__), "benchmark.py"),
                           f"--towers={FLAGS.towers}", f"--batch_size={FLAGS.batch_size}",
                           f"--precision={FLAGS.step_precision}", f"--steps={FLAGS.steps}", "--warmup=1",
                           "--repeats=1", "--noinference", "--nodevice_time", f"--json={figures_file}",
                           *([f"--gpus={FLAGS.gpus}"] if FLAGS.gpus else []),
                           *([f"--matmul_size={FLAGS.matmul_size}"] if FLAGS.matmul_size else [])]
                done = subprocess.run(command, env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": value},
                                      capture_output=True, text=True)
                if done.returncode != 0:
                    raise SystemExit(f"benchmark.py with TF_ENABLE_ONEDNN_OPTS={value} failed: {done.stderr[-2000:]}")
                with open(figures_file) as f:
                    figures = json.load(f)
            rates[name].append(figures["images_per_second"])
            fractions[name].append(figures["roofline_fraction"])
            in_force[name] = figures["precision_in_force"]   # names the kernels the process ran
    report_steps("The CPU's kernels: Eigen vs oneDNN (one benchmark.py process per round and form)", rates)
    for name, values in fractions.items():
        say(f"  {name:44} fraction of the matmul measured in its process: median "
            f"{statistics.median(values):.2f}  rounds: " + " ".join(f"{v:.2f}" for v in values))
        say(f"  {name:44} in force: {in_force[name]}")


def update_trial():
    report_steps("The update: unfused (earlier form) vs one XLA-compiled function per device (now)", paired_steps({
        "unfused: decay pass + Keras momentum kernel": lambda: patched(optimizer_apply=unfused_update),
        "XLA-compiled, one function per device": lambda: patched()}))


def fc_input_gradient_trial():
    import tensorflow as tf
    from replica.net import speed_forms
    say("\nfc input gradient dy @ w^T alone, batch 128 (ms, median of 15):")
    for fan_in, fan_out in [(9216, 4096), (4096, 4096), (4096, 1000), (9216, 2048), (4096, 2048)]:
        w = tf.Variable(tf.random.normal([fan_in, fan_out]))
        dy = tf.random.normal([FLAGS.batch_size, fan_out])
        times = {name: time_op(lambda form=form: form(dy, w)) for name, form in fc_input_gradient_forms().items()}
        say(f"  {fan_in:5} x {fan_out:<5}" + "".join(f"  {name}: {1000 * t:6.2f}" for name, t in times.items()))
    forms = fc_input_gradient_forms()
    old = "(w dy^T)^T by MatMul (earlier form)"
    report_steps("fc input gradients in the step", paired_steps({
        old: lambda: patched(speed_forms.FORMS, fc_input_gradient=forms[old]),
        "dy w^T by BatchMatMul (now)": lambda: patched()}))


def gradient_order_trial():
    from replica.net import model
    report_steps("The order of each layer's two gradients (the replica puts the input gradient first when the "
                 "towers sit on two devices: model.orders_gradients)", paired_steps({
                     "in any order": lambda: patched(model, orders_gradients=lambda devices: False),
                     "input gradient first": lambda: patched(model, orders_gradients=lambda devices: True)}))


def exchange_gradient_trial():
    from replica.net import speed_forms
    variants = {"the input gradient (earlier form)": lambda: patched(
                    speed_forms.FORMS, kernel_gradient_waits_for=lambda input_gradient, parts: [input_gradient]),
                "each tower's part of it, cut (now)": lambda: patched()}
    report_steps("What each layer's kernel gradient waits for when the towers sit on two devices",
                 paired_steps(variants))
    say("The time each device waited, of two profiled steps:")
    report_waiting(variants)


def lrn_trial():
    from replica.net import speed_forms
    report_steps("The LRN", paired_steps({
        "band matmuls (earlier form)": lambda: patched(speed_forms, cross_map_norm=lrn_by_band_matmuls),
        "band sums as 1x1 convolutions": lambda: patched(speed_forms, cross_map_norm=lrn_band_sum_as_convolution),
        "band matmuls, elementwise passes by XLA": lambda: patched(speed_forms, cross_map_norm=lrn_elementwise_by_xla),
        "adjacent sums and all by XLA (now)": lambda: patched()}))


def lrn_casts_trial():
    import tensorflow as tf
    from replica.net import speed_forms
    now = speed_forms.cross_map_norm

    def cast_around(x, size, k, alpha, beta, groups=1):
        return tf.cast(now(tf.cast(x, tf.float32), size, k, alpha, beta, groups), x.dtype)
    report_steps(f"The LRN's float32 arithmetic in a {FLAGS.step_precision} net", paired_steps({
        "maps cast to float32 around the LRN (earlier form)": lambda: patched(speed_forms, cross_map_norm=cast_around),
        "cast inside the LRN's compiled passes (now)": lambda: patched()}))


def relu_in_lrn_trial():
    import tensorflow as tf
    from replica.net import speed_forms

    def relu_op_then_lrn(x, *constants):
        return speed_forms.cross_map_norm(tf.nn.relu(x), *constants)
    report_steps("conv1's and conv2's ReLU before their LRN", paired_steps({
        "a ReLU op, then the LRN's passes (earlier form)": lambda: patched(speed_forms.FORMS,
                                                                          relu_then_lrn=relu_op_then_lrn),
        "the ReLU inside the LRN's passes (now)": lambda: patched()}))


def lrn_bound_trial():
    """The LRN's forward pass by shifted slices, one XLA pass, against a plain pass over the same maps (the same
    bytes read and written): what its arithmetic costs beyond the memory traffic, in XLA's code for the CPU
    (docs/performance.md, what bounds the fraction). A device's share of the CPU is one core: run with
    --intra_op_threads=1."""
    import tensorflow as tf
    from replica import paper
    from replica.net import precision, speed_forms

    @tf.function(jit_compile=True, autograph=False)
    def plain_pass(x):
        return tf.cast(2.0 * tf.nn.relu(tf.cast(x, tf.float32)), x.dtype)

    @tf.function(jit_compile=True, autograph=False)
    def without_adjacent_sum(x):   # u from each map's own square, times the window
        a = tf.nn.relu(tf.cast(x, tf.float32))
        u = paper.LRN_K + paper.LRN_ALPHA * paper.LRN_N * tf.square(a)
        return tf.cast(a * speed_forms.inverse_power(u, paper.LRN_BETA), x.dtype)
    dtype = precision.compute_dtype(FLAGS.step_precision)
    say(f"\nconv1's and conv2's LRN forward pass alone, one tower, batch {FLAGS.batch_size}, {dtype.name} maps "
        f"(ms, median of 15):")
    for layer, shape in (("norm1", [55, 55, 48]), ("norm2", [27, 27, 128])):
        x = tf.cast(tf.random.normal([FLAGS.batch_size, *shape], stddev=10.0), dtype)
        forms = {"a plain pass (cast, ReLU, scale)": lambda: plain_pass(x),
                 "the LRN without its sum over adjacent maps": lambda: without_adjacent_sum(x),
                 "the LRN by shifted slices": lambda: speed_forms.rectified_cross_map_norm(
                     x, paper.LRN_N, paper.LRN_K, paper.LRN_ALPHA, paper.LRN_BETA)}
        with patched(speed_forms, BAND_SUM_DTYPES=()):   # one pass in either precision (bfloat16: --trial=lrn_band)
            say(f"  {layer}" + "".join(f"  {name}: {1000 * time_call(form):5.1f}" for name, form in forms.items()))


def lrn_band_trial():
    """In bfloat16, the LRN's sums over adjacent maps by band matmuls (speed_forms.BAND_SUM_DTYPES) against the
    shifted slices of the float32 form: conv1's and conv2's LRN alone, forward and backward, on one core (a
    device's share), then in the step."""
    import tensorflow as tf
    from replica import paper
    from replica.net import speed_forms
    forms = {"shifted slices (earlier form)": lambda: patched(speed_forms, BAND_SUM_DTYPES=()),
             "band matmuls (now)": lambda: patched()}
    say(f"\nconv1's and conv2's LRN with its ReLU, forward and backward, one tower, batch {FLAGS.batch_size}, "
        f"bfloat16 maps, {tf.config.threading.get_intra_op_parallelism_threads() or 'every'} thread(s) an op "
        "(ms, median of 15):")
    for layer, shape in (("norm1", [55, 55, 48]), ("norm2", [27, 27, 128])):
        x = tf.cast(tf.random.normal([FLAGS.batch_size, *shape], stddev=10.0), tf.bfloat16)
        g = tf.cast(tf.random.normal(x.shape), tf.bfloat16)
        times = {}
        for name, form in forms.items():
            with form():
                @tf.function
                def forward_and_backward():
                    with tf.GradientTape() as tape:
                        tape.watch(x)
                        y = speed_forms.rectified_cross_map_norm(x, paper.LRN_N, paper.LRN_K, paper.LRN_ALPHA,
                                                                 paper.LRN_BETA)
                    return tf.reduce_sum(tf.cast(tape.gradient(y, x, output_gradients=g), tf.float32))
                times[name] = time_call(forward_and_backward)
        say(f"  {layer}" + "".join(f"  {name}: {1000 * t:5.1f}" for name, t in times.items()))
    if FLAGS.step_precision != "mixed_bfloat16":
        say("(the step is timed with --step_precision=mixed_bfloat16: in float32 both forms are the slices)")
        return
    report_steps("The LRN's sums over adjacent maps in a mixed_bfloat16 net", paired_steps(forms))


def conv1_kernel_gradient_trial():
    import tensorflow as tf
    x = tf.random.normal([FLAGS.batch_size, 227, 227, 3])
    dy = tf.random.normal([FLAGS.batch_size, 55, 55, 48])

    def backprop_filter(images, gradient, shape, stride):
        return tf.raw_ops.Conv2DBackpropFilter(input=images, filter_sizes=shape, out_backprop=gradient,
                                               strides=[1, stride, stride, 1], padding="VALID")
    half = FLAGS.batch_size // 2

    def halves_in_turn():   # in turn: side by side they would take the other core, which the other tower uses
        first = backprop_filter(x[:half], dy[:half], [11, 11, 3, 48], 4)
        with tf.control_dependencies([first]):
            return first + backprop_filter(x[half:], dy[half:], [11, 11, 3, 48], 4)
    forms = {
        "Conv2DBackpropFilter (now)": lambda: backprop_filter(x, dy, [11, 11, 3, 48], 4),
        "as a dilated convolution": lambda: tf.transpose(tf.nn.conv2d(
            tf.transpose(x, [3, 1, 2, 0]), tf.transpose(dy, [1, 2, 0, 3]), 1, "VALID", dilations=4), [1, 2, 0, 3]),
        "in two half batches, one after the other": lambda: halves_in_turn(),
        "through space-to-depth (a 12x12 kernel)": lambda: backprop_filter(
            tf.nn.space_to_depth(tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]]), 4), dy, [3, 3, 48, 48], 1),
    }
    say(f"\nconv1's kernel gradient alone, batch {FLAGS.batch_size}, one tower's 48 kernels (ms, median of 15):")
    for name, form in forms.items():
        say(f"  {name:44} {1000 * time_op(form):6.1f}")


def bias_gradient_trial():
    from replica.net import speed_forms
    report_steps(f"The bias gradients in a {FLAGS.step_precision} net", paired_steps({
        "dy cast to float32, then summed (earlier form)": lambda: patched(speed_forms,
                                                                          bias_add=bias_add_summed_in_float32),
        "cast and sum in one XLA pass": lambda: patched(speed_forms, bias_add=bias_add_summed_by_xla),
        "a row of ones times dy's rows (now)": lambda: patched()}))


DEVICES = None
LINES = []


def say(line):
    """Print a line of the report and keep it for results/speed_trials_towers<N>.md."""
    print(line, flush=True)
    LINES.append(line)


def main(argv):
    del argv
    global DEVICES
    import tensorflow as tf
    from replica.net import devices as devices_lib
    if FLAGS.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op_threads)
    from replica import choices
    from replica.choices import towers_value
    DEVICES = devices_lib.tower_devices(towers_value(FLAGS.towers),
                                        FLAGS.gpus or choices.default_gpus(FLAGS.towers))
    from replica.net import precision
    precision.configure(FLAGS.step_precision)
    trials = {"update": update_trial, "fc_input_gradient": fc_input_gradient_trial, "lrn": lrn_trial,
              "lrn_casts": lrn_casts_trial, "relu_in_lrn": relu_in_lrn_trial,
              "gradient_order": gradient_order_trial, "exchange_gradient": exchange_gradient_trial,
              "lrn_bound": lrn_bound_trial, "lrn_band": lrn_band_trial,
              "conv1_kernel_gradient": conv1_kernel_gradient_trial,
              "bias_gradient": bias_gradient_trial, "onednn": onednn_trial}
    for name, trial in trials.items():
        if FLAGS.trial in (name, "all"):
            trial()
    import datetime
    suffix = ("" if FLAGS.trial == "all" else f"_{FLAGS.trial}") + (
        "" if FLAGS.step_precision == "float32" else f"_{FLAGS.step_precision}")
    if LINES:
        import pathlib
        path = pathlib.Path(FLAGS.out_dir or report.RESULTS) / f"speed_trials_towers{FLAGS.towers}{suffix}.md"
        report.save_text(path, f"# Speed trials, --towers={FLAGS.towers}\n\n- command: `{report.command_line()}`\n"
                               f"- date: {datetime.date.today()}\n- machine: {report.machine()}\n\n```"
                               + "\n".join(LINES) + "\n```\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    errors.run_main(main)
