"""Molecule VAE: invariant graph encoder, autoregressive SELFIES decoder.

Every SELFIES string decodes to a valid molecule, so validity comes from the
representation; the decoder's job is to make samples diverse and property-aware.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from typing import TYPE_CHECKING

from .samples import MoleculeSamples
from .vae import GraphVAE

if TYPE_CHECKING:
    from ..config.generators import MolVAEModel

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2  # fixed positions in the vocabulary (see invdesign.chem.molecules)


class MolVAE(GraphVAE):
    def __init__(self, meta: dict, cfg: MolVAEModel):
        super().__init__(meta, cfg)
        vocab, hidden = len(meta["vocab"]), cfg.hidden
        dec_hidden = cfg.decoder_hidden or 2 * hidden
        self.max_len = int(meta["max_len"])
        self.embed = nn.Embedding(vocab, hidden, padding_idx=PAD_ID)
        self.z_to_h = nn.Linear(self.latent_dim, dec_hidden)
        self.gru = nn.GRU(hidden + self.latent_dim, dec_hidden, batch_first=True)
        self.out = nn.Linear(dec_hidden, vocab)
        self.word_dropout = cfg.word_dropout

    def _logits(self, z, inputs, h=None):
        emb = self.embed(inputs)
        zz = z.unsqueeze(1).expand(-1, inputs.size(1), -1)
        if h is None:
            h = torch.tanh(self.z_to_h(z)).unsqueeze(0)
        out, h = self.gru(torch.cat([emb, zz], dim=-1), h)
        return self.out(out), h

    def reconstruction_loss(self, z, batch):
        tokens = batch.tokens
        keep = batch.has_tokens.view(-1)
        tokens, z = tokens[keep], z[keep]
        inputs = torch.cat([torch.full_like(tokens[:, :1], BOS_ID), tokens[:, :-1]], dim=1)
        if self.training and self.word_dropout > 0:
            drop = torch.rand(inputs.shape, device=inputs.device) < self.word_dropout
            drop[:, 0] = False
            inputs = inputs.masked_fill(drop, PAD_ID)
        logits, _ = self._logits(z, inputs)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), tokens.reshape(-1), ignore_index=PAD_ID)
        with torch.no_grad():
            pred = logits.argmax(-1)
            real = tokens != PAD_ID
            seq_acc = ((pred == tokens) | ~real).all(dim=1).float().mean()
        # per-token loss summed over the sequence length keeps the KL on a comparable scale
        return loss * self.max_len / 4, {"token_ce": float(loss.detach()), "seq_acc": float(seq_acc)}

    @torch.no_grad()
    def decode(self, z: torch.Tensor, temperature: float = 0.0) -> dict:
        """SELFIES token ids [B, max_len] (greedy at ``temperature`` 0, else sampled)."""
        b = z.size(0)
        token = torch.full((b, 1), BOS_ID, dtype=torch.long, device=z.device)
        h, out = None, []
        done = torch.zeros(b, dtype=torch.bool, device=z.device)
        for _ in range(self.max_len):
            logits, h = self._logits(z, token, h)
            logits = logits[:, -1]
            logits[:, PAD_ID] = -torch.inf
            logits[:, BOS_ID] = -torch.inf
            if temperature and temperature > 0:
                token = torch.multinomial(F.softmax(logits / temperature, -1), 1)
            else:
                token = logits.argmax(-1, keepdim=True)
            token = token.masked_fill(done.unsqueeze(1), PAD_ID)
            out.append(token)
            done |= token.squeeze(1) == EOS_ID
            if bool(done.all()):
                break
        tokens = torch.cat(out, dim=1)
        if tokens.size(1) < self.max_len:
            tokens = F.pad(tokens, (0, self.max_len - tokens.size(1)), value=PAD_ID)
        return MoleculeSamples(tokens=tokens)
