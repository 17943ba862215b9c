"""The one reporting helper of experiments/: a table as markdown + JSON, a figure as PNG, and scratch folders.

Every table records the command that produced it and the date, so each number can be traced to a run.
"""
import atexit
import datetime
import json
import os
import pathlib
import platform
import shutil
import sys
import tempfile

from absl import flags

from replica import errors, files

REPO = pathlib.Path(__file__).resolve().parents[1]   # the repository's root
RESULTS = REPO / "experiments" / "results"
flags.DEFINE_string("out_dir", None, "Where to write the results (default experiments/results).")
errors.writable_folder_flag("out_dir")


def save(path, write, remedy="free space and rerun the same command: the runs it finished are reused"):
    """`write(temporary path)`, renamed to `path` when whole (replica.files.write_whole); a write that fails (a full
    disk) is one line saying what to do, not a traceback after hours of training."""
    files.write_whole_or_raise(errors.UserError, path, write, remedy)


def save_text(path, text, **remedy):
    save(path, lambda tmp: tmp.write_text(text), **remedy)


def scratch_dir(prefix="experiment-"):
    """A temporary folder (a --quick run's checkpoints, a decoded-image cache) removed when the process ends: one
    checkpoint of the CIFAR-10 towers is about 270 MB, and the test suite makes dozens of runs."""
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def quick_image_folder(data_dir, classes=2, photos=8):
    """A class-folder tree of `photos` photos of the first `classes` classes of data_dir's train/ and val/, as
    symbolic links in a scratch folder: the pipeline of an image-folder experiment run end to end, not a result."""
    from replica.inputs.data_set import DataError
    missing = [split for split in ("train", "val") if not (pathlib.Path(data_dir) / split).is_dir()]
    if missing:
        raise DataError(f"{data_dir} has no {missing[0]}/ folder; point --data_dir at a folder with train/ and val/")
    quick = pathlib.Path(scratch_dir()) / "photos"
    for split in ("train", "val"):
        for folder in sorted((pathlib.Path(data_dir) / split).iterdir())[:classes]:
            (quick / split / folder.name).mkdir(parents=True)
            for photo in sorted(folder.iterdir())[:photos]:
                (quick / split / folder.name / photo.name).symlink_to(photo.resolve())
    return quick


def machine():
    """The processor, its widest arithmetic units and its core count: the same command runs at different speeds on
    different processors (the towers train about twice as fast on an AMD EPYC with AVX-512 as on one with AVX2
    only), so every table says which one made it."""
    from replica.net.precision import cpu_flags
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    units = widest_units(cpu_flags())
    return f"{model}{f' ({units})' if units else ''}, {os.cpu_count()} cores"


def widest_units(flags):
    """The widest x86 arithmetic units among Linux's CPU `flags`, as a reader names them ('' if none is known)."""
    flags = set(flags)
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512f" in flags:
        return "AVX-512" + (" BF16" if "avx512_bf16" in flags else "")
    return "AVX2" if "avx2" in flags else ""


def code_version():
    """The commit of the code that ran ("+ changes" when a Python file differs from it; result files do not
    count), or None outside a git checkout: a run recorded on one machine may be reused on another
    (experiments/variants.py)."""
    import subprocess
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    try:
        commit = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", "*.py")
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + (" + changes" if changed else "")


T_975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23, 15: 2.13,
         20: 2.09, 30: 2.04}   # Student's t, 97.5% point, by degrees of freedom


def ratio_interval(ratios):
    """Geometric mean of paired ratios and its 95% interval: a t interval on the log ratios (the table's nearest
    lower degrees of freedom, so never too narrow). At least two ratios."""
    import math
    import statistics
    logs = [math.log(r) for r in ratios]
    t = T_975[max(k for k in T_975 if k <= len(logs) - 1)]
    mean, half = statistics.mean(logs), t * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def command_line():
    return "python " + " ".join([pathlib.Path(sys.argv[0]).as_posix().split("/main/")[-1], *sys.argv[1:]])


def fmt(value):
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def markdown_table(rows, columns):
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_table(name, title, rows, columns, notes=(), out_dir=None, extra=None):
    """Write <name>.md and <name>.json under experiments/results (or out_dir); return the markdown."""
    out = pathlib.Path(out_dir or RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = [f"# {title}", "", f"Command: `{command_line()}`  ", f"Run: {stamp} on {platform.node() or 'this machine'}"
              f" ({machine()})", ""]
    text = "\n".join(header + [markdown_table(rows, columns), ""] + [f"- {n}" for n in notes]) + "\n"
    save_text(out / f"{name}.md", text)
    payload = {"title": title, "command": command_line(), "date": stamp, "machine": machine(),
               "columns": list(columns), "rows": rows, "notes": list(notes), **(extra or {})}
    save_text(out / f"{name}.json", json.dumps(payload, indent=2, default=str))
    print(text)
    return text


def line_figure(name, series, xlabel, ylabel, title, out_dir=None, logx=False, hline=None):
    """series: {label: (xs, ys)} -> <name>.png; hline (y, label): a dashed reference line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out = pathlib.Path(out_dir or RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    below = len(series) > 4   # many curves: the legend goes under the axes, not over the curves
    fig, ax = plt.subplots(figsize=(7.2, 4.2 + 0.22 * (len(series) + 1) // 2) if below else (6.4, 4.2), dpi=120)
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", label=label)
    if hline:
        ax.axhline(hline[0], color="grey", linestyle="--", label=hline[1])
    if logx:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if below:
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    else:
        ax.legend()
    fig.tight_layout()
    path = out / f"{name}.png"
    save(path, fig.savefig)
    plt.close(fig)
    return path


def image_figure(name, images, titles, suptitle, out_dir=None, rows=1):
    """A row (or grid) of RGB images in [0, 1] -> <name>.png."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out = pathlib.Path(out_dir or RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    cols = -(-len(images) // rows)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), dpi=120, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(title, fontsize=8)
    fig.suptitle(suptitle)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / (3.2 * rows)))   # half an inch above the grid for the title
    path = out / f"{name}.png"
    save(path, fig.savefig)
    plt.close(fig)
    return path
