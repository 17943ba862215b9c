"""Image-folder layouts as ILSVRC-2012 is distributed: `train/<wnid>/*.JPEG` with `val/` either in class folders
(after the widely used valprep script) or flat, as the validation tar extracts, with its labels in one of:

- the devkit: `ILSVRC2012_validation_ground_truth.txt` (line i: the label of ILSVRC2012_val_<i, 8 digits>.JPEG,
  a devkit id 1..1000) with `meta.mat` mapping devkit ids to wnids (these ids are NOT the sorted-wnid order;
  reading meta.mat needs scipy);
- Kaggle's `LOC_val_solution.csv` (ImageId, PredictionString whose first token is the wnid);
- Caffe's `val.txt` (file name, 0-based index of the sorted wnid).

Labels everywhere are the 0-based index of the sorted wnid (the convention of Caffe, torchvision, TFDS), so a
model trained from one layout evaluates on another. The label files are looked for in `val/`, the data folder, and
the devkit's `ILSVRC2012_devkit_t12/data/` inside it.
"""
import csv
import functools
import pathlib

from replica.errors import UserError

DEVKIT_GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"
DEVKIT_META = "meta.mat"
KAGGLE_SOLUTION = "LOC_val_solution.csv"
CAFFE_VAL = "val.txt"
LAYOUTS = ("val/<wnid>/*.JPEG", f"flat val/ with the devkit's {DEVKIT_GROUND_TRUTH} and {DEVKIT_META}",
           f"flat val/ with Kaggle's {KAGGLE_SOLUTION}", f"flat val/ with Caffe's {CAFFE_VAL}")


CLASS_TABLE = pathlib.Path(__file__).resolve().parents[1] / "data" / "ilsvrc2012_classes.tsv"


@functools.lru_cache(maxsize=1)
def class_table():
    """{wnid: words} of ILSVRC-2012's 1,000 classes, in the order of their labels (the sorted wnids); shipped as
    package data (replica/data/README.md)."""
    rows = [line.split("\t") for line in CLASS_TABLE.read_text().splitlines() if not line.startswith("#")]
    return {wnid: words for _, wnid, words in rows}


def class_names(wnids):
    """The words of each wnid ("bullfrog, Rana catesbeiana"), or the wnid itself when it is not an ILSVRC class."""
    table = class_table()
    return [table.get(w, w) for w in wnids]


class LayoutError(UserError, ValueError):
    """A data folder in none of the layouts read here, or a label file that does not fit its images."""


def label_file(root, name):
    """The first of val/NAME, NAME, ILSVRC2012_devkit_t12/data/NAME under `root` that exists, or None."""
    root = pathlib.Path(root)
    for candidate in (root / "val" / name, root / name, root / "ILSVRC2012_devkit_t12" / "data" / name):
        if candidate.is_file():
            return candidate
    return None


def flat_val_wnids(root, classes):
    """{image file name: wnid} of a flat val/ folder from whichever label file is there (see the module's list)."""
    root = pathlib.Path(root)
    ground_truth, meta = label_file(root, DEVKIT_GROUND_TRUTH), label_file(root, DEVKIT_META)
    if ground_truth and meta:
        ids = devkit_wnids(meta)
        lines = [line.strip() for line in ground_truth.read_text().splitlines() if line.strip()]
        return {f"ILSVRC2012_val_{i + 1:08d}.JPEG": ids[int(v)] for i, v in enumerate(lines)}
    kaggle = label_file(root, KAGGLE_SOLUTION)
    if kaggle:
        with open(kaggle, newline="") as f:
            return {row["ImageId"] + ".JPEG": row["PredictionString"].split()[0] for row in csv.DictReader(f)}
    caffe = label_file(root, CAFFE_VAL)
    if caffe:
        labels = {}
        for line in caffe.read_text().splitlines():
            if line.strip():
                name, index = line.split()
                if not 0 <= int(index) < len(classes):
                    raise LayoutError(f"{caffe}: label {index} of {name} is not an index of the {len(classes)} "
                                      "sorted classes of train/")
                labels[pathlib.Path(name).name] = classes[int(index)]
        return labels
    val = root / "val"
    found = (sorted(p.name for p in val.iterdir())[:3] if val.is_dir() else []) + \
        sorted(p.name for p in root.iterdir())[:5]
    raise LayoutError(f"{root}/val holds images but no class folders and no label file; found {', '.join(found)}; "
                      f"the layouts read: {'; '.join(LAYOUTS)}")


def devkit_wnids(meta):
    """{devkit id: wnid} from the devkit's meta.mat (the 1,000 leaf synsets have ids 1..1000)."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise LayoutError(f"reading {meta} needs scipy (pip install scipy), or use Kaggle's {KAGGLE_SOLUTION} or "
                          f"Caffe's {CAFFE_VAL} instead") from None
    synsets = loadmat(str(meta), squeeze_me=True)["synsets"]
    return {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets}


def labelled_flat_val(root, images, classes):
    """[(path, label)] of a flat val/ folder's `images`, labels indexing `classes` (the sorted wnids of train/).
    An image without a label, or a label naming a class train/ does not have, is a LayoutError naming it."""
    wnids = flat_val_wnids(root, classes)
    index = {c: k for k, c in enumerate(classes)}
    labelled = []
    for path in images:
        name = pathlib.Path(path).name
        if name not in wnids:
            raise LayoutError(f"{path} has no label in the label file; check that it belongs to this val/ folder")
        if wnids[name] not in index:
            raise LayoutError(f"{path} is labelled {wnids[name]}, which train/ has no folder for")
        labelled.append((str(path), index[wnids[name]]))
    return labelled
