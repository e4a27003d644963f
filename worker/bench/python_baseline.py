#!/usr/bin/env python3
"""Python baseline for `tally bench inference`: onnxruntime + Pillow, same recipe.

Runs YOLOX exactly as shared/assets/README.md describes (Pillow bilinear resize,
114 canvas, BGR float32 NCHW, grid decode, score > 0.3, class-wise NMS 0.45)
and prints, per image, the end-to-end milliseconds (decode -> letterbox ->
model -> detections) and the model-run milliseconds, as medians.

    python3 worker/bench/python_baseline.py --threads 1 --iterations 30 \
        --model ../shared/assets/models/yolox_nano.onnx ../shared/assets/images/*.jpg

`--json` prints one JSON document instead of the table; `--dump-input FILE`
writes the letterboxed tensor of the first image as raw float32 (for checking
the Rust pre-processing against Pillow).
"""

import argparse
import io
import json
import statistics
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

SCORE_THR = 0.3
NMS_THR = 0.45


def letterbox(data, size):
    img = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = img.size
    r = min(size / w, size / h)
    resized = img.resize((max(1, int(w * r)), max(1, int(h * r))), Image.BILINEAR)
    canvas = np.full((size, size, 3), 114, dtype=np.uint8)
    arr = np.asarray(resized)
    canvas[: arr.shape[0], : arr.shape[1]] = arr
    x = canvas[:, :, ::-1].transpose(2, 0, 1).astype(np.float32)[None]
    return np.ascontiguousarray(x), r, w, h


def grids(size):
    xs, ys, ss = [], [], []
    for stride in (8, 16, 32):
        n = size // stride
        gy, gx = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        xs.append(gx.reshape(-1))
        ys.append(gy.reshape(-1))
        ss.append(np.full(n * n, stride))
    return (np.concatenate(xs)[:, None].astype(np.float32),
            np.concatenate(ys)[:, None].astype(np.float32),
            np.concatenate(ss)[:, None].astype(np.float32))


def nms(boxes, scores):
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(x1[i], x1[order[1:]])
        yy1 = np.maximum(y1[i], y1[order[1:]])
        xx2 = np.minimum(x2[i], x2[order[1:]])
        yy2 = np.minimum(y2[i], y2[order[1:]])
        inter = np.maximum(0.0, xx2 - xx1) * np.maximum(0.0, yy2 - yy1)
        iou = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[1:][iou <= NMS_THR]
    return keep


def postprocess(out, grid, r, w, h):
    gx, gy, stride = grid
    p = out[0]
    cx = (p[:, 0:1] + gx) * stride
    cy = (p[:, 1:2] + gy) * stride
    bw = np.exp(p[:, 2:3]) * stride
    bh = np.exp(p[:, 3:4]) * stride
    scores = p[:, 4:5] * p[:, 5:]
    cls = scores.argmax(1)
    score = scores[np.arange(len(cls)), cls]
    m = score > SCORE_THR
    boxes = np.concatenate([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)[m] / r
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    cls, score = cls[m], score[m]
    dets = []
    for c in np.unique(cls):
        idx = np.where(cls == c)[0]
        for k in nms(boxes[idx], score[idx]):
            dets.append((int(c), float(score[idx][k]), boxes[idx][k].tolist()))
    return sorted(dets, key=lambda d: -d[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--dump-input")
    ap.add_argument("images", nargs="+")
    a = ap.parse_args()

    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    size = inp.shape[2]
    grid = grids(size)

    results = []
    for path in a.images:
        data = open(path, "rb").read()
        if a.dump_input and not results:
            letterbox(data, size)[0].tofile(a.dump_input)
        total, infer = [], []
        for i in range(a.iterations + 3):
            t0 = time.perf_counter()
            x, r, w, h = letterbox(data, size)
            t1 = time.perf_counter()
            out = sess.run(None, {inp.name: x})[0]
            t2 = time.perf_counter()
            dets = postprocess(out, grid, r, w, h)
            t3 = time.perf_counter()
            if i >= 3:  # warm-up runs are not counted
                total.append((t3 - t0) * 1e3)
                infer.append((t2 - t1) * 1e3)
        results.append({
            "image": path, "ms_p50": statistics.median(total),
            "infer_ms_p50": statistics.median(infer),
            "pre_post_ms_p50": statistics.median(total) - statistics.median(infer),
            "detections": len(dets),
        })

    if a.json:
        print(json.dumps({"bench": "python_baseline", "threads": a.threads,
                          "onnxruntime": ort.__version__, "images": results}))
    else:
        print(f"onnxruntime {ort.__version__}, threads {a.threads}, {a.iterations} iterations")
        for res in results:
            print(f"{res['image']}: {res['ms_p50']:.2f} ms end to end, "
                  f"{res['infer_ms_p50']:.2f} ms model, {res['pre_post_ms_p50']:.2f} ms pre+post, "
                  f"{res['detections']} detections")


if __name__ == "__main__":
    main()
