#!/usr/bin/python3
"""export-hf against import-hf and the PyTorch reference model (tests/ref/encoder_ref.py).

1. Round trip: Hugging Face files written like transformers' save_pretrained for
   XLMRobertaForTokenClassification and XLMRobertaForMaskedLM (make_hf_safetensors.py's random
   weights; no pooler, tied decoder left out) go through `peprime import-hf` then
   `peprime export-hf`: the exported model.safetensors holds the same names, shapes and bytes.
2. Logits: a tiny model pretrained and PE fine-tuned by peprime (adapters Pfeiffer / Houlsby with
   GELU, flat and reparameterised prefixes, LoRA, and the MLM pretrain checkpoint) is exported;
   the files are read back here with their Hugging Face / peft / AdapterHub names mapped by this
   script, and encoder_ref.py's forward on them gives peprime's logits (tests/hf/export_logits)
   within 1e-5 (relative 2-norm). Dropping the PE modules moves the logits far beyond that, so
   the PE files are really checked.
3. Bad input (not a checkpoint, no --out, a missing tokenizer, a base without a head) is a clear
   error.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'ref'))
import encoder_ref as ref  # noqa: E402
import make_hf_safetensors as mk  # noqa: E402
import safetensors_io  # noqa: E402

TOL = 1e-5
FAILS = []


def check(cond, what):
    print(('ok   ' if cond else 'FAIL ') + what)
    if not cond:
        FAILS.append(what)


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stdout[-2000:], p.stderr[-2000:])
        raise SystemExit(f"command failed: {' '.join(cmd)}")
    return p


def tensors(path):
    st, meta = safetensors_io.read_raw(path)
    assert meta.get('format') == 'pt', f'{path}: metadata format {meta}'
    out = {}
    for k, (dt, shape, raw) in st.items():
        assert dt == 'F32', (k, dt)
        out[k] = torch.from_numpy(np.frombuffer(raw, dtype='<f4').copy().reshape(shape))
    return out


def round_trip(peprime, work):
    gen = torch.Generator().manual_seed(7)
    t = mk.peprime_tensors(gen)
    hf = mk.hf_names(t)
    base = {k: v for k, v in hf.items() if k.startswith('roberta.') and 'pooler' not in k and 'position_ids' not in k}
    files = {
        'tagger': dict(base, **{k: hf[k] for k in ('classifier.weight', 'classifier.bias')}),
        'mlm': dict(base, **{k: hf[k] for k in ('lm_head.dense.weight', 'lm_head.dense.bias', 'lm_head.layer_norm.weight',
                                                'lm_head.layer_norm.bias', 'lm_head.bias')}),
    }
    spm = os.path.join(work, 'rt.spm.model')
    mk.write_spm(spm, mk.PIECES)
    for kind, tens in files.items():
        src = os.path.join(work, f'rt_{kind}.safetensors')
        mk.write_safetensors(src, tens)
        h5, out = os.path.join(work, f'rt_{kind}.h5'), os.path.join(work, f'rt_{kind}_hf')
        run([peprime, 'import-hf', '--weights', src, '--spm', spm, '--heads', str(mk.NH), '-o', h5, '--quiet'])
        run([peprime, 'export-hf', '--model', h5, '--out', out])
        a, _ = safetensors_io.read_raw(src)
        b, meta = safetensors_io.read_raw(os.path.join(out, 'model.safetensors'))
        check(sorted(a) == sorted(b), f'round trip {kind}: the same {len(a)} tensor names')
        same = all(a[k] == b[k] for k in a if k in b)
        check(same, f'round trip {kind}: every tensor bit for bit (dtype, shape, bytes)')
        check(meta.get('format') == 'pt', f'round trip {kind}: metadata format pt')
        cfg = json.load(open(os.path.join(out, 'config.json')))
        arch = 'XLMRobertaForTokenClassification' if kind == 'tagger' else 'XLMRobertaForMaskedLM'
        check(cfg['architectures'] == [arch] and cfg['num_hidden_layers'] == mk.L and cfg['hidden_size'] == mk.C and
              cfg['num_attention_heads'] == mk.NH and cfg['intermediate_size'] == mk.FF and cfg['vocab_size'] == mk.V and
              cfg['max_position_embeddings'] == mk.MAXPOS and cfg['model_type'] == 'xlm-roberta',
              f'round trip {kind}: config.json shape fields')
        check(open(spm, 'rb').read() == open(os.path.join(out, 'sentencepiece.bpe.model'), 'rb').read(),
              f'round trip {kind}: sentencepiece.bpe.model is the tokenizer')


def bad_inputs(peprime, work):
    """Wrong input is a clear error, not a crash."""
    def fails(args, needle, what):
        p = subprocess.run([peprime, 'export-hf', *args], capture_output=True, text=True)
        check(p.returncode != 0 and needle in p.stderr, f'{what}: exit {p.returncode}, "{needle}" in the message')
    junk = os.path.join(work, 'junk.h5')
    with open(junk, 'w') as f:
        f.write('not hdf5\n')
    fails(['--model', junk, '--out', os.path.join(work, 'x')], 'junk.h5', 'a file that is not a checkpoint')
    fails(['--model', os.path.join(work, 'rt_tagger.h5')], '--out', 'no --out')
    fails(['--model', os.path.join(work, 'rt_tagger.h5'), '--out', os.path.join(work, 'y'), '--spm', '/nonexistent.model'],
          '/nonexistent.model', 'a missing tokenizer')
    spm = os.path.join(work, 'rt.spm.model')
    bare = os.path.join(work, 'rt_bare.h5')
    run([peprime, 'import-hf', '--weights', os.path.join(work, 'rt_tagger.safetensors'), '--spm', spm, '--heads',
         str(mk.NH), '--drop-heads', '-o', bare, '--quiet'])
    fails(['--model', bare, '--out', os.path.join(work, 'z')], 'no head', 'a base without a head')
    # `peprime strip` copies a base without a head too (its weights only: h5py compares them)
    bare_s = os.path.join(work, 'rt_bare_stripped.h5')
    run([peprime, 'strip', bare, '-o', bare_s])
    with h5py.File(bare, 'r') as fa, h5py.File(bare_s, 'r') as fb:
        names = []
        fa['model'].visit(lambda n: names.append(n) if isinstance(fa['model'][n], h5py.Dataset) else None)
        same = all(np.array_equal(fa['model'][n][()], fb['model'][n][()]) for n in names)
        check(len(names) > 0 and same and 'head' not in fb, 'strip of a base without a head keeps its %d tensors' % len(names))


def spec_and_params(d):
    """encoder_ref spec + params from an export folder, mapping the names back independently."""
    cfg = json.load(open(os.path.join(d, 'config.json')))
    tagger = cfg['architectures'] == ['XLMRobertaForTokenClassification']
    params = {}
    for k, v in tensors(os.path.join(d, 'model.safetensors')).items():
        params[k[len('roberta.'):] if k.startswith('roberta.') else k] = v
    over = dict(L=cfg['num_hidden_layers'], C=cfg['hidden_size'], NH=cfg['num_attention_heads'],
                FF=cfg['intermediate_size'], V=cfg['vocab_size'], max_positions=cfg['max_position_embeddings'],
                type_vocab=cfg['type_vocab_size'], ln_eps=cfg['layer_norm_eps'],
                ntags=len(cfg.get('id2label', {})) or 1)
    pe = 'none'
    if os.path.isdir(os.path.join(d, 'peft')):
        pe = 'lora'
        ac = json.load(open(os.path.join(d, 'peft', 'adapter_config.json')))
        assert ac['peft_type'] == 'LORA' and ac['task_type'] == 'TOKEN_CLS' and ac['target_modules'] == ['query', 'value']
        over.update(lora_rank=ac['r'], lora_alpha=ac['lora_alpha'])
        for k, v in tensors(os.path.join(d, 'peft', 'adapter_model.safetensors')).items():
            assert k.startswith('base_model.model.'), k
            k = k[len('base_model.model.'):]
            if k.startswith('classifier.'):
                check(torch.equal(v, params[k]), f'{d}: peft modules_to_save {k} equals the model\'s')
                continue
            assert k.startswith('roberta.') and k.endswith('.weight'), k
            params[k[len('roberta.'):-len('.weight')]] = v
    elif os.path.isdir(os.path.join(d, 'adapterhub')):
        ac = json.load(open(os.path.join(d, 'adapterhub', 'adapter_config.json')))
        c = ac['config']
        assert c['architecture'] == 'bottleneck' and not c['original_ln_before'] and c['original_ln_after']
        assert c['residual_before_ln'] and c['output_adapter'] and c['scaling'] == 1.0
        pe = 'adapter-' + ('houlsby' if c['mh_adapter'] else 'pfeiffer') + ':' + c['non_linearity']
        over.update(bottleneck=round(cfg['hidden_size'] / c['reduction_factor']))
        name = ac['name']
        for k, v in tensors(os.path.join(d, 'adapterhub', 'adapter.safetensors')).items():
            k = k[len('roberta.'):].replace(f'.adapters.{name}.', '.adapter.').replace('adapter_down.0.', 'adapter_down.')
            params[k] = v
    elif os.path.isdir(os.path.join(d, 'prefix')):
        pe = 'prefix'
        pc = json.load(open(os.path.join(d, 'prefix', 'prefix_config.json')))
        over.update(prefix_len=pc['num_virtual_tokens'])
        pt = tensors(os.path.join(d, 'prefix', 'prefix.safetensors'))
        P, L, C = pc['num_virtual_tokens'], pc['num_layers'], pc['hidden_size']
        whole = pt.pop('prompt_embeddings').reshape(P, L, 2, C)
        for k, v in pt.items():
            params[k] = v
            layer, kv = int(k.split('.')[2]), int(k.endswith('prefix_value'))
            check(torch.equal(whole[:, layer, kv], v), f'{d}: prompt_embeddings holds {k}')
    return ref.make_spec('tiny', pe=pe, head='tagger' if tagger else 'mlm', **over), params


def logits_check(peprime, tool, work, name, ckpt):
    d = os.path.join(work, f'exp_{name}')
    shutil.rmtree(d, ignore_errors=True)
    run([peprime, 'export-hf', '--model', ckpt, '--out', d])
    spec, params = spec_and_params(d)
    gen = torch.Generator().manual_seed(3)
    B, T = 3, 10
    ids = torch.randint(4, spec['V'] - 1, (B, T), generator=gen)
    ids[:, 0] = ref.BOS_ID
    lens = [T, 6, 3]
    for b, n in enumerate(lens):
        ids[b, n - 1] = ref.EOS_ID
        ids[b, n:] = ref.PAD_ID
    with open(os.path.join(work, 'ids.txt'), 'w') as f:
        f.write(f'{B} {T}\n' + '\n'.join(' '.join(map(str, row.tolist())) for row in ids) + '\n')
    out = os.path.join(work, f'logits_{name}.txt')
    run([tool, ckpt, os.path.join(work, 'ids.txt'), out])
    vals = open(out).read().split()
    c = torch.tensor([float(x) for x in vals[1:]], dtype=torch.float64)
    assert len(c) == int(vals[0])
    if spec['head'] == ref.HEAD['mlm']:
        labels = torch.where(ids == ref.PAD_ID, torch.full_like(ids, ref.IGNORE), ids)
    else:
        labels = torch.where(ids == ref.PAD_ID, torch.full_like(ids, ref.IGNORE), torch.zeros_like(ids))
    p64 = {k: v.double() for k, v in params.items()}
    spec['max_B'], spec['max_T'] = B, T
    def flat(z):  # pep_model_logits' layout, (b, t) order: MLM at the targets, tagger at the real tokens
        if z.shape[0] == B:
            keep = labels != ref.IGNORE if spec['head'] == ref.HEAD['mlm'] else ids != ref.PAD_ID
            z = z.reshape(B * T, -1)[keep.reshape(-1)]
        return z.reshape(-1)
    _, z = ref.forward(p64, ids, labels, spec)
    z = flat(z)
    rel = float((z - c).norm() / z.norm())
    check(rel <= TOL, f'{name}: exported files in encoder_ref give peprime\'s logits (rel err {rel:.2e} <= {TOL:g})')
    if spec['pe'] != ref.PE['none']:
        bare = dict(spec, pe=ref.PE['none'])
        _, z0 = ref.forward(p64, ids, labels, bare)
        rel0 = float((flat(z0) - c).norm() / z.norm())
        check(rel0 > 100 * TOL, f'{name}: without its PE modules the logits are off by {rel0:.2e} (the PE files matter)')


def pipeline(peprime, work):
    """A tiny pretrained base and one fine-tuned checkpoint per PE method (generated corpus)."""
    job = os.path.join(work, 'job.ini')
    with open(job, 'w') as f:
        f.write(f'include = {os.path.join(HERE, "..", "pipeline", "tiny-model.ini")}\n'
                '[model]\ntokenizer_vocab = 300\n'
                '[data]\ncorpus = generated\nlanguages = aa\nsource = aa\ntargets = bb\n'
                'pretrain_languages = aa,bb\nmax_sentences = 200\n'
                '[pe]\nprefix_length = 4\nprefix_hidden = 16\nlora_rank = 4\nlora_alpha = 8\n'
                '[optim]\nlr = 5e-2\nbatch_size = 8\nsteps = 8\n')
    env = dict(os.environ, OPENBLAS_NUM_THREADS='1')
    def stage(*args):
        p = subprocess.run([peprime, *args, '--config', job], capture_output=True, text=True, cwd=work, env=env)
        if p.returncode != 0:
            print(p.stderr[-2000:])
            raise SystemExit(f'stage {args} failed')
    stage('pretrain', '--out', 'base', '--set', 'optim.lr=5e-3')
    cks = {'pretrain-mlm': os.path.join(work, 'base', 'base.h5')}
    variants = {'adapter-pfeiffer': ['pe.method=adapter'],
                'adapter-houlsby-gelu': ['pe.method=adapter', 'pe.placement=houlsby', 'pe.activation=gelu'],
                'prefix': ['pe.method=prefix'],
                'prefix-reparam': ['pe.method=prefix', 'pe.prefix_reparam=true'],
                'lora': ['pe.method=lora']}
    for name, sets in variants.items():
        args = ['finetune', '--init', 'base/base.h5', '--out', 'ft-' + name]
        for s in sets:
            args += ['--set', s]
        stage(*args)
        cks[name] = os.path.join(work, 'ft-' + name, 'adapted.h5')
    return cks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--peprime', required=True)
    ap.add_argument('--tool', required=True)
    ap.add_argument('--work', required=True)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    round_trip(a.peprime, a.work)
    bad_inputs(a.peprime, a.work)
    for name, ckpt in pipeline(a.peprime, a.work).items():
        logits_check(a.peprime, a.tool, a.work, name, ckpt)
    print(f'{len(FAILS)} failed')
    return 1 if FAILS else 0


if __name__ == '__main__':
    sys.exit(main())
