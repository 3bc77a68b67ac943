#!/usr/bin/python3
"""Reference logits for tests/hf/test_hf_logits.c: the small random XLM-R-shaped model of
make_hf_safetensors.py (written as F32, F16 and BF16 safetensors with Hugging Face names),
run through encoder_ref.py's forward (docs/model.md, dropout off) in float64 on the weights
each file actually holds (float32 master, or rounded to F16 / BF16), for a fixed batch:
B = 2, T = 12, sentence 1 full length, sentence 2 of 7 ids padded with id 1.

Output (in --out): the safetensors files and config.json of make_hf_safetensors.py, and
logits_<f32|f16|bf16>_<tagger|mlm>.safetensors (safetensors_io.write_fixture) holding
input_ids (B, T) int32, labels (B, T) int32, logits float32 (tagger: (B, T, K); mlm: (M, V)
for the M labelled positions in (b, t) order, as pep_model_logits gives them) and loss.
"""
import argparse
import os
import subprocess
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import encoder_ref  # noqa: E402
import make_hf_safetensors as mk  # noqa: E402
import safetensors_io  # noqa: E402

B, T = 2, 12
LEN2 = 7
CONVERT = {'f32': lambda x: x.float(),
           'f16': lambda x: x.half().float(),
           'bf16': lambda x: x.bfloat16().float()}


def batch():
    gen = torch.Generator().manual_seed(7)
    # ids 6 .. V-2: real pieces, away from the special ids and from row 5 (the conversion
    # stress values of make_hf_safetensors.py); <mask> = V - 1 appears once on purpose
    ids = torch.randint(6, mk.V - 1, (B, T), generator=gen)
    ids[:, 0] = encoder_ref.BOS_ID
    ids[0, T - 1] = encoder_ref.EOS_ID
    ids[1, LEN2 - 1] = encoder_ref.EOS_ID
    ids[1, LEN2:] = encoder_ref.PAD_ID
    ids[0, 4] = mk.V - 1
    tags = torch.randint(0, mk.K, (B, T), generator=gen)
    tagger = tags.clone()
    tagger[ids == encoder_ref.PAD_ID] = encoder_ref.IGNORE
    tagger[:, 0] = encoder_ref.IGNORE
    mlm = torch.full((B, T), encoder_ref.IGNORE, dtype=torch.long)
    for b, t in [(0, 1), (0, 4), (0, 9), (1, 2), (1, 5)]:  # labelled (masked) positions
        mlm[b, t] = int(torch.randint(4, mk.V - 1, (1,), generator=gen))
    return ids, tagger, mlm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    a = ap.parse_args()
    subprocess.run([sys.executable, os.path.join(HERE, 'make_hf_safetensors.py'), '--out', a.out], check=True)
    master = torch.load(os.path.join(a.out, 'reference.pt'))
    ids, tagger_labels, mlm_labels = batch()
    torch.set_num_threads(1)
    for variant, conv in CONVERT.items():
        params = {k: conv(v).double() for k, v in master.items()}
        for head, labels in [('tagger', tagger_labels), ('mlm', mlm_labels)]:
            spec = encoder_ref.make_spec('tiny', 'none', head, L=mk.L, C=mk.C, NH=mk.NH, FF=mk.FF, V=mk.V, max_T=T,
                                         max_B=B, max_positions=mk.MAXPOS, ntags=mk.K)
            with torch.no_grad():
                loss, logits = encoder_ref.forward(params, ids, labels, spec)
            if head == 'mlm':
                logits = logits[labels != encoder_ref.IGNORE]
            out = os.path.join(a.out, f'logits_{variant}_{head}.safetensors')
            safetensors_io.write_fixture(out, {'input_ids': ids.int(), 'labels': labels.int(), 'logits': logits.float(),
                                   'loss': loss.float().reshape(())})
            print(f'{out}: logits {tuple(logits.shape)} loss {float(loss):.6f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
