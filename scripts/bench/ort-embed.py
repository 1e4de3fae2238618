"""Embeddings per second of an ONNX BERT embedder under onnxruntime: the
peer of Candela's embedder in bench:engine. Same texts, same batches, the
same work per text (tokenize, pad to the batch, run, mean-pool, normalise).

Usage: ort-embed.py --jar JAR --onnx NAME --tokenizer TOKENIZER.json --texts TEXTS.json --threads N --rounds R
TEXTS.json: {"workload name": [[text, ...] batch, ...], ...}; prints JSON {name: texts/s, ..., "version": ...}.
"""
import argparse
import io
import json
import os
import time
import zipfile

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jar", required=True)
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--texts", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    with zipfile.ZipFile(a.jar) as z:
        model = z.read(a.onnx)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    inputs = {i.name for i in sess.get_inputs()}
    tok = Tokenizer.from_file(a.tokenizer)
    tok.no_padding()
    tok.enable_truncation(256)
    workloads = json.load(open(a.texts))

    def embed(batch):
        encs = tok.encode_batch(batch)
        n = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), n), dtype=np.int64)
        mask = np.zeros_like(ids)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = sess.run(None, feed)[0]
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(1) / m.sum(1)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    out = {"version": ort.__version__}
    for name, batches in workloads.items():
        embed(batches[0])  # warm-up
        rates = []
        for _ in range(a.rounds):
            t = time.perf_counter()
            for b in batches:
                embed(b)
            rates.append(sum(len(b) for b in batches) / (time.perf_counter() - t))
        out[name] = sorted(rates)[len(rates) // 2]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
