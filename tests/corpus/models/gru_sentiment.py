# source: a GRU text classifier using the last layer's final hidden state
# input: tokens [4, 20] below 5000
import torch
import torch.nn as nn

VOCAB_SIZE = 5000
EMBED_DIM = 64
HIDDEN = 96
N_CLASSES = 2


class SentimentGRU(nn.Module):
    def __init__(self, vocab_size=VOCAB_SIZE, embed_dim=EMBED_DIM, hidden=HIDDEN, n_classes=N_CLASSES,
                 n_layers=2, bidirectional=False):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.gru = nn.GRU(embed_dim, hidden, num_layers=n_layers, batch_first=True,
                          bidirectional=bidirectional)
        self.fc = nn.Linear(hidden * (2 if bidirectional else 1), n_classes)

    def forward(self, text):
        embedded = self.embedding(text)
        _, hidden = self.gru(embedded)
        return self.fc(hidden[-1])


model = SentimentGRU()
