#!/usr/bin/python3
"""make test-torch: vae.h against PyTorch, preset by preset (usage: test_torch.py BUILD_DIR).

For every preset of PRESETS that vae.h has (`test_torch describe` says which):
  1. parity: the seed's own PyTorch class (tests/torch_models.py) with seeded random weights
     (BatchNorm and GroupNorm affine parameters and running statistics randomised too), fixed
     images and fixed eps. Its state_dict goes to a safetensors file (stdlib writer,
     tests/st_pyreader.py) that build/test_torch loads with vae_model_load_weights and runs.
     Compared, each element within 1e-4 relative or 1e-5 absolute:
       training mode (BatchNorm batch statistics): mu, logvar, z, decoder output; recon, KL and
       total loss; every parameter gradient; every tensor (running statistics included)
       after one step of Adam, AdamW and SGD with momentum (the preset's clipping applies);
       eval mode (running statistics): mu, logvar, z, decoder output; recon, KL and total loss;
       and, training with model.eval() (vae.h's cfg.frozen_stats: BatchNorm normalises with
       its running statistics and leaves them unchanged), every parameter gradient and every
       tensor after one step of Adam, AdamW and SGD with momentum.
  2. PyTorch -> vae: the same state_dict with `vae encode --model NAME --weights FILE` (mu and
     logvar within 1e-4 of the class's encode) and `vae decode` (the decoder's output).
  3. vae -> PyTorch: a checkpoint trained for two steps by `vae train` loads into the class with
     load_state_dict (strict) and gives the reconstruction that `vae encode` + `vae decode` give.
Presets vae.h does not have yet are reported as SKIP and not counted. Losses follow vae.h's
conventions, which `describe` reports (REDUCE_SUM: per image, averaged over the batch;
REDUCE_MEAN: recon per pixel and KL per latent, as seed 002 does).
Prints the largest relative error per preset and mode (over elements with |ref| >= 0.1, where
the relative bound is the binding one) and the largest absolute error over the rest.
"""
import os, subprocess, sys, tempfile, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st_pyreader as st                                                    # noqa: E402
from torch_models import seed000, seed001, seed002, seed003, seed004        # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else 'build'
HARNESS, VAE = os.path.join(BUILD, 'test_torch'), os.path.join(BUILD, 'vae')
RTOL, ATOL = 1e-4, 1e-5
ACCURACY = 3.0   # failing that, against float64: vae.h's largest gradient error on a tensor may
                 # be at most this multiple of float32 PyTorch's own
SEED = int(os.environ.get('TEST_TORCH_SEED', '0'))   # another draw of weights, images and eps
OPTIMS = dict(adam_lr=1e-3, adam_wd=0.0, adamw_lr=1e-3, adamw_wd=1e-2, sgd_lr=1e-2, sgd_momentum=0.9, sgd_wd=1e-4)
torch.set_num_threads(1)
warnings.filterwarnings('ignore', message='Using a target size')   # seed 004: 1-channel output vs 3


# ---- the presets: seed class, input shapes to try, how to run it with a fixed eps ----------------
def mlp_make(d):
    return seed003.VAE(input_dim=d['c'] * d['h'] * d['w'], hidden_dim=d['tensors']['img_to_hidden.weight'][0],
                       latent_z_dim=d['lc'])

PRESETS = [
    # name, seed, input shapes to try (the first vae.h takes), images per batch, constructor,
    # encode(model, x) -> (mu, logvar), decode(model, z) -> image, forward(model, x) -> (out, mu, logvar)
    dict(name='mlp', seed='003', shapes=[(1, 28, 28)], n=4, make=mlp_make,
         encode=lambda m, x: m.encode(x.reshape(x.shape[0], -1)),
         decode=lambda m, z: m.decode(z),
         forward=lambda m, x: m(x.reshape(x.shape[0], -1))),
    dict(name='conv', seed='002', shapes=[(3, 32, 32)], n=4,
         make=lambda d: seed002.ConvolutionalVAE(input_dim=(d['c'], d['h'], d['w']), n_channels=d['c'], latent_dim=d['lc']),
         encode=lambda m, x: m.encoder(x).split(m.latent_dim, dim=1),
         decode=lambda m, z: m.decoder(z),
         forward=lambda m, x: (lambda r: (r[0], r[1][0], r[1][1]))(m(x))),
    dict(name='vanilla', seed='004', shapes=[(3, 256, 256)], n=2,
         make=lambda d: seed004.VanillaVAE(in_channels=d['c'], latent_dim=d['lc']),
         encode=lambda m, x: m.encode(x),
         decode=lambda m, z: m.decode(z),
         forward=lambda m, x: (lambda r: (r[0], r[2], r[3]))(m(x))),
    dict(name='resnet', seed='000', shapes=[(3, 16, 16)], n=2,
         make=lambda d: seed000.VAE(in_channels=d['c'], latent_dim=d['lc']),
         encode=lambda m, x: m.encode(x),
         decode=lambda m, z: m.decode(torch.tanh(z)),   # the seed's reparameterize ends in tanh
         forward=lambda m, x: m(x)),
    dict(name='conv250', seed='001', shapes=[(3, 250, 250)], n=2,
         make=lambda d: seed001.ConvVAE(latent_dim=d['lc']),
         encode=lambda m, x: m.encode(x),
         decode=lambda m, z: m.decode(z),
         forward=lambda m, x: m(x)),
]


class FixedNoise:
    """torch.randn_like returns the given eps inside the block, so the seeds' own forward runs."""
    def __init__(self, eps): self.eps = eps
    def __enter__(self):
        self.saved = torch.randn_like
        torch.randn_like = lambda t, *a, **k: self.eps.reshape(t.shape).clone()
    def __exit__(self, *a): torch.randn_like = self.saved


class Kinks:
    """Inside the block F.relu and F.leaky_relu (which nn.ReLU and nn.LeakyReLU call) take the
    branch of their derivative from masks, vae.h's, in call order. An input within rounding of
    0 can fall on either side in two float32 libraries, and through BatchNorm's backward one
    such element moves a whole channel's gradient. Counts where PyTorch's own branch differs."""
    def __init__(self, masks):
        self.masks, self.k, self.flipped, self.near = masks, 0, 0, 0.0

    def __enter__(self):
        self.saved = (F.relu, F.leaky_relu)
        outer = self

        class Act(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x, slope, mask):
                ctx.save_for_backward(mask)
                ctx.slope = slope
                return torch.where(x > 0, x, x * slope)

            @staticmethod
            def backward(ctx, g):
                mask, = ctx.saved_tensors
                return torch.where(mask, g, g * ctx.slope), None, None

        def act(x, slope):
            m = outer.masks[outer.k].reshape(x.shape).bool()
            outer.k += 1
            diff = (x.detach() > 0) != m
            if diff.any():
                outer.flipped += int(diff.sum())
                outer.near = max(outer.near, float(x.detach()[diff].abs().max() / x.detach().abs().max()))
            return Act.apply(x, slope, m)
        F.relu = lambda x, inplace=False: act(x, 0.0)
        F.leaky_relu = lambda x, negative_slope=0.01, inplace=False: act(x, negative_slope)

    def __exit__(self, *a):
        F.relu, F.leaky_relu = self.saved


# ---- results ----------------------------------------------------------------------------------
passed = failed = 0

def result(ok, what):
    global passed, failed
    if ok: passed += 1
    else: failed += 1
    print(('ok   ' if ok else 'FAIL ') + what, flush=True)


class Errors:
    """Largest errors of one preset and mode: relative where |ref| >= 0.1, absolute elsewhere."""
    def __init__(self): self.rel, self.rel_at, self.abs, self.abs_at = 0.0, '-', 0.0, '-'

    def compare(self, name, got, ref):
        got = np.asarray(got, dtype=np.float64).ravel(); ref = np.asarray(ref, dtype=np.float64).ravel()
        if got.shape != ref.shape:
            return False, 'size %d vs %d' % (got.size, ref.size)
        if got.size == 0:
            return True, ''
        d = np.abs(got - ref)
        ok = bool(np.all((d <= ATOL) | (d <= RTOL * np.abs(ref))))
        big = np.abs(ref) >= 0.1
        if big.any():
            r = float(np.max(d[big] / np.abs(ref[big])))
            if r > self.rel: self.rel, self.rel_at = r, name
        if (~big).any():
            a = float(np.max(d[~big]))
            if a > self.abs: self.abs, self.abs_at = a, name
        bad = ~((d <= ATOL) | (d <= RTOL * np.abs(ref)))
        msg = ''
        if not ok:
            i = int(np.argmax(np.where(bad, d, -1)))
            msg = '%d of %d elements off; worst [%d] %.9g vs torch %.9g' % (int(bad.sum()), got.size, i, got[i], ref[i])
        return ok, msg

    def also(self, other):
        """An Errors that records into self and other."""
        both = Errors()
        both.compare = lambda name, got, ref: (other.compare(name, got, ref), self.compare(name, got, ref))[1]
        return both

    def line(self):
        return 'largest relative error %.2e (%s), largest absolute error where |ref| < 0.1: %.2e (%s)' % (
            self.rel, self.rel_at, self.abs, self.abs_at)


# ---- vae.h side ---------------------------------------------------------------------------------
def describe(name, shape):
    out = subprocess.run([HARNESS, 'describe', name] + [str(v) for v in shape] + ['0', '0'],
                         capture_output=True, text=True, check=True).stdout
    if out.strip() in ('missing', 'badshape'):
        return out.strip()
    d = dict(tensors={}, counters=[])
    for line in out.splitlines():
        k, _, v = line.partition(' ')
        if k == 'tensor':
            f = v.split(); d['tensors'][f[0]] = tuple(int(s) for s in f[1:])
        elif k == 'counter':
            d['counters'].append(v)
        elif k in ('input', 'latent'):
            f = [int(s) for s in v.split()]
            if k == 'input': d['c'], d['h'], d['w'] = f
            else: d['lc'], d['lh'], d['lw'] = f
        elif k in ('loss', 'reduce', 'arch'):
            d[k] = v
        else:
            d[k] = [float(s) for s in v.split()] if ' ' in v else float(v)
    d['lshape'] = (d['lc'],) if d['lh'] == d['lw'] == 1 else (d['lc'], d['lh'], d['lw'])
    return d


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError('%s: %s' % (' '.join(cmd), (p.stderr or p.stdout).strip()))
    return p.stdout


def save_state_dict(path, sd):
    """The README's stdlib writer: a state_dict as safetensors (F32 weights, I64 counters)."""
    t = {}
    for k, v in sd.items():
        v = v.detach().contiguous()
        dt = {torch.float32: 'F32', torch.int64: 'I64', torch.uint8: 'U8'}[v.dtype]
        t[k] = (dt, list(v.shape), v.numpy().tobytes())
    st.save(path, t)


def load_tensors(path):
    _, ts = st.load(path)
    out = {}
    for k, (dt, shape, raw) in ts.items():
        np_dt = {'F32': np.float32, 'I64': np.int64, 'U8': np.uint8}[dt]
        out[k] = torch.from_numpy(np.frombuffer(bytearray(raw), dtype=np_dt).reshape(shape).copy())
    return out


# ---- PyTorch side -----------------------------------------------------------------------------------
def randomise_norms(model, g):
    """Non-trivial norm layers: affine parameters and BatchNorm running statistics at random."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (nn.BatchNorm2d, nn.GroupNorm)):
                mod.weight.copy_(torch.rand(mod.weight.shape, generator=g) + 0.5)
                mod.bias.copy_(torch.rand(mod.bias.shape, generator=g) * 0.4 - 0.2)
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.copy_(torch.rand(mod.running_mean.shape, generator=g) * 0.4 - 0.2)
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
                mod.num_batches_tracked.fill_(7)


def vae_loss(d, out, x, mu, lv, n, train):
    """vae.h's loss for this preset's setup (what `describe` reports)."""
    if d['loss'] == 'bce':
        recon = F.binary_cross_entropy(out, x, reduction='sum')
    elif d['loss'] == 'mse':
        recon = F.mse_loss(out, x, reduction='sum')
    else:
        raise RuntimeError('loss %r is not known to this test' % d['loss'])
    if d['logvar_clamp'] > 0:
        lv = torch.clamp(lv, -d['logvar_clamp'], d['logvar_clamp'])
    kl = -0.5 * torch.sum(1 + lv - mu.pow(2) - lv.exp())
    if d['reduce'] == 'sum':
        recon, kl = recon / n, kl / n
    elif d['reduce'] == 'mean':
        recon, kl = recon / (n * x[0].numel()), kl / (n * mu[0].numel())
    else:
        raise RuntimeError('reduction %r is not known to this test' % d['reduce'])
    beta = d['beta']
    if train and d['beta_warmup'] > 0:   # vae.h's first step: beta * 1 / warmup
        beta = beta * min(1.0, 1.0 / d['beta_warmup'])
    return recon, kl, recon + beta * kl


def torch_pass(P, d, model, x, eps, train, kinks=None, warm=None):
    """train: BatchNorm's mode; warm: a training step's loss (beta warm-up), by default train."""
    model.train(train)
    with FixedNoise(eps):
        if kinks is not None:
            with kinks:
                out, mu, lv = P['forward'](model, x)
        else:
            out, mu, lv = P['forward'](model, x)
    out = out.reshape(x.shape[0], -1, x.shape[2], x.shape[3])
    z = mu + eps.reshape(mu.shape) * torch.exp(0.5 * lv)
    return dict(out=out, mu=mu, logvar=lv, z=z, loss=vae_loss(d, out, x, mu, lv, x.shape[0], train if warm is None else warm))


def kink_masks(got, pfx=''):
    nk = len([k for k in got if k.startswith(pfx + 'kink.')])
    return [torch.from_numpy(got['%skink.%d' % (pfx, i)].astype(bool)) for i in range(nk)]


def explain_gradients(P, d, model, sd0, x, eps, got, ref, bad, train=True):
    """Where vae.h's gradients and PyTorch's differ beyond the tolerance, two things are
    allowed to explain it, each reported: an activation input within rounding of 0 that vae.h
    puts on the other side (the derivative jumps there; redone with vae.h's branches), and
    float32 PyTorch's own error (redone in float64 with the same branches: vae.h must then be
    within the tolerance of the exact value, or no further from it than ACCURACY times float32
    PyTorch's largest error on that tensor: as accurate as PyTorch, if not bit for bit).
    Returns the reference, the tensors accepted by accuracy, a note, fatal problems."""
    pfx = '' if train else 'eval.'
    masks = kink_masks(got, pfx)
    notes, fatal = ['as PyTorch computes them: ' + '; '.join(bad[:2])], []
    kinks = Kinks(masks)
    model.load_state_dict(sd0)
    r = torch_pass(P, d, model, x, eps, train, kinks, warm=True)
    model.zero_grad()
    r['loss'][2].backward()
    if kinks.flipped:
        notes.append('%d activation inputs, at most %.1e of their layer\'s largest, lie on the other side of 0 in vae.h:'
                     ' with vae.h\'s branches there' % (kinks.flipped, kinks.near))
        if kinks.near >= 1e-4:
            fatal.append('activation inputs on different sides of 0 are not all within rounding of it')
        ref = {k: p.grad.numpy().ravel() for k, p in model.named_parameters()}
    still = [k for k in ref if not Errors().compare(k, got[pfx + 'grad.' + k], ref[k])[0]]
    accepted = set()
    if still:
        m64 = P['make'](d)
        m64.load_state_dict(sd0)
        m64 = m64.double()
        r = torch_pass(P, d, m64, x.double(), eps.double(), train, Kinks(masks), warm=True)
        r['loss'][2].backward()
        g64 = {k: p.grad.numpy().ravel() for k, p in m64.named_parameters()}
        exact, ratio, worst, own = 0, 0.0, '', Errors()
        for k in still:
            ev, et = np.abs(got[pfx + 'grad.' + k] - g64[k]).max(), np.abs(ref[k] - g64[k]).max()
            own.compare(k, ref[k], g64[k])
            if Errors().compare(k, got[pfx + 'grad.' + k], g64[k])[0]:
                exact += 1
            elif ev <= ACCURACY * et:
                accepted.add(k)
                if ev / et > ratio: ratio, worst = ev / et, k
            else:
                fatal.append('%s: vae.h is %.1e from float64, PyTorch float32 %.1e' % (k, ev, et))
            ref[k] = g64[k]
        notes.append('redone in float64: %d of these tensors are then within the tolerance; in %d, vae.h\'s largest error'
                     ' is at most %.2g times float32 PyTorch\'s (%s), whose own largest relative error against float64'
                     ' there is %.1e' % (exact, len(accepted), ratio, worst or '-', own.rel))
    return ref, accepted, ' (' + '; '.join(notes) + ')', fatal


def torch_step(P, d, model, x, eps, opt, grads=None, kinks=None, train=True):
    """One training step. grads (name -> array) replaces backward's gradients: the optimizer
    then works on exactly vae.h's gradients. kinks: the activations' branches (Kinks).
    train=False: model.eval() (BatchNorm's running statistics, unchanged) then backward/step.
    Returns the clipped gradients it used."""
    model.train(train)
    params = list(model.parameters())
    if opt == 'adam':
        o = torch.optim.Adam(params, lr=OPTIMS['adam_lr'], betas=tuple(d['adam_betas']), eps=d['adam_eps'],
                             weight_decay=OPTIMS['adam_wd'], foreach=False)
    elif opt == 'adamw':
        o = torch.optim.AdamW(params, lr=OPTIMS['adamw_lr'], betas=tuple(d['adam_betas']), eps=d['adam_eps'],
                              weight_decay=OPTIMS['adamw_wd'], foreach=False)
    else:
        o = torch.optim.SGD(params, lr=OPTIMS['sgd_lr'], momentum=OPTIMS['sgd_momentum'],
                            weight_decay=OPTIMS['sgd_wd'], foreach=False)
    r = torch_pass(P, d, model, x, eps, train, kinks, warm=True)   # in training mode the forward also moves BatchNorm's running statistics
    o.zero_grad()
    if grads is None:
        r['loss'][2].backward()
    else:
        for k, p in model.named_parameters():
            p.grad = torch.from_numpy(grads[k].reshape(p.shape).copy())
    if d['clip'] > 0:
        torch.nn.utils.clip_grad_norm_(params, d['clip'])
    used = {k: p.grad.numpy().copy() for k, p in model.named_parameters()}
    o.step()
    return used


def adam_bound(lr, eps, g1, g2):
    """How far Adam's first update lr*g/(|g|+eps) can move between gradients g1 and g2: its
    slope is lr*eps/(|g|+eps)^2, largest (lr/eps) at g = 0. Where |g| is near eps, rounding
    differences in g far below the gradient tolerance become visible in the step."""
    same = np.sign(g1) == np.sign(g2)
    m = np.where(same, np.minimum(np.abs(g1), np.abs(g2)), 0.0)
    return lr * eps * np.abs(g1 - g2) / (m + eps) ** 2


# ---- the three checks of one preset ------------------------------------------------------------------------
def grads_and_steps(P, d, model, sd0, x, eps, got, e, e2e, train, r):
    """Every parameter gradient, then one step of each optimizer (on vae.h's gradients, and end
    to end), in training mode or (train False) with model.eval(): vae.h's cfg.frozen_stats."""
    name, mode, pfx = P['name'], 'train' if train else 'eval', '' if train else 'eval.'
    if not train and d['beta_warmup'] > 0:   # a training step's loss: beta warmed up
        model.load_state_dict(sd0)
        r = torch_pass(P, d, model, x, eps, train, warm=True)
    model.zero_grad()
    r['loss'][2].backward()
    bad = []
    tgrad = {k: p.grad.numpy().copy() for k, p in model.named_parameters()}
    for k, p in model.named_parameters():
        ok, msg = Errors().compare('grad.' + k, got[pfx + 'grad.' + k], p.grad.numpy())
        if not ok: bad.append(k + ': ' + msg)
    ref, accepted, note, fatal = {k: v.ravel() for k, v in tgrad.items()}, set(), '', []
    if bad:
        ref, accepted, note, fatal = explain_gradients(P, d, model, sd0, x, eps, got, ref, bad, train)
    bad = list(fatal)
    for k in ref:
        ok, msg = e.compare(pfx + 'grad.' + k, got[pfx + 'grad.' + k], ref[k])
        if not ok and k not in accepted: bad.append(k + ': ' + msg)
    result(not bad, '%s %s: gradients of all %d parameters%s%s' % (
        name, mode, len(list(model.parameters())), note, ': ' + '; '.join(bad[:3]) if bad else ''))
    vgrad = {k: got[pfx + 'grad.' + k] for k in tgrad}
    norm = np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in vgrad.values()))
    coef = min(1.0, d['clip'] / (norm + 1e-6)) if d['clip'] > 0 else 1.0
    for opt in ('adam', 'adamw', 'sgd'):
        title = {'adam': 'Adam', 'adamw': 'AdamW', 'sgd': 'SGD (momentum)'}[opt]
        # (a) the optimizer on vae.h's own gradients: the update arithmetic, clipping,
        #     weight decay and the running statistics (moved in training mode, kept in eval
        #     mode), element for element
        model.load_state_dict(sd0)
        torch_step(P, d, model, x, eps, opt, grads=vgrad, train=train)
        sd = model.state_dict()
        keys = [k for k in sd if not k.endswith('num_batches_tracked')]
        bad = []
        for k in keys:
            ok, msg = e.compare(pfx + opt + '.' + k, got[pfx + opt + '.' + k], sd[k].numpy())
            if not ok: bad.append(k + ': ' + msg)
        result(not bad, '%s %s: all %d tensors after one %s step, torch.optim on the same gradients%s' % (
            name, mode, len(keys), title, ': ' + '; '.join(bad[:3]) if bad else ''))
        # (b) end to end, each library with its own gradients (PyTorch's taking vae.h's
        #     branch at activation inputs within rounding of 0, as explained above)
        model.load_state_dict(sd0)
        tused = torch_step(P, d, model, x, eps, opt, kinks=Kinks(kink_masks(got, pfx)), train=train)
        sd = model.state_dict()
        bad, amplified, gnoise = [], 0, 0.0
        for k in keys:
            a, b = got[pfx + opt + '.' + k].astype(np.float64).ravel(), sd[k].numpy().astype(np.float64).ravel()
            diff = np.abs(a - b)
            ok = (diff <= ATOL) | (diff <= RTOL * np.abs(b))
            e2e.compare(pfx + opt + '.' + k, a[ok], b[ok])
            if opt != 'sgd' and k in tused and not ok.all():
                lr = OPTIMS[opt + '_lr']
                bound = adam_bound(lr, d['adam_eps'], vgrad[k].ravel() * coef, tused[k].ravel())
                ok2 = ok | (diff <= np.maximum(ATOL, RTOL * np.abs(b)) + 1.01 * bound)
                amp = ok2 & ~ok
                amplified += int(amp.sum())
                dg = np.abs(vgrad[k].ravel() * coef - tused[k].ravel())[amp]
                if dg.size: gnoise = max(gnoise, float(np.max(dg)))
                ok = ok2
            if not ok.all():
                i = int(np.argmax(np.where(ok, -1, diff)))
                bad.append('%s: %d of %d elements off; worst [%d] %.9g vs torch %.9g' % (k, int((~ok).sum()), ok.size, i, a[i], b[i]))
        result(not bad, '%s %s: all %d tensors after one %s step, end to end%s%s' % (
            name, mode, len(keys), title,
            ' (%d elements where |g| ~ Adam eps magnifies gradient differences of at most %.1e:'
            ' within the bound that puts on the step)' % (amplified, gnoise) if amplified else '',
            ': ' + '; '.join(bad[:3]) if bad else ''))


def check_names(P, d, model):
    sd = model.state_dict()
    want = {k: tuple(v.shape) for k, v in sd.items() if not k.endswith('num_batches_tracked')}
    have = dict(d['tensors'])
    only_t = sorted(set(want) - set(have)); only_v = sorted(set(have) - set(want))
    shapes = [k for k in want if k in have and want[k] != have[k]]
    counters = sorted(k for k in sd if k.endswith('num_batches_tracked'))
    ok = not only_t and not only_v and not shapes and counters == sorted(d['counters'])
    msg = ''
    if not ok:
        msg = ': only in PyTorch %s; only in vae.h %s; shapes differ %s' % (
            only_t[:5], only_v[:5], [(k, want[k], have[k]) for k in shapes[:5]])
    result(ok, '%s: state_dict keys and shapes of seed %s equal the preset\'s tensors (%d)%s' % (
        P['name'], P['seed'], len(want), msg))
    return ok


def parity(P, d, tmp):
    name, n = P['name'], P['n']
    g = torch.Generator().manual_seed(1234 + SEED)
    torch.manual_seed(4321 + SEED)
    model = P['make'](d)
    randomise_norms(model, g)
    if not check_names(P, d, model):
        return None
    sd0 = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand((n, d['c'], d['h'], d['w']), generator=g)
    eps = torch.randn((n,) + d['lshape'], generator=g)
    wpath, cpath, opath = [os.path.join(tmp, name + s) for s in ('.weights.safetensors', '.case.safetensors', '.out.safetensors')]
    save_state_dict(wpath, sd0)
    meta = dict(preset=name, c=d['c'], h=d['h'], w=d['w'], hidden=0, latent=0, n=n, **OPTIMS)
    st.save(cpath, {'x': ('F32', list(x.shape), x.numpy().tobytes()), 'eps': ('F32', list(eps.shape), eps.numpy().tobytes())},
            {k: repr(v) if isinstance(v, float) else str(v) for k, v in meta.items()})
    t0 = time.time()
    run([HARNESS, 'run', wpath, cpath, opath])
    tv = time.time() - t0
    got = {k: v.numpy() for k, v in load_tensors(opath).items()}

    t0 = time.time()
    errs = {k: Errors() for k in ('step', 'evalstep', 'traingrad', 'evalgrad')}
    for mode in ('train', 'eval'):
        e = errs[mode] = Errors()
        model.load_state_dict(sd0)
        r = torch_pass(P, d, model, x, eps, mode == 'train')
        for k in ('mu', 'logvar', 'z', 'out'):
            ok, msg = e.compare('%s.%s' % (mode, k), got['%s.%s' % (mode, k)], r[k].detach().numpy())
            result(ok, '%s %s: %s%s' % (name, mode, k, ': ' + msg if msg else ''))
        ref = np.array([float(v) for v in r['loss']])
        ok, msg = e.compare(mode + '.loss', got[mode + '.loss'], ref)
        result(ok, '%s %s: recon, KL, total %s vs torch %s%s' % (name, mode, np.array2string(got[mode + '.loss'], precision=6),
                                                             np.array2string(ref, precision=6), ': ' + msg if msg else ''))
        grads_and_steps(P, d, model, sd0, x, eps, got, e.also(errs[mode + 'grad']), errs['step' if mode == 'train' else 'evalstep'],
                        mode == 'train', r)
    print('  %s: vae.h %.1fs, PyTorch %.1fs' % (name, tv, time.time() - t0))
    for mode in ('train', 'eval', 'traingrad', 'evalgrad', 'step', 'evalstep'):
        print('  %s %-9s %s' % (name, mode, errs[mode].line()))
    print('  (train, eval: everything of that mode; traingrad, evalgrad: of those, the gradients and the steps on'
          ' vae.h\'s gradients; step, evalstep: one step end to end, each library with its own gradients,'
          ' where the tolerance holds)')
    return errs, model, sd0, x


def torch_to_vae(P, d, tmp, model, sd0, x):
    """The seed class's state_dict through `vae encode/decode --model NAME --weights FILE`."""
    name = P['name']
    wpath, xpath, lpath, rpath = [os.path.join(tmp, name + s) for s in
                                  ('.weights.safetensors', '.x.safetensors', '.lat.safetensors', '.rec.safetensors')]
    st.save(xpath, {'images': ('F32', list(x.shape), x.numpy().tobytes())})
    flags = ['--model', name, '--weights', wpath]
    run([VAE, 'encode'] + flags + ['--data', xpath, '-o', lpath])   # the shape from the data
    lat = load_tensors(lpath)
    model.load_state_dict(sd0)
    model.eval()
    with torch.no_grad():
        mu, lv = P['encode'](model, x)
        rec = P['decode'](model, mu).reshape(x.shape[0], -1, x.shape[2], x.shape[3])
    e = Errors()
    ok1, m1 = e.compare('mu', lat['mu'].numpy(), mu.numpy())
    ok2, m2 = e.compare('logvar', lat['logvar'].numpy(), lv.numpy())
    result(ok1 and ok2 and tuple(lat['mu'].shape) == tuple(mu.shape),
           '%s: vae encode --weights (seed %s state_dict) gives PyTorch\'s mu %s and logvar%s' % (
               name, P['seed'], list(mu.shape), ': ' + m1 + m2 if m1 or m2 else ''))
    run([VAE, 'decode'] + flags + ['--channels', str(d['c']), '--size', str(d['h']), '-i', lpath, '-o', rpath])
    ok, msg = e.compare('decode', load_tensors(rpath)['images'].numpy(), rec.numpy())
    result(ok, '%s: vae decode --weights gives PyTorch\'s decode(mu)%s' % (name, ': ' + msg if msg else ''))
    print('  %s torch->vae %s' % (name, e.line()))


def vae_to_torch(P, d, tmp):
    """A checkpoint trained by `vae train` loads into the seed class (strict) and reconstructs alike."""
    name = P['name']
    g = torch.Generator().manual_seed(99)
    imgs = (torch.rand((8, d['c'], d['h'], d['w']), generator=g) * 255).to(torch.uint8)
    dpath, ck, lpath, rpath = [os.path.join(tmp, name + s) for s in
                               ('.u8.safetensors', '.ckpt.safetensors', '.lat2.safetensors', '.rec2.safetensors')]
    st.save(dpath, {'images': ('U8', list(imgs.shape), imgs.numpy().tobytes())})
    run([VAE, 'train', '--model', name, '--data', dpath, '--batch', '4', '--epochs', '1', '--seed', '5', '--quiet', '--out', ck])
    sd = {k: v for k, v in load_tensors(ck).items() if not k.startswith('optim.')}
    model = P['make'](d)
    try:
        model.load_state_dict(sd, strict=True)
        loaded = True
    except RuntimeError as ex:
        loaded = False
        result(False, '%s: a vae.h checkpoint loads into seed %s with load_state_dict(strict=True): %s' % (name, P['seed'], ex))
    if not loaded:
        return
    nbt = [int(v) for k, v in sd.items() if k.endswith('num_batches_tracked')]
    result(all(v == 2 for v in nbt), '%s: a vae.h checkpoint (2 steps) loads into seed %s with load_state_dict(strict=True)%s' % (
        name, P['seed'], ', num_batches_tracked %s' % nbt if nbt else ''))
    run([VAE, 'encode', ck, '--data', dpath, '-o', lpath])
    run([VAE, 'decode', ck, '-i', lpath, '-o', rpath])
    x = imgs.float() / 255
    model.eval()
    with torch.no_grad():
        mu, _ = P['encode'](model, x)
        rec = P['decode'](model, mu).reshape(x.shape[0], -1, x.shape[2], x.shape[3])
    e = Errors()
    ok1, m1 = e.compare('mu', load_tensors(lpath)['mu'].numpy(), mu.numpy())
    ok2, m2 = e.compare('rec', load_tensors(rpath)['images'].numpy(), rec.numpy())
    result(ok1 and ok2, '%s: PyTorch\'s reconstruction with the vae.h checkpoint equals vae encode + decode%s' % (
        name, ': ' + m1 + m2 if m1 or m2 else ''))
    print('  %s vae->torch %s' % (name, e.line()))


def main():
    only = sys.argv[2:]
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        for P in PRESETS:
            if only and P['name'] not in only:
                continue
            d = None
            for shape in P['shapes']:
                d = describe(P['name'], shape)
                if d != 'badshape':
                    break
            if d == 'missing':
                print('SKIP %s: not in vae.h yet' % P['name'])
                summary.append('%-8s SKIP: not in vae.h yet' % P['name'])
                continue
            if d == 'badshape':
                result(False, '%s: the preset takes none of the shapes %s' % (P['name'], P['shapes']))
                continue
            print('--- %s (seed %s), %d images of %dx%dx%d, latent %s' % (P['name'], P['seed'], P['n'], d['c'], d['h'], d['w'], d['lshape']))
            try:
                r = parity(P, d, tmp)
                if r is None:
                    continue
                errs, model, sd0, x = r
                torch_to_vae(P, d, tmp, model, sd0, x)
                vae_to_torch(P, d, tmp)
                summary.append('%-8s train %.2e  eval %.2e (eval gradients and steps %.2e)  end-to-end step: train %.2e  eval %.2e'
                               '   (largest absolute error where |ref| < 0.1: %.1e, %.1e, %.1e, %.1e)' % (
                    P['name'], errs['train'].rel, errs['eval'].rel, errs['evalgrad'].rel, errs['step'].rel, errs['evalstep'].rel,
                    errs['train'].abs, errs['eval'].abs, errs['step'].abs, errs['evalstep'].abs))
            except (RuntimeError, subprocess.CalledProcessError, KeyError) as ex:
                result(False, '%s: %s' % (P['name'], ex))
    print('largest relative error per preset (|ref| >= 0.1; tolerance 1e-4 relative or 1e-5 absolute):')
    for s in summary:
        print('  ' + s)
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
