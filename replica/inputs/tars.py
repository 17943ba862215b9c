"""ILSVRC-2012's two tar files as downloaded, read in place: no 140 GB extraction before `replica.inputs.prepare`.

`ILSVRC2012_img_train.tar` holds 1,000 tars, one per class (`n01440764.tar`, ...), each holding that class's
JPEGs; `ILSVRC2012_img_val.tar` holds the 50,000 validation JPEGs flat, labelled by a label file beside it (the
devkit's, Kaggle's or Caffe's: replica.inputs.ilsvrc). Neither tar is compressed, so every JPEG is a byte range of the
file it was downloaded in: one pass over the tar headers (each header is read, each image skipped over) lists
those ranges, and the images are then read with positioned reads, in any order, on every core.
"""
import dataclasses
import os
import pathlib
import tarfile

from replica.inputs import ilsvrc
from replica.errors import UserError

TRAIN_TAR, VAL_TAR = "ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"


@dataclasses.dataclass(frozen=True)
class Member:
    """One image inside a tar: the tar file, the image's byte range in it, and its name."""
    tar: str
    offset: int
    size: int
    name: str


def found(root):
    """Whether `root` holds the two tar files."""
    root = pathlib.Path(root)
    return (root / TRAIN_TAR).is_file() and (root / VAL_TAR).is_file()


def images_in(path, fileobj=None, base=0):
    """[Member] of the regular files of a tar (inside another at byte `base` when `fileobj` is that one)."""
    try:
        with tarfile.open(name=None if fileobj else path, fileobj=fileobj, mode="r:") as tar:
            return [Member(str(path), base + m.offset_data, m.size, pathlib.Path(m.name).name)
                    for m in tar if m.isfile()]
    except tarfile.TarError as e:
        raise UserError(f"{path} is not a readable tar file ({e}); download it again") from None


class Window:
    """A file object showing the byte range [start, start + size) of a file: a tar inside a tar."""

    def __init__(self, f, start, size):
        self.f, self.start, self.size, self.position = f, start, size, 0

    def read(self, n=-1):
        n = self.size - self.position if n is None or n < 0 else min(n, self.size - self.position)
        self.f.seek(self.start + self.position)
        data = self.f.read(n)
        self.position += len(data)
        return data

    def seek(self, position, whence=0):
        self.position = {0: position, 1: self.position + position, 2: self.size + position}[whence]
        return self.position

    def tell(self):
        return self.position


def train_members(train_tar):
    """{wnid: [Member]} of the training tar: the class tars it holds, each listed in place."""
    classes = {}
    with open(train_tar, "rb") as f:
        for inner in images_in(train_tar):
            if not inner.name.endswith(".tar"):
                continue
            wnid = inner.name[:-len(".tar")]
            members = images_in(f"{train_tar}:{inner.name}", Window(f, inner.offset, inner.size), inner.offset)
            classes[wnid] = [dataclasses.replace(m, tar=str(train_tar)) for m in members]
    if not classes:
        raise UserError(f"{train_tar} holds no class tars (n01440764.tar, ...); is it ILSVRC2012_img_train.tar?")
    return classes


def list_tars(root):
    """(classes: the sorted wnids, train [(Member, label)], val [(Member, label)]) of the two tars in `root`,
    the validation labels from the label file beside them."""
    root = pathlib.Path(root)
    by_class = train_members(root / TRAIN_TAR)
    classes = sorted(by_class)
    train = [(m, label) for label, wnid in enumerate(classes) for m in by_class[wnid]]
    wnids = ilsvrc.flat_val_wnids(root, classes)
    index = {c: k for k, c in enumerate(classes)}
    val = []
    for m in images_in(root / VAL_TAR):
        if m.name not in wnids:
            raise UserError(f"{root / VAL_TAR}: {m.name} has no label in the label file beside the tars")
        val.append((m, index[wnids[m.name]]))
    return classes, train, val


def read(member):
    """The bytes of one image (a positioned read: safe from many threads at once)."""
    fd = os.open(member.tar, os.O_RDONLY)
    try:
        return os.pread(fd, member.size, member.offset)
    finally:
        os.close(fd)
