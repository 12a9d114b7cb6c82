# source: a small Transformer encoder classifier built on nn.TransformerEncoder
# input: tokens [2, 16] below 1000
import torch
import torch.nn as nn


class TransformerClassifier(nn.Module):
    def __init__(self, vocab_size=1000, d_model=32, nhead=4, num_layers=2, num_classes=3, max_len=16):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Parameter(torch.zeros(1, max_len, d_model))
        encoder_layer = nn.TransformerEncoderLayer(d_model=d_model, nhead=nhead, dim_feedforward=64,
                                                   dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(encoder_layer, num_layers=num_layers)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x):
        x = self.embed(x) + self.pos
        x = self.encoder(x)
        x = x.mean(dim=1)
        return self.head(x)


model = TransformerClassifier()
