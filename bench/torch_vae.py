"""Reference VAEs from the seeds, in PyTorch, on Fashion-MNIST: the anchor a user would pick instead.

  /usr/bin/python3 bench/torch_vae.py mlp|conv --threads N --steps S [--seconds T] [--epochs E]
Prints throughput (images/s over S timed training steps after warm-up, or fewer when T
seconds pass first, at least 3), memory, and with
--epochs a test-set loss after that many epochs. bench/train_bench.c measures vae.h the same way.

Memory, as bench/train_bench.c reports it: peak_rss_mb is the whole process's peak RSS
(getrusage, data loading included); train_rss_mb is the peak while training (on Linux the
high-water mark is reset through /proc/self/clear_refs once the data set is loaded) and
data_rss_mb the RSS at that moment, so their difference is what training adds on top of
the data set both programs hold as floats.
"""
import argparse, gzip, struct, time, resource, sys
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F

D = '/usr/share/datasets/fashion-mnist/'
def idx(path):
    with gzip.open(path, 'rb') as f:
        data = f.read()
    magic, n = struct.unpack('>II', data[:8])
    dims = [struct.unpack('>I', data[8 + 4 * i:12 + 4 * i])[0] for i in range((magic & 0xff) - 1)]
    off = 8 + 4 * len(dims)
    return np.frombuffer(data, np.uint8, offset=off).reshape(n, *dims)

class MLPVAE(nn.Module):            # seed 003 / pytorch examples: 784-400-20
    def __init__(s, h=400, z=20):
        super().__init__(); s.fc1 = nn.Linear(784, h); s.mu = nn.Linear(h, z); s.lv = nn.Linear(h, z)
        s.fc3 = nn.Linear(z, h); s.fc4 = nn.Linear(h, 784)
    def forward(s, x):
        h = F.relu(s.fc1(x.view(-1, 784))); mu, lv = s.mu(h), s.lv(h)
        zz = mu + torch.randn_like(mu) * torch.exp(0.5 * lv)
        return torch.sigmoid(s.fc4(F.relu(s.fc3(zz)))), mu, lv
def mlp_loss(xh, x, mu, lv):
    return (F.binary_cross_entropy(xh, x.view(-1, 784), reduction='sum') - 0.5 * torch.sum(1 + lv - mu.pow(2) - lv.exp())) / x.shape[0]

class ConvVAE(nn.Module):           # seed 002 ConvolutionalVAE, 1x32x32 input
    def __init__(s, c=1, hw=32, z=128):
        super().__init__(); s.z = z; f = hw // 8
        s.enc = nn.Sequential(nn.Conv2d(c, 96, 3, 2, 1), nn.ReLU(), nn.BatchNorm2d(96),
            nn.Conv2d(96, 192, 3, 2, 1), nn.ReLU(), nn.BatchNorm2d(192),
            nn.Conv2d(192, 384, 3, 2, 1), nn.ReLU(), nn.BatchNorm2d(384), nn.Flatten(), nn.Linear(384 * f * f, 2 * z))
        s.dec = nn.Sequential(nn.Linear(z, 384 * f * f), nn.Unflatten(1, (384, f, f)),
            nn.ConvTranspose2d(384, 192, 3, 2, 1, 1), nn.ReLU(), nn.BatchNorm2d(192),
            nn.ConvTranspose2d(192, 96, 3, 2, 1, 1), nn.ReLU(), nn.BatchNorm2d(96),
            nn.ConvTranspose2d(96, c, 3, 2, 1, 1), nn.Sigmoid())
    def forward(s, x):
        mu, lv = s.enc(x).split(s.z, 1)
        return s.dec(mu + torch.randn_like(mu) * torch.exp(0.5 * lv)), mu, lv
def conv_loss(xh, x, mu, lv, beta=1e-3):
    lv = torch.clamp(lv, -10, 10)
    kl = -0.5 * torch.sum(1 + lv - mu.pow(2) - lv.exp()) / (mu.size(0) * mu.size(1))
    return F.mse_loss(xh, x) + beta * kl

def status_kb(key):                # a "Key:  123 kB" line of /proc/self/status, or -1
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key + ':'): return int(line.split()[1])
    except OSError: pass
    return -1

def reset_peak_rss():               # Linux: the RSS high-water mark restarts from the current RSS
    try:
        with open('/proc/self/clear_refs', 'w') as f: f.write('5')
        return True
    except OSError: return False

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('model'); ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--steps', type=int, default=100); ap.add_argument('--epochs', type=int, default=0)
    ap.add_argument('--batch', type=int, default=0); ap.add_argument('--seconds', type=float, default=0)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args(); torch.set_num_threads(a.threads); torch.manual_seed(a.seed)
    tr = torch.from_numpy(idx(D + 'train-images-idx3-ubyte.gz').astype(np.float32) / 255.)
    te = torch.from_numpy(idx(D + 't10k-images-idx3-ubyte.gz').astype(np.float32) / 255.)
    if a.model == 'mlp': tr, te = tr.view(-1, 784), te.view(-1, 784)
    else: tr, te = F.pad(tr, (2, 2, 2, 2)).unsqueeze(1), F.pad(te, (2, 2, 2, 2)).unsqueeze(1)
    load_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss   # the data set is in memory:
    data_kb = status_kb('VmRSS') if reset_peak_rss() else -1         # from here on the peak is training's
    if a.model == 'mlp':
        m, lossf, bs = MLPVAE(), mlp_loss, a.batch or 128
        opt = torch.optim.Adam(m.parameters(), lr=1e-3); clip = None
    else:
        m, lossf, bs = ConvVAE(), conv_loss, a.batch or 32
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=1e-5); clip = 1.0
    def step(xb):
        xh, mu, lv = m(xb); loss = lossf(xh, xb, mu, lv)
        opt.zero_grad(); loss.backward()
        if clip: torch.nn.utils.clip_grad_norm_(m.parameters(), clip)
        opt.step(); return loss.item()
    m.train(); n = tr.shape[0]
    for i in range(5): step(tr[i * bs:(i + 1) * bs])           # warm-up
    t = time.perf_counter(); done = 0
    for i in range(a.steps):
        j = (i * bs) % (n - bs); step(tr[j:j + bs]); done = i + 1
        if a.seconds > 0 and i >= 2 and time.perf_counter() - t >= a.seconds: break
    dt = time.perf_counter() - t
    print(f'{a.model} threads={a.threads} batch={bs} train_images_per_s {done * bs / dt:.1f} (pytorch {torch.__version__})')
    train_kb = status_kb('VmHWM') if data_kb >= 0 else -1
    if train_kb >= 0: print(f'train_rss_mb {train_kb / 1024:.0f} data_rss_mb {data_kb / 1024:.0f}', flush=True)
    for e in range(a.epochs):
        perm = torch.randperm(n); t = time.perf_counter()
        for i in range(n // bs): step(tr[perm[i * bs:(i + 1) * bs]])
        m.eval()
        with torch.no_grad():
            tl = mse = 0.0
            for i in range(0, te.shape[0], 500):
                xb = te[i:i + 500]; xh, mu, lv = m(xb)
                tl += lossf(xh, xb, mu, lv).item() * xb.shape[0]; mse += F.mse_loss(xh, xb, reduction='sum').item()
            tl /= te.shape[0]; mse /= te.numel()
        m.train(); print(f'epoch {e + 1} test_loss_per_image {tl:.6g} test_mse_per_pixel {mse:.6g} epoch_s {time.perf_counter() - t:.1f}', flush=True)
    print(f'peak_rss_mb {max(load_peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024:.0f}')
main()
