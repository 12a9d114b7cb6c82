# source: a character-level LSTM language model as commonly written
# input: tokens [2, 12] below 65
import torch
import torch.nn as nn

vocab_size = 65
embedding_dim = 32
hidden_dim = 64
n_layers = 2


class CharRNN(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_dim, n_layers, drop_prob=0.5):
        super().__init__()
        self.n_layers = n_layers
        self.hidden_dim = hidden_dim
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, n_layers,
                            dropout=drop_prob, batch_first=True)
        self.dropout = nn.Dropout(drop_prob)
        self.fc = nn.Linear(hidden_dim, vocab_size)

    def forward(self, x):
        embeds = self.embedding(x)
        lstm_out, (h, c) = self.lstm(embeds)
        out = self.dropout(lstm_out)
        out = self.fc(out)
        return out


model = CharRNN(vocab_size, embedding_dim, hidden_dim, n_layers)
