# source: a GPT-style decoder block (minGPT/nanoGPT layout, without the causal mask buffer)
# input: [2, 8, 48]
import math
import torch
import torch.nn as nn
from torch.nn import functional as F

n_embd = 48
n_head = 4


class MLP(nn.Module):
    def __init__(self, n_embd):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * n_embd, n_embd)
        self.dropout = nn.Dropout(0.0)

    def forward(self, x):
        x = self.c_fc(x)
        x = self.gelu(x)
        x = self.c_proj(x)
        x = self.dropout(x)
        return x


class Block(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = nn.MultiheadAttention(n_embd, n_head, batch_first=True)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = MLP(n_embd)

    def forward(self, x):
        h = self.ln_1(x)
        a, _ = self.attn(h, h, h)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x


block = Block(n_embd, n_head)
