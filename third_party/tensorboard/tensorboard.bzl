"""@tensorboard: PyPI's TensorBoard wheel, pinned by sha256, unpacked as site-packages would be.

The tests read trainlab's event files back with the real TensorBoard (its event reader, and its
HTTP server): tests/tensorboard. Bazel downloads the wheel once into its repository cache, as
`--config=torch2` fetches torch's; the default build's binaries never depend on it.

TensorBoard runs on Debian's /usr/bin/python3 with Debian's python3-protobuf (3.21, the
protobuf the C++ side links too), python3-grpcio, python3-markdown, python3-werkzeug,
python3-absl and python3-numpy (./bazelw installs them). 2.18.0 is the newest TensorBoard whose
generated code runs on protobuf 3.21 (2.19 and later import google.protobuf.runtime_version,
new in protobuf 5). Without the optional tensorboard-data-server wheel, TensorBoard reads event
files with its Python reader (`--load_fast=false`), the reader that honours purge events.

Users watch their runs with a TensorBoard of their own (`pip install tensorboard`): any version
from 2.x reads these files.
"""

TENSORBOARD_WHEEL = {
    "version": "2.18.0",
    "url": "https://files.pythonhosted.org/packages/b1/de/021c1d407befb505791764ad2cbd56ceaaa53a746baed01d2e2143f05f18/tensorboard-2.18.0-py3-none-any.whl",
    "sha256": "107ca4821745f73e2aefa02c50ff70a9b694f39f790b11e6f682f7d326745eab",
}

_BUILD = """\
# TensorBoard {version} from PyPI (third_party/tensorboard/tensorboard.bzl): put this folder on
# PYTHONPATH (the folder above tensorboard/version.py) and run /usr/bin/python3.
package(default_visibility = ["//visibility:public"])

filegroup(
    name = "tensorboard",
    srcs = glob(["tensorboard/**"], exclude = ["**/__pycache__/**"]),
)

exports_files(["tensorboard/version.py"])
"""

def _tensorboard_repository_impl(ctx):
    w = TENSORBOARD_WHEEL
    ctx.report_progress("tensorboard %s wheel (pinned by sha256; kept in Bazel's repository cache)" %
                        w["version"])
    ctx.download_and_extract(url = w["url"], sha256 = w["sha256"], type = "zip")
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    ctx.file("BUILD.bazel", _BUILD.format(version = w["version"]))

tensorboard_repository = repository_rule(
    implementation = _tensorboard_repository_impl,
    doc = "PyPI's TensorBoard wheel, pinned, for the tests that read event files back.",
)
