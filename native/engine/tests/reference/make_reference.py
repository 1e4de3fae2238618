#!/usr/bin/env python3
"""Reference outputs for Candela's tiny random-weight fixtures.

Re-implements the weight generator of `native/engine/src/fixtures.rs` in numpy (bit-for-bit),
builds the Hugging Face models with those weights (float32, eager attention) and writes
`native/engine/tests/fixtures/reference.json`. It also checks that the files written by the
Rust code hold exactly the same weights (GGUF via llama.cpp's `gguf` reader, safetensors via
`safetensors`), and tokenizes the BERT inputs with the Rust-written `tokenizer.json`.

Regenerate (from the repository root):

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch transformers tokenizers numpy safetensors gguf accelerate sentence-transformers
    CANDELA_FIXTURES_OUT=/tmp/candela-fixtures cargo test --release -p candela-engine \
        --test fixtures_roundtrip -- --ignored write_fixtures
    /tmp/refvenv/bin/python native/engine/tests/reference/make_reference.py /tmp/candela-fixtures

Generation rules (same as fixtures.rs): per HF tensor name,
seed = fnv1a64(utf8(name)) ^ 0x9E3779B97F4A7C15; splitmix64 stream; element k (row-major in the
HF shape) uses the (k+1)-th output x: u = (x >> 40) / 2**24, r = 2u - 1 (float64);
module = second-to-last dot segment: contains "norm" -> weight 1 + 0.1 r, bias 0.05 r;
contains "embed" -> 0.5 r; other bias -> 0.1 r; 2-D Linear [out, in] -> r / sqrt(in); cast f32.
"""

import json
import math
import os
import platform
import sys

import numpy as np

MASK64 = (1 << 64) - 1
BASE_SEED = 0x9E3779B97F4A7C15
GOLDEN = 0x9E3779B97F4A7C15

# ---------------------------------------------------------------- generator


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & MASK64
    return h


def tensor_values(name: str, shape) -> np.ndarray:
    parts = name.split(".")
    last = parts[-1]
    module = parts[-2].lower() if len(parts) > 1 else ""
    is_bias = last == "bias"
    n = int(np.prod(shape, dtype=np.int64))
    seed = fnv1a64(name.encode("utf-8")) ^ BASE_SEED
    with np.errstate(over="ignore"):
        k = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(seed) + k * np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float64) / 16777216.0
    r = 2.0 * u - 1.0
    if "norm" in module:
        v = 1.0 + r * 0.1 if not is_bias else r * 0.05
    elif "embed" in module:
        v = r * 0.5
    elif is_bias:
        v = r * 0.1
    else:
        assert len(shape) == 2, name
        v = r * (1.0 / math.sqrt(float(shape[1])))
    return v.astype(np.float32).reshape(shape)


# ---------------------------------------------------------------- model specs

LLM = dict(vocab=288, hidden=64, intermediate=128, layers=2, heads=4, kv_heads=2, head_dim=16,
           context=128, rope_theta=10000.0, rms_eps=1e-6)
BERT = dict(hidden=32, layers=2, heads=4, intermediate=64, max_position=64, type_vocab=2,
            layer_norm_eps=1e-12)

PROMPTS = [
    [72, 101, 108, 108, 111, 32, 119, 111],  # "Hello wo" as bytes
    [273, 117, 115, 101, 114, 10, 72, 105, 260, 262, 274, 10, 273],  # specials + merged ids
]
SENTENCES = [
    "Hello, zebra world!",
    "The cat sat on the mat.",
    "The quick brown fox jumps over the lazy dog, and the dog sleeps in the city of Paris.",
]
PAIRS = [
    ["What is the capital of France?", "Paris is the capital of France."],
    ["How fast is Rust?", "The quick brown fox jumps over the lazy dog."],
    ["Where is the cat?", "The cat sat on the mat."],
]


def llm_hf_tensors(arch):
    d = LLM
    kv = d["kv_heads"] * d["head_dim"]
    h, i = d["hidden"], d["intermediate"]
    v = [("model.embed_tokens.weight", [d["vocab"], h])]
    for l in range(d["layers"]):
        p = f"model.layers.{l}"
        v += [(f"{p}.input_layernorm.weight", [h]),
              (f"{p}.self_attn.q_proj.weight", [h, h]),
              (f"{p}.self_attn.k_proj.weight", [kv, h]),
              (f"{p}.self_attn.v_proj.weight", [kv, h])]
        if arch == "qwen2":
            v += [(f"{p}.self_attn.q_proj.bias", [h]),
                  (f"{p}.self_attn.k_proj.bias", [kv]),
                  (f"{p}.self_attn.v_proj.bias", [kv])]
        v += [(f"{p}.self_attn.o_proj.weight", [h, h]),
              (f"{p}.post_attention_layernorm.weight", [h]),
              (f"{p}.mlp.gate_proj.weight", [i, h]),
              (f"{p}.mlp.up_proj.weight", [i, h]),
              (f"{p}.mlp.down_proj.weight", [h, i])]
    v.append(("model.norm.weight", [h]))
    if arch == "llama":
        v.append(("lm_head.weight", [d["vocab"], h]))
    return v


GGUF_NAMES = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def gguf_name(hf):
    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    if hf in fixed:
        return fixed[hf]
    rest = hf[len("model.layers."):]
    layer, rest = rest.split(".", 1)
    module, suffix = rest.rsplit(".", 1)
    return f"blk.{layer}.{GGUF_NAMES[module]}.{suffix}"


def llama_permute(w, n_head):
    # convert_hf_to_gguf.py LlamaModel.permute
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def bert_hf_tensors(cross):
    d = BERT
    h, i = d["hidden"], d["intermediate"]
    p = "bert." if cross else ""
    vocab_size = len(bert_vocab_from_rust_order())
    v = [(f"{p}embeddings.word_embeddings.weight", [vocab_size, h]),
         (f"{p}embeddings.position_embeddings.weight", [d["max_position"], h]),
         (f"{p}embeddings.token_type_embeddings.weight", [d["type_vocab"], h]),
         (f"{p}embeddings.LayerNorm.weight", [h]),
         (f"{p}embeddings.LayerNorm.bias", [h])]
    for l in range(d["layers"]):
        q = f"{p}encoder.layer.{l}"
        for m in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]:
            v += [(f"{q}.{m}.weight", [h, h]), (f"{q}.{m}.bias", [h])]
        v += [(f"{q}.attention.output.LayerNorm.weight", [h]), (f"{q}.attention.output.LayerNorm.bias", [h]),
              (f"{q}.intermediate.dense.weight", [i, h]), (f"{q}.intermediate.dense.bias", [i]),
              (f"{q}.output.dense.weight", [h, i]), (f"{q}.output.dense.bias", [h]),
              (f"{q}.output.LayerNorm.weight", [h]), (f"{q}.output.LayerNorm.bias", [h])]
    v += [(f"{p}pooler.dense.weight", [h, h]), (f"{p}pooler.dense.bias", [h])]
    if cross:
        v += [("classifier.weight", [1, h]), ("classifier.bias", [1])]
    return v


_BERT_VOCAB = None


def bert_vocab_from_rust_order():
    return _BERT_VOCAB


def r6(x):
    return float(f"{float(x):.6g}")


def r6list(a):
    return [r6(x) for x in np.asarray(a).reshape(-1)]


# ---------------------------------------------------------------- checks against Rust files


def check_gguf(path, arch, checks):
    import gguf

    reader = gguf.GGUFReader(path)
    by_name = {t.name: t for t in reader.tensors}
    expected = llm_hf_tensors(arch)
    assert len(by_name) == len(expected), (path, sorted(by_name))
    for hf, shape in expected:
        w = tensor_values(hf, shape)
        if arch == "llama" and hf.endswith("self_attn.q_proj.weight"):
            w = llama_permute(w, LLM["heads"])
        elif arch == "llama" and hf.endswith("self_attn.k_proj.weight"):
            w = llama_permute(w, LLM["kv_heads"])
        t = by_name[gguf_name(hf)]
        data = np.asarray(t.data).reshape(shape)
        assert data.dtype == np.float32 and np.array_equal(data, w), f"{path}: {hf} differs"
    fields = reader.fields

    def field(k):
        f = fields[k]
        return f.contents() if hasattr(f, "contents") else f.parts[f.data[0]]

    assert field("general.architecture") == arch
    assert int(field(f"{arch}.attention.head_count_kv")) == LLM["kv_heads"]
    checks[f"gguf_{arch}_f32_weights_equal_python_generator"] = True


def check_safetensors(dir_, cross, checks):
    from safetensors.numpy import load_file

    st = load_file(os.path.join(dir_, "model.safetensors"))
    expected = bert_hf_tensors(cross)
    assert len(st) == len(expected), sorted(st)
    for name, shape in expected:
        assert np.array_equal(st[name], tensor_values(name, shape)), f"{dir_}: {name} differs"
    checks[f"safetensors_{'cross_encoder' if cross else 'embedder'}_equal_python_generator"] = True


# ---------------------------------------------------------------- main


def main():
    global _BERT_VOCAB
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    fx = sys.argv[1]
    out_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "reference.json")

    import tokenizers
    import torch
    import transformers
    from transformers import (BertConfig, BertForSequenceClassification, BertModel, LlamaConfig,
                              LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM)

    torch.manual_seed(0)
    torch.set_num_threads(1)
    checks = {}

    bert_dir = os.path.join(fx, "tiny-bert-cls")
    with open(os.path.join(bert_dir, "vocab.txt"), encoding="utf-8") as f:
        _BERT_VOCAB = [l for l in f.read().split("\n") if l]

    # ---- LLMs
    major = int(transformers.__version__.split(".")[0])
    llm_out = {}
    for arch in ["qwen2", "llama"]:
        check_gguf(os.path.join(fx, f"tiny-{arch}-f32.gguf"), arch, checks)
        d = LLM
        common = dict(vocab_size=d["vocab"], hidden_size=d["hidden"], intermediate_size=d["intermediate"],
                      num_hidden_layers=d["layers"], num_attention_heads=d["heads"],
                      num_key_value_heads=d["kv_heads"], max_position_embeddings=d["context"],
                      rms_norm_eps=d["rms_eps"], hidden_act="silu", attn_implementation="eager",
                      bos_token_id=272, eos_token_id=274 if arch == "qwen2" else 272)
        if major >= 5:
            common["rope_parameters"] = {"rope_type": "default", "rope_theta": d["rope_theta"]}
        else:
            common["rope_theta"] = d["rope_theta"]
        if arch == "qwen2":
            cfg = Qwen2Config(tie_word_embeddings=True, use_sliding_window=False, **common)
            model = Qwen2ForCausalLM(cfg)
        else:
            cfg = LlamaConfig(tie_word_embeddings=False, attention_bias=False, mlp_bias=False,
                              head_dim=d["head_dim"], **common)
            model = LlamaForCausalLM(cfg)
        sd = {n: torch.from_numpy(tensor_values(n, s).copy()) for n, s in llm_hf_tensors(arch)}
        res = model.load_state_dict(sd, strict=False)
        assert not res.unexpected_keys, res.unexpected_keys
        assert set(res.missing_keys) <= ({"lm_head.weight"} if arch == "qwen2" else set()), res.missing_keys
        if arch == "qwen2":
            assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "not tied"
            assert model.model.layers[0].self_attn.q_proj.bias is not None
        model = model.float().eval()
        assert model.config._attn_implementation == "eager"
        prompts = []
        for ids in PROMPTS:
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].float()
                # incremental decode with KV cache must agree with the full pass
                out = model(input_ids=torch.tensor([ids[:-1]]), use_cache=True)
                step = model(input_ids=torch.tensor([ids[-1:]]), past_key_values=out.past_key_values,
                             use_cache=True).logits[0, -1]
                assert torch.allclose(step, logits[-1], atol=1e-5)
            prompts.append({
                "input_ids": ids,
                "logits": [r6list(row) for row in logits.numpy()],
                "argmax": [int(x) for x in logits.argmax(-1)],
            })
        llm_out[arch] = {
            "gguf_file": f"tiny-{arch}-f32.gguf",
            "hf_class": type(model).__name__,
            "tie_word_embeddings": arch == "qwen2",
            "prompts": prompts,
        }

    # ---- BERT
    tok = tokenizers.Tokenizer.from_file(os.path.join(bert_dir, "tokenizer.json"))
    for name in ["tiny-bert-cls", "tiny-bert-mean"]:
        check_safetensors(os.path.join(fx, name), False, checks)
    ce_dir = os.path.join(fx, "tiny-bert-cross-encoder")
    check_safetensors(ce_dir, True, checks)
    ce_tok = tokenizers.Tokenizer.from_file(os.path.join(ce_dir, "tokenizer.json"))

    def bert_cfg(cross):
        b = BERT
        kw = dict(vocab_size=len(_BERT_VOCAB), hidden_size=b["hidden"], num_hidden_layers=b["layers"],
                  num_attention_heads=b["heads"], intermediate_size=b["intermediate"], hidden_act="gelu",
                  max_position_embeddings=b["max_position"], type_vocab_size=b["type_vocab"],
                  layer_norm_eps=b["layer_norm_eps"], pad_token_id=0, attn_implementation="eager")
        if cross:
            kw["num_labels"] = 1
        return BertConfig(**kw)

    def load(model, cross):
        sd = {n: torch.from_numpy(tensor_values(n, s).copy()) for n, s in bert_hf_tensors(cross)}
        res = model.load_state_dict(sd, strict=False)
        assert not res.unexpected_keys, res.unexpected_keys
        assert all("position_ids" in k for k in res.missing_keys), res.missing_keys
        return model.float().eval()

    embedder = load(BertModel(bert_cfg(False)), False)
    encs = [tok.encode(s) for s in SENTENCES]
    n = max(len(e.ids) for e in encs)
    ids = torch.tensor([e.ids + [0] * (n - len(e.ids)) for e in encs])
    mask = torch.tensor([[1] * len(e.ids) + [0] * (n - len(e.ids)) for e in encs])
    with torch.no_grad():
        hidden = embedder(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
        for i, e in enumerate(encs):  # padding must not change the result
            alone = embedder(input_ids=torch.tensor([e.ids])).last_hidden_state[0]
            assert torch.allclose(alone, hidden[i, : len(e.ids)], atol=1e-5)
    cls = torch.nn.functional.normalize(hidden[:, 0], dim=-1)
    m = mask.unsqueeze(-1).float()
    mean = torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=-1)

    cross = load(BertForSequenceClassification(bert_cfg(True)), True)
    pencs = [ce_tok.encode(a, b) for a, b in PAIRS]
    n = max(len(e.ids) for e in pencs)
    pids = torch.tensor([e.ids + [0] * (n - len(e.ids)) for e in pencs])
    ptt = torch.tensor([e.type_ids + [0] * (n - len(e.ids)) for e in pencs])
    pmask = torch.tensor([[1] * len(e.ids) + [0] * (n - len(e.ids)) for e in pencs])
    with torch.no_grad():
        ce_logits = cross(input_ids=pids, attention_mask=pmask, token_type_ids=ptt).logits[:, 0]

    # ---- optional: transformers' own GGUF loader reads the Rust GGUF back to the same weights
    for arch, cls_ in [("qwen2", Qwen2ForCausalLM), ("llama", LlamaForCausalLM)]:
        key = f"transformers_gguf_loader_{arch}_weights_equal"
        try:
            m2 = cls_.from_pretrained(fx, gguf_file=f"tiny-{arch}-f32.gguf", dtype=torch.float32)
            sd2 = m2.state_dict()
            ok = all(torch.equal(sd2[nm], torch.from_numpy(tensor_values(nm, s))) for nm, s in llm_hf_tensors(arch))
            checks[key] = bool(ok)
        except Exception as e:  # noqa: BLE001 - informative only
            checks[key] = f"skipped: {type(e).__name__}: {str(e)[:160]}"

    # ---- the Rust-written BERT directories load with transformers (and sentence-transformers)
    with torch.no_grad():
        m3 = BertModel.from_pretrained(bert_dir, attn_implementation="eager").eval()
        h3 = m3(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
        checks["transformers_from_pretrained_bert_equal"] = bool(torch.equal(h3, hidden))
        c3 = BertForSequenceClassification.from_pretrained(ce_dir, attn_implementation="eager").eval()
        l3 = c3(input_ids=pids, attention_mask=pmask, token_type_ids=ptt).logits[:, 0]
        checks["transformers_from_pretrained_cross_encoder_max_abs_diff"] = float((l3 - ce_logits).abs().max())
    try:
        from sentence_transformers import CrossEncoder, SentenceTransformer

        for name, want in [("tiny-bert-cls", cls), ("tiny-bert-mean", mean)]:
            st_model = SentenceTransformer(os.path.join(fx, name), device="cpu")
            got = torch.from_numpy(st_model.encode(SENTENCES, convert_to_numpy=True))
            checks[f"sentence_transformers_{name}_close"] = bool(torch.allclose(got, want, atol=1e-5))
        ce = CrossEncoder(ce_dir, device="cpu", activation_fn=torch.nn.Identity())
        got = torch.tensor(ce.predict(PAIRS))
        checks["sentence_transformers_cross_encoder_close"] = bool(torch.allclose(got, ce_logits, atol=1e-5))
    except ImportError as e:
        checks["sentence_transformers"] = f"skipped: {e}"

    samples = {}
    for name, shape in [("model.embed_tokens.weight", [288, 64]),
                        ("model.layers.0.self_attn.q_proj.weight", [64, 64]),
                        ("model.layers.0.self_attn.k_proj.bias", [32]),
                        ("model.layers.1.input_layernorm.weight", [64]),
                        ("model.layers.1.mlp.down_proj.weight", [64, 128]),
                        ("lm_head.weight", [288, 64]),
                        ("embeddings.LayerNorm.bias", [32]),
                        ("encoder.layer.0.attention.self.query.weight", [32, 32]),
                        ("bert.pooler.dense.bias", [32]),
                        ("classifier.weight", [1, 32])]:
        v = tensor_values(name, shape).reshape(-1)
        samples[name] = {"shape": shape, "first": [float(x) for x in v[:8]],
                         "sum_f64": math.fsum(float(x) for x in v)}

    result = {
        "reference": "transformers",
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                     "tokenizers": tokenizers.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "precision": "float32, eager attention, CPU; values rounded to 6 significant digits",
        "generator": {"base_seed": "0x9E3779B97F4A7C15",
                      "rules": __doc__.split("Generation rules (same as fixtures.rs): ")[1].strip()},
        "llm": {"dims": LLM, **llm_out},
        "bert": {
            "dims": {**BERT, "vocab": len(_BERT_VOCAB)},
            "embedder": {
                "hf_class": "BertModel",
                "sentences": SENTENCES,
                "input_ids": [e.ids for e in encs],
                "tokens": [e.tokens for e in encs],
                "cls_normalized": [r6list(x) for x in cls.numpy()],
                "mean_normalized": [r6list(x) for x in mean.numpy()],
            },
            "cross_encoder": {
                "hf_class": "BertForSequenceClassification",
                "pairs": PAIRS,
                "input_ids": [e.ids for e in pencs],
                "token_type_ids": [e.type_ids for e in pencs],
                "logits": r6list(ce_logits.numpy()),
            },
        },
        "weight_samples": samples,
        "checks": checks,
    }
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")
    print(f"wrote {os.path.normpath(out_path)} ({os.path.getsize(out_path)} bytes)")
    print(json.dumps(checks, indent=1))


if __name__ == "__main__":
    main()
