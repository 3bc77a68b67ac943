#!/usr/bin/python3
"""Writes small random XLM-R-shaped Hugging Face checkpoints for the import-hf tests.

No safetensors package on Debian: safetensors_io.py writes the format with numpy + json,
laid out as the reference writer does (header padded with spaces to a multiple of 8,
tensors in header order, no gaps).

Output (in --out): model_f32/f16/bf16.safetensors (XLMRobertaForTokenClassification names with
the roberta. prefix + classifier + an MLM head lm_head.* with the tied decoder, plus the
position_ids buffer and a pooler, which the importer skips), model_bert.safetensors (BERT
spellings: bert. prefix, LayerNorm gamma/beta, cls.predictions.*), broken variants
(missing / wrongly shaped / unexpected tensors), config.json, a SentencePiece-format
spm.model with V - 2 pieces, and reference.pt with the float32 master tensors by peprime name.
"""
import argparse
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

L, C, NH, FF, K, T = 2, 32, 4, 64, 7, 30
PIECES = 97
V = PIECES + 2          # fairseq / XLM-R: <s> <pad> </s> <unk> + pieces[3:] + <mask>
MAXPOS = T + 2


def peprime_tensors(gen):
    """float32 master tensors by peprime (docs/model.md) name."""
    def r(*shape, scale=0.5):
        return torch.randn(*shape, generator=gen) * scale
    t = {
        'embeddings.word_embeddings.weight': r(V, C),
        'embeddings.position_embeddings.weight': r(MAXPOS, C),
        'embeddings.token_type_embeddings.weight': r(1, C),
        'embeddings.LayerNorm.weight': 1 + r(C, scale=0.1),
        'embeddings.LayerNorm.bias': r(C, scale=0.1),
    }
    for l in range(L):
        p = f'encoder.layer.{l}.'
        for m in ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense']:
            t[p + m + '.weight'] = r(C, C)
            t[p + m + '.bias'] = r(C, scale=0.1)
        t[p + 'attention.output.LayerNorm.weight'] = 1 + r(C, scale=0.1)
        t[p + 'attention.output.LayerNorm.bias'] = r(C, scale=0.1)
        t[p + 'intermediate.dense.weight'] = r(FF, C)
        t[p + 'intermediate.dense.bias'] = r(FF, scale=0.1)
        t[p + 'output.dense.weight'] = r(C, FF)
        t[p + 'output.dense.bias'] = r(C, scale=0.1)
        t[p + 'output.LayerNorm.weight'] = 1 + r(C, scale=0.1)
        t[p + 'output.LayerNorm.bias'] = r(C, scale=0.1)
    t['classifier.weight'] = r(K, C)
    t['classifier.bias'] = r(K, scale=0.1)
    t['lm_head.dense.weight'] = r(C, C)
    t['lm_head.dense.bias'] = r(C, scale=0.1)
    t['lm_head.layer_norm.weight'] = 1 + r(C, scale=0.1)
    t['lm_head.layer_norm.bias'] = r(C, scale=0.1)
    t['lm_head.bias'] = r(V, scale=0.1)
    # a few values that stress the conversions: tiny (subnormal in F16), large, negative zero
    w = t['embeddings.word_embeddings.weight']
    w[5, 0], w[5, 1], w[5, 2], w[5, 3] = 3e-6, -60000.0, -0.0, 1e-30
    return t


def hf_names(t):
    """XLMRobertaForMaskedLM/TokenClassification-style names: roberta. prefix, heads outside it."""
    out = {}
    for k, v in t.items():
        out[k if k.startswith(('classifier.', 'lm_head.')) else 'roberta.' + k] = v
    out['lm_head.decoder.weight'] = t['embeddings.word_embeddings.weight']
    out['lm_head.decoder.bias'] = t['lm_head.bias']
    out['roberta.embeddings.position_ids'] = torch.arange(MAXPOS, dtype=torch.int64).unsqueeze(0)
    out['roberta.pooler.dense.weight'] = torch.zeros(C, C)
    out['roberta.pooler.dense.bias'] = torch.zeros(C)
    return out


def bert_names(t):
    out = {}
    for k, v in t.items():
        if k.startswith('lm_head.'):
            k = {'lm_head.dense.weight': 'cls.predictions.transform.dense.weight',
                 'lm_head.dense.bias': 'cls.predictions.transform.dense.bias',
                 'lm_head.layer_norm.weight': 'cls.predictions.transform.LayerNorm.gamma',
                 'lm_head.layer_norm.bias': 'cls.predictions.transform.LayerNorm.beta',
                 'lm_head.bias': 'cls.predictions.bias'}[k]
        elif not k.startswith('classifier.'):
            k = 'bert.' + k.replace('LayerNorm.weight', 'LayerNorm.gamma').replace('LayerNorm.bias', 'LayerNorm.beta')
        out[k] = v
    out['cls.predictions.decoder.weight'] = t['embeddings.word_embeddings.weight']
    out['cls.seq_relationship.weight'] = torch.zeros(2, C)
    return out


def write_safetensors(path, tensors, dtype=None):
    """transformers' layout ({"format": "pt"} metadata); floating tensors cast to `dtype` if given."""
    if dtype is not None:
        tensors = {k: x.to(dtype) if x.is_floating_point() else x for k, x in tensors.items()}
    safetensors_io.write(path, tensors, {'format': 'pt'})


def write_spm(path, pieces):
    """A SentencePiece ModelProto by hand: field 1 = repeated SentencePiece {1: piece, 2: score,
    3: type}, field 2 = a trainer spec stub (skipped by readers that only count pieces)."""
    def varint(n):
        out = b''
        while True:
            b = n & 0x7f
            n >>= 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out
    out = b''
    for i in range(pieces):
        s = ['<unk>', '<s>', '</s>'][i] if i < 3 else f'\u2581p{i}'
        typ = 2 if i == 0 else 3 if i < 3 else 1
        sb = s.encode()
        msg = b'\x0a' + varint(len(sb)) + sb + b'\x15' + struct.pack('<f', -float(i)) + b'\x18' + varint(typ)
        out += b'\x0a' + varint(len(msg)) + msg
    trainer = b'\x18' + varint(PIECES)  # vocab_size field 3
    out += b'\x12' + varint(len(trainer)) + trainer
    with open(path, 'wb') as f:
        f.write(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    ap.add_argument('--seed', type=int, default=1234)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    gen = torch.Generator().manual_seed(a.seed)
    t = peprime_tensors(gen)
    hf = hf_names(t)
    write_safetensors(os.path.join(a.out, 'model_f32.safetensors'), hf)
    write_safetensors(os.path.join(a.out, 'model_f16.safetensors'), hf, torch.float16)
    write_safetensors(os.path.join(a.out, 'model_bf16.safetensors'), hf, torch.bfloat16)
    write_safetensors(os.path.join(a.out, 'model_bert.safetensors'), bert_names(t))
    # the bare encoder (XLMRobertaModel.save_pretrained: no prefix, no heads)
    write_safetensors(os.path.join(a.out, 'model_bare.safetensors'),
                      {k: v for k, v in t.items() if not k.startswith(('classifier.', 'lm_head.'))})
    broken = dict(hf)
    del broken['roberta.encoder.layer.1.output.dense.bias']
    write_safetensors(os.path.join(a.out, 'broken_missing.safetensors'), broken)
    broken = dict(hf)
    broken['roberta.encoder.layer.0.attention.self.key.weight'] = torch.zeros(C, C + 1)
    write_safetensors(os.path.join(a.out, 'broken_shape.safetensors'), broken)
    broken = dict(hf)
    broken['roberta.encoder.layer.0.attention.self.extra.weight'] = torch.zeros(C, C)
    write_safetensors(os.path.join(a.out, 'broken_unexpected.safetensors'), broken)
    cfg = {'architectures': ['XLMRobertaForTokenClassification'], 'model_type': 'xlm-roberta',
           'hidden_size': C, 'num_hidden_layers': L, 'num_attention_heads': NH, 'intermediate_size': FF,
           'vocab_size': V, 'max_position_embeddings': MAXPOS, 'type_vocab_size': 1, 'layer_norm_eps': 1e-05,
           'hidden_act': 'gelu', 'position_embedding_type': 'absolute', 'pad_token_id': 1, 'bos_token_id': 0,
           'eos_token_id': 2, 'hidden_dropout_prob': 0.1, 'attention_probs_dropout_prob': 0.1,
           'id2label': {str(i): f'L{i}' for i in range(K)}, 'torch_dtype': 'float32'}
    with open(os.path.join(a.out, 'config.json'), 'w') as f:
        json.dump(cfg, f, indent=2)
    bad = dict(cfg, num_attention_heads=3, hidden_size=48)
    with open(os.path.join(a.out, 'config_mismatch.json'), 'w') as f:
        json.dump(bad, f, indent=2)
    write_spm(os.path.join(a.out, 'spm.model'), PIECES)
    write_spm(os.path.join(a.out, 'spm_wrong.model'), PIECES + 5)
    torch.save(t, os.path.join(a.out, 'reference.pt'))


if __name__ == '__main__':
    main()
