#!/usr/bin/python3
"""Runs `peprime import-hf` on the files of make_hf_safetensors.py and checks the resulting
checkpoints with h5py against PyTorch: every tensor present under its peprime name, in the
right group (/model or /head), with the right shape, and bit-equal to the float32 master
(F32), to torch's own .half().float() (F16) and .bfloat16().float() (BF16), with the root
attributes io/checkpoint_write.c writes (stage, model shape, per-tensor checksum) and the [model]
INI file next to it (base.ini). Broken inputs must fail with a message that names the
offending tensor. Exit status 0 = all checks passed."""
import argparse
import os
import subprocess
import sys

import h5py
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL:', what)


def run(peprime, args):
    p = subprocess.run([peprime, 'import-hf'] + args, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def attr_str(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def check_h5(path, ref, conv, with_heads, spm_path, label):
    want_lines = ['[model]', 'layers = 2', 'hidden = 32', 'heads = 4', 'ff = 64', 'vocab = 99', 'max_positions = 32',
                  'max_seq_len = 30', 'type_vocab = 1', 'tokenizer = ' + os.path.realpath(spm_path)]
    ini_path = path[:-3] + '.ini'
    check(os.path.exists(ini_path), f'{label}: {ini_path} not written')
    if os.path.exists(ini_path):
        ini = open(ini_path).read().splitlines()
        for line in want_lines:
            check(line in ini, f'{label}: {ini_path} lacks "{line}"')
    with h5py.File(path, 'r') as f:
        check(attr_str(f.attrs['stage']) == 'import-hf', f'{label}: stage attr')
        check(int(f.attrs['format_version']) == 2, f'{label}: format_version')
        cfg = attr_str(f.attrs['config']).splitlines()
        for line in want_lines:
            check(line in cfg, f'{label}: config attr lacks "{line}"')
        # the model spec io/checkpoint_spec.c stores for `peprime inspect` and the stages' shape checks
        for k, v in [('layers', 2), ('hidden', 32), ('heads', 4), ('ff', 64), ('vocab', 99), ('max_positions', 32),
                     ('type_vocab', 1), ('ntags', 7 if with_heads else 0)]:
            check(k in f.attrs and int(f.attrs[k]) == v, f'{label}: root attr {k} = {f.attrs.get(k)}, want {v}')
        check(attr_str(f.attrs.get('head', b'')) == 'tagger', f'{label}: head attr')
        names = []
        f.visit(lambda n: names.append(n) if isinstance(f[n], h5py.Dataset) else None)
        want = {('head/' if k.startswith(('classifier.', 'lm_head.')) else 'model/') + k: v for k, v in ref.items()
                if with_heads or not k.startswith(('classifier.', 'lm_head.'))}
        got = set(names)
        check(got == set(want), f'{label}: datasets differ: missing {sorted(set(want) - got)[:5]}, '
                                f'extra {sorted(got - set(want))[:5]}')
        for name, x in want.items():
            if name not in f:
                continue
            d = f[name]
            check(d.dtype == np.dtype('<f4'), f'{label}: {name} dtype {d.dtype}')
            check(tuple(d.shape) == tuple(x.shape), f'{label}: {name} shape {d.shape} vs {tuple(x.shape)}')
            expect = conv(x).numpy()
            got_v = d[()]
            if got_v.shape == expect.shape:
                same = np.array_equal(got_v.view(np.uint32), expect.view(np.uint32))
                check(same, f'{label}: {name} values differ (max |diff| {np.abs(got_v - expect).max()})')
            check('checksum' in d.attrs, f'{label}: {name} has no checksum attribute')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--peprime', required=True)
    ap.add_argument('--work', required=True)
    a = ap.parse_args()
    w = a.work
    subprocess.run([sys.executable, os.path.join(HERE, 'make_hf_safetensors.py'), '--out', w], check=True)
    ref = torch.load(os.path.join(w, 'reference.pt'))
    spm = os.path.join(w, 'spm.model')
    cfg = os.path.join(w, 'config.json')
    ident = lambda x: x.float()
    cases = [('f32', ident, True, ['--config', cfg]),
             ('f16', lambda x: x.half().float(), True, ['--config', cfg]),
             ('bf16', lambda x: x.bfloat16().float(), True, ['--config', cfg]),
             ('bert', ident, True, ['--config', cfg]),
             ('bare', ident, False, []),  # no config: heads = 32 / 64 -> needs --heads
             ('f32', ident, False, ['--config', cfg, '--drop-heads'])]
    for i, (v, conv, heads, extra) in enumerate(cases):
        out = os.path.join(w, f'out_{i}_{v}.h5')
        args = ['--weights', os.path.join(w, f'model_{v}.safetensors'), '--spm', spm, '-o', out] + extra
        if v == 'bare':
            rc, log = run(a.peprime, args)
            check(rc != 0 and 'not a multiple of 64' in log, f'bare without heads should fail: {log}')
            args += ['--heads', '4']
        rc, log = run(a.peprime, args)
        check(rc == 0, f'{v} {extra}: import failed: {log}')
        if rc == 0:
            check_h5(out, ref, conv, heads, spm, f'{v}{" ".join(extra[2:])}')
            check(not os.path.exists(out + '.tmp'), f'{v}: .tmp left behind')
        if v == 'f32' and heads:
            check('lm_head.decoder.weight equals embeddings.word_embeddings.weight' in log, f'tied check not logged: {log}')
            check('skipping roberta.pooler.dense.weight' in log, 'pooler not noted')
            check('skipping roberta.embeddings.position_ids' in log, 'position_ids not noted')

    f32 = os.path.join(w, 'model_f32.safetensors')
    bad = [(['--weights', os.path.join(w, 'broken_missing.safetensors'), '--config', cfg],
            ['1 missing', 'encoder.layer.1.output.dense.bias']),
           (['--weights', os.path.join(w, 'broken_shape.safetensors'), '--config', cfg],
            ['1 wrongly shaped', 'roberta.encoder.layer.0.attention.self.key.weight has shape (32, 33), expected (32, 32)']),
           (['--weights', os.path.join(w, 'broken_unexpected.safetensors'), '--config', cfg],
            ['1 unexpected', 'roberta.encoder.layer.0.attention.self.extra.weight', '--allow-unexpected']),
           (['--weights', f32, '--config', os.path.join(w, 'config_mismatch.json')],
            ["'hidden_size' = 48, but the weights have 32"]),
           (['--weights', f32, '--config', cfg, '--spm', os.path.join(w, 'spm_wrong.model')],
            ['102 pieces', '104 ids', '99 embedding rows']),
           (['--weights', os.path.join(w, 'missing.safetensors')], ['cannot open', 'missing.safetensors'])]
    for args, needles in bad:
        if '--spm' not in args:
            args = args + ['--spm', spm]
        out = os.path.join(w, 'bad.h5')
        rc, log = run(a.peprime, args + ['-o', out])
        check(rc == 1, f'{args}: exit {rc}, want 1: {log}')
        for n in needles:
            check(n in log, f'{args}: message lacks "{n}": {log}')
        check(not os.path.exists(out) and not os.path.exists(out + '.tmp') and not os.path.exists(out[:-3] + '.ini'),
              f'{args}: output written despite error')
    # --allow-unexpected turns the unexpected tensor into a warning
    out = os.path.join(w, 'allow.h5')
    rc, log = run(a.peprime, ['--weights', os.path.join(w, 'broken_unexpected.safetensors'), '--config', cfg,
                              '--spm', spm, '-o', out, '--allow-unexpected'])
    check(rc == 0 and 'skipping unexpected tensor' in log, f'--allow-unexpected: {rc} {log}')
    if failures:
        print(f'{len(failures)} check(s) failed')
        return 1
    print('all import-hf checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
