"""The five seed VAEs in PyTorch, as ../shared/seeds/ writes them: the same class names, the
same attribute names (so the same state_dict keys), the same forward passes. The test driver
(tests/test_torch.py) runs them against vae.h's presets; a user can copy a class from here to
train in PyTorch and then deploy the weights with `vae --model NAME --weights FILE`.

Two seeds name their top-level class VAE, so each seed lives in its own namespace:
    seed003.VAE                      preset 'mlp'      (MLP, 784-400-20)
    seed002.ConvolutionalVAE         preset 'conv'
    seed004.VanillaVAE               preset 'vanilla'
    seed000.VAE (ResidualBlock, Encoder, Decoder)      preset 'resnet'
    seed001.ConvVAE (Reshape)        preset 'conv250'
What the seeds leave out is marked "not in the seed" and kept as small as possible.
"""
from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F


def _seed003():
    class VAE(nn.Module):
        def __init__(self, input_dim=784, hidden_dim=400, latent_z_dim=20):
            super().__init__()   # not in the seed (its README shows the layers, not __init__)
            self.input_dim = input_dim
            self.img_to_hidden = nn.Linear(input_dim, hidden_dim)
            self.hidden_to_mean = nn.Linear(hidden_dim, latent_z_dim)
            self.hidden_to_logvar = nn.Linear(hidden_dim, latent_z_dim)
            self.latent_to_hidden = nn.Linear(latent_z_dim, hidden_dim)
            self.hidden_to_img = nn.Linear(hidden_dim, input_dim)

        def encode(self, x):
            h = F.relu(self.img_to_hidden(x))  # Feature extraction
            mu = self.hidden_to_mean(h)        # μ parameter
            logvar = self.hidden_to_logvar(h)  # log(σ²) parameter
            return mu, logvar

        def reparameterize(self, mu, logvar):
            std = torch.exp(0.5 * logvar)      # σ = exp(½ log(σ²))
            epsilon = torch.randn_like(std)    # ε ~ N(0, I)
            return mu + std * epsilon          # z = μ + σε

        def decode(self, z):
            h = F.relu(self.latent_to_hidden(z))  # Expand latent representation
            x_hat = self.hidden_to_img(h)         # Reconstruct to original space
            return torch.sigmoid(x_hat)           # Ensure [0,1] range

        def forward(self, x):                     # not in the seed: encode, sample, decode
            mu, logvar = self.encode(x)
            z = self.reparameterize(mu, logvar)
            return self.decode(z), mu, logvar

        def loss_function(self, x, x_hat, mu, logvar):
            recon_loss = F.binary_cross_entropy(x_hat, x, reduction='sum')
            kl_loss = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            return recon_loss, kl_loss, recon_loss + kl_loss
    return SimpleNamespace(VAE=VAE)


def _seed002():
    class ConvolutionalVAE(nn.Module):
        def __init__(self, input_dim: int, n_channels: int, latent_dim: int):
            super().__init__()
            self.latent_dim = latent_dim
            self.encoder = nn.Sequential(
                nn.Conv2d(n_channels, 96, kernel_size=3, stride=2, padding=1),
                nn.ReLU(),
                nn.BatchNorm2d(96),
                nn.Conv2d(96, 192, kernel_size=3, stride=2, padding=1),
                nn.ReLU(),
                nn.BatchNorm2d(192),
                nn.Conv2d(192, 384, kernel_size=3, stride=2, padding=1),
                nn.ReLU(),
                nn.BatchNorm2d(384),
                nn.Flatten(),
                nn.Linear(384 * input_dim[1] // 8 * input_dim[2] // 8, 2 * latent_dim),
            )
            self.decoder = nn.Sequential(
                nn.Linear(latent_dim, 384 * input_dim[1] // 8 * input_dim[2] // 8),
                nn.Unflatten(1, (384, input_dim[1] // 8, input_dim[2] // 8)),
                nn.ConvTranspose2d(384, 192, kernel_size=3, stride=2, padding=1, output_padding=1),
                nn.ReLU(),
                nn.BatchNorm2d(192),
                nn.ConvTranspose2d(192, 96, kernel_size=3, stride=2, padding=1, output_padding=1),
                nn.ReLU(),
                nn.BatchNorm2d(96),
                nn.ConvTranspose2d(96, n_channels, kernel_size=3, stride=2, padding=1, output_padding=1),
                nn.Sigmoid(),
            )

        def sample(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
            std = torch.exp(0.5 * logvar)
            eps = torch.randn_like(std)
            return mu + eps * std

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            encoded = self.encoder(x)
            mu, logvar = encoded.split(self.latent_dim, dim=1)
            z = self.sample(mu, logvar)
            return self.decoder(z), (mu, logvar)
    return SimpleNamespace(ConvolutionalVAE=ConvolutionalVAE)


def _seed004():
    BaseVAE = nn.Module   # not in the seed: `from models import BaseVAE` (an nn.Module)

    class VanillaVAE(BaseVAE):
        def __init__(self, in_channels: int, latent_dim: int, hidden_dims=None, **kwargs) -> None:
            super(VanillaVAE, self).__init__()
            self.latent_dim = latent_dim
            modules = []
            if hidden_dims is None:
                hidden_dims = [32, 64, 128, 256, 512]
            # Build Encoder
            for h_dim in hidden_dims:
                modules.append(
                    nn.Sequential(
                        nn.Conv2d(in_channels, out_channels=h_dim, kernel_size=3, stride=2, padding=1),
                        nn.BatchNorm2d(h_dim),
                        nn.LeakyReLU())
                )
                in_channels = h_dim
            self.encoder = nn.Sequential(*modules)
            self.fc_mu = nn.Linear(hidden_dims[-1] * 8 * 8, latent_dim)
            self.fc_var = nn.Linear(hidden_dims[-1] * 8 * 8, latent_dim)
            # Build Decoder
            modules = []
            self.decoder_input = nn.Linear(latent_dim, hidden_dims[-1] * 4)
            hidden_dims.reverse()
            for i in range(len(hidden_dims) - 1):
                modules.append(
                    nn.Sequential(
                        nn.ConvTranspose2d(hidden_dims[i], hidden_dims[i + 1], kernel_size=3, stride=2,
                                           padding=1, output_padding=1),
                        nn.BatchNorm2d(hidden_dims[i + 1]),
                        nn.LeakyReLU())
                )
            self.decoder = nn.Sequential(*modules)
            self.final_layer = nn.Sequential(
                nn.ConvTranspose2d(hidden_dims[-1], hidden_dims[-1], kernel_size=3, stride=2, padding=1,
                                   output_padding=1),
                nn.BatchNorm2d(hidden_dims[-1]),
                nn.LeakyReLU(),
            )
            self.final_after = nn.Sequential(
                nn.ConvTranspose2d(hidden_dims[-1], hidden_dims[-1], kernel_size=3, stride=2, padding=1,
                                   output_padding=1),
                nn.BatchNorm2d(hidden_dims[-1]),
                nn.LeakyReLU(),
                nn.ConvTranspose2d(hidden_dims[-1], hidden_dims[-1], kernel_size=3, stride=2, padding=1,
                                   output_padding=1),
                nn.BatchNorm2d(hidden_dims[-1]),
                nn.LeakyReLU(),
            )
            self.final_conv = nn.Sequential(nn.Conv2d(hidden_dims[-1], out_channels=1, kernel_size=3, padding=1),
                                            nn.Tanh())

        def encode(self, input):
            result = self.encoder(input)
            result = torch.flatten(result, start_dim=1)
            mu = self.fc_mu(result)
            log_var = self.fc_var(result)
            return [mu, log_var]

        def decode(self, z):
            result = self.decoder_input(z)
            result = result.view(-1, 512, 2, 2)
            result = self.decoder(result)
            result = self.final_layer(result)
            result = self.final_after(result)
            result = self.final_conv(result)
            return result

        def reparameterize(self, mu, logvar):
            std = torch.exp(0.5 * logvar)
            eps = torch.randn_like(std)
            return eps * std + mu

        def forward(self, input, **kwargs):
            mu, log_var = self.encode(input)
            z = self.reparameterize(mu, log_var)
            return [self.decode(z), z, mu, log_var]

        def loss_function(self, *args, **kwargs) -> dict:
            recons = args[0]
            input = args[1]
            mu = args[2]
            log_var = args[3]
            kld_weight = kwargs['M_N']  # Account for the minibatch samples from the dataset
            recons_loss = F.mse_loss(recons, input)
            kld_loss = torch.mean(-0.5 * torch.sum(1 + log_var - mu ** 2 - log_var.exp(), dim=1), dim=0)
            loss = recons_loss + kld_weight * kld_loss
            return {'loss': loss, 'Reconstruction_Loss': recons_loss.detach(), 'KLD': -kld_loss.detach()}
    return SimpleNamespace(VanillaVAE=VanillaVAE)


def _seed000():
    class ResidualBlock(nn.Module):
        def __init__(self, in_channels, out_channels):
            super().__init__()
            self.in_channels = in_channels
            self.out_channels = out_channels
            self.block = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                nn.GroupNorm(32, out_channels),
                nn.SiLU(inplace=True),
                nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
                nn.GroupNorm(32, out_channels),
                nn.SiLU(inplace=True)
            )
            if in_channels != out_channels:
                self.channel_up = nn.Conv2d(in_channels, out_channels, 1, bias=False)
            self.group_norm = nn.GroupNorm(32, out_channels)

        def forward(self, x):
            def execute(x):
                residual = x
                if self.in_channels != self.out_channels:
                    residual = self.channel_up(x)
                return self.group_norm(self.block(x) + residual)
            return execute(x)

    class Encoder(nn.Module):
        def __init__(self, in_channels=3, latent_dim=4):
            super().__init__()
            self.latent_dim = latent_dim
            self.initial = nn.Conv2d(in_channels, 64, 3, padding=1, bias=False)
            self.residual_blocks = nn.Sequential(
                ResidualBlock(64, 128),
                ResidualBlock(128, 128),
                nn.MaxPool2d(2),
                ResidualBlock(128, 256),
                ResidualBlock(256, 256),
                nn.MaxPool2d(2),
                ResidualBlock(256, 512),
                ResidualBlock(512, 512),
                nn.MaxPool2d(2),
                ResidualBlock(512, 512),
                ResidualBlock(512, 512),
            )
            self.conv = nn.Conv2d(512, latent_dim * 2, 3, padding=1, bias=False)
            self.final = nn.Conv2d(latent_dim * 2, latent_dim * 2, 1, stride=1, bias=False)

        def forward(self, x):
            x = self.initial(x)
            x = self.residual_blocks(x)
            x = self.conv(x)
            x = self.final(x)
            return x

    class Decoder(nn.Module):
        def __init__(self, out_channels=3, latent_dim=4):
            super().__init__()
            self.initial = nn.Conv2d(latent_dim, 512, 1, bias=False)
            self.residual_blocks = nn.Sequential(
                ResidualBlock(512, 512),
                ResidualBlock(512, 512),
                nn.Upsample(scale_factor=2, mode='nearest'),
                ResidualBlock(512, 256),
                ResidualBlock(256, 256),
                nn.Upsample(scale_factor=2, mode='nearest'),
                ResidualBlock(256, 128),
                ResidualBlock(128, 128),
                nn.Upsample(scale_factor=2, mode='nearest'),
                ResidualBlock(128, 64),
                ResidualBlock(64, 64)
            )
            self.final1 = nn.Conv2d(64, out_channels, 3, padding=1, bias=False)
            self.final2 = nn.Conv2d(out_channels, out_channels, 1, bias=False)

        def forward(self, x):
            x = self.initial(x)
            x = self.residual_blocks(x)
            x = self.final2(self.final1(x))
            return x

    class VAE(nn.Module):
        def __init__(self, in_channels=3, latent_dim=4):
            super().__init__()
            self.encoder = Encoder(in_channels, latent_dim)
            self.decoder = Decoder(in_channels, latent_dim)
            self.apply(self.init_weight)

        @staticmethod
        def init_weight(module):   # not in the seed, which calls it: PyTorch's defaults stay
            pass

        def encode(self, x):
            h = self.encoder(x)
            mean, logvar = torch.chunk(h, 2, dim=1)
            logvar = torch.clamp(logvar, -10, 10)
            return mean, logvar

        def decode(self, z):
            return self.decoder(z)

        def reparameterize(self, mean, logvar, eps=None):
            std = torch.exp(0.5 * logvar)
            if eps is None:
                eps = torch.randn_like(std)
            z = mean + eps * std
            return torch.tanh(z)

        def forward(self, x):
            mean, logvar = self.encode(x)
            z = self.reparameterize(mean, logvar)
            return self.decode(z), mean, logvar
    return SimpleNamespace(ResidualBlock=ResidualBlock, Encoder=Encoder, Decoder=Decoder, VAE=VAE)


def _seed001():
    class Reshape(nn.Module):
        def __init__(self, *args):
            super(Reshape, self).__init__()
            self.shape = args

        def forward(self, x):
            return x.view(self.shape)

    class ConvVAE(nn.Module):
        def __init__(self, latent_dim=128):
            super(ConvVAE, self).__init__()
            self.latent_dim = latent_dim
            self.encoder = nn.Sequential(
                nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1),  # (64, 125, 125)
                nn.ReLU(True),
                nn.Conv2d(64, 128, kernel_size=3, stride=2, padding=1),  # (128, 63, 63)
                nn.ReLU(True),
                nn.Conv2d(128, 256, kernel_size=3, stride=2, padding=1),  # (256, 32, 32)
                nn.ReLU(True),
                nn.Conv2d(256, 512, kernel_size=3, stride=2, padding=1),  # (512, 16, 16)
                nn.ReLU(True),
                nn.Flatten()
            )
            self.fc_mu = nn.Linear(512 * 16 * 16, latent_dim)
            self.fc_logvar = nn.Linear(512 * 16 * 16, latent_dim)
            self.decoder_input = nn.Linear(latent_dim, 512 * 16 * 16)
            self.decoder = nn.Sequential(
                Reshape(-1, 512, 16, 16),   # the seed writes Reshape((-1, 512, 16, 16)), a tuple in a tuple
                nn.ConvTranspose2d(512, 256, kernel_size=3, stride=2, padding=1, output_padding=1),  # (256, 32, 32)
                nn.ReLU(True),
                nn.ConvTranspose2d(256, 128, kernel_size=3, stride=2, padding=1, output_padding=0),  # (128, 63, 63)
                nn.ReLU(True),
                nn.ConvTranspose2d(128, 64, kernel_size=3, stride=2, padding=1, output_padding=0),  # (64, 125, 125)
                nn.ReLU(True),
                nn.ConvTranspose2d(64, 3, kernel_size=3, stride=2, padding=1, output_padding=1),  # (3, 250, 250)
                nn.Sigmoid()
            )

        def encode(self, x):
            x = self.encoder(x)
            mu = self.fc_mu(x)
            logvar = self.fc_logvar(x)
            return mu, logvar

        def reparameterize(self, mu, logvar):
            std = torch.exp(0.5 * logvar)
            eps = torch.randn_like(std)
            return mu + eps * std

        def decode(self, z):
            x = self.decoder_input(z)
            x = self.decoder(x)
            return x

        def forward(self, x):
            mu, logvar = self.encode(x)
            z = self.reparameterize(mu, logvar)
            return self.decode(z), mu, logvar
    return SimpleNamespace(Reshape=Reshape, ConvVAE=ConvVAE)


seed000, seed001, seed002, seed003, seed004 = _seed000(), _seed001(), _seed002(), _seed003(), _seed004()
